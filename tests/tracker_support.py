"""Helpers for tests that run the browser tracker in Debian's Chromium: the launch arguments and a school's own
web site on loopback whose pages load the tracker from the EduPulse server."""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("EDUPULSE_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def page_html(server_url: str, write_key: str, title: str, options: str = "") -> str:
    return f"""<!doctype html><html><head><title>{title}</title>
<script src="{server_url}/static/edupulse.js"></script>
<script>edupulse.init({{writeKey: {write_key!r}{options}}});</script></head><body>{title}</body></html>"""


class SchoolSite:
    """The organization's own web site on loopback: /NAME serves a page that loads the tracker from the server."""

    def __init__(self, server_url: str, write_key: str, options: dict[str, str] | None = None) -> None:
        """`options`: extra tracker options (JavaScript text after the write key) by page name."""
        pages = options or {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").split("?")[0]
                options = pages.get(name, "")
                body = page_html(server_url, write_key, name, options).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
