"""`make demo` in a log, CI or a container: progress comes as lines when the output is not a terminal, and the
README says how to choose another port."""

from __future__ import annotations

import re
from pathlib import Path

from web_site import Site

README = Path(__file__).parents[2] / "README.md"


def test_simulation_prints_progress_lines_when_the_output_is_not_a_terminal(site: Site) -> None:
    lines = site.simulate_log.splitlines()  # captured: not a terminal
    generate = [line for line in lines if line.startswith("simulating learners, institutions, schools: ")]
    load = [line for line in lines if line.startswith("loading records into the store: ")]
    assert generate, site.simulate_log
    assert load, site.simulate_log
    assert re.search(r": [\d,]+ of [\d,]+ \(100 %, \d+ s\)$", generate[-1])
    assert re.search(r"\(100 %, \d+ s\)$", load[-1])
    assert len(generate) <= 12  # a line per tenth, not one per learner
    assert "\x1b[" not in site.simulate_log  # no terminal control codes in a log


def test_readme_says_how_to_choose_another_port() -> None:
    text = README.read_text(encoding="utf-8")
    assert "EDUPULSE_PORT=" in text
    assert "--port" in text
