"""The web UI: page routes, Jinja2 templates, our own JavaScript and CSS, message catalogues (zh, en)."""
