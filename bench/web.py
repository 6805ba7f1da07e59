"""Pages of the web UI on `make demo`'s data, in headless Chromium (Debian's, through Playwright): seconds from
navigation until a page has drawn its data (body[data-ready]), and each as a ratio to a static page measured in
the same run (the sign-in page: a template with no data, the same CSS and no script work). The first analysis
is the first one the server answers after it starts (cold: no cached result) — the home page's first question,
attendance per day — timed until its chart is drawn; the data catalogue its pickers need is computed by the
server in the background as it starts (a few seconds on this data), while the user signs in.

The data is `make demo`'s (120,000 learners over 120 days, seed 2026: some 3 million events), simulated once
into bench/out/web-demo/ (a few minutes the first time); --learners makes a smaller one for a quick look.

    .venv/bin/python bench/web.py [--learners 120000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

from edupulse.conf import Settings
from edupulse.meta.db import MetadataStore

OUT = Path(__file__).parent / "out"
CHROMIUM = os.environ.get("EDUPULSE_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN = ("bench@edupulse.local", "bench-password-1")
PROJECT = "Demo School"
PAGE_LIMIT, ANALYSIS_LIMIT = 1.5, 1.0


def data_dir(learners: int) -> Path:
    """The demo's data, simulated once per size (the simulator prints its progress)."""
    folder = OUT / ("web-demo" if learners == 120_000 else f"web-demo-{learners}")
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "edupulse", "--data-dir", str(folder), "simulate", "--project", PROJECT,
                        "--seed", "2026", "--learners", str(learners), "--days", "120"], check=True)
        (folder / ".complete").touch()
    meta = MetadataStore(Settings(data_dir=folder).resolved_metadata_url)
    try:
        if meta.accounts.user_by_email(ADMIN[0]) is None:
            meta.accounts.create_user(ADMIN[0], ADMIN[1], superuser=True)
    finally:
        meta.close()
    return folder


def serve(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "EDUPULSE_DATA_DIR": str(folder), "EDUPULSE_PORT": str(port)}
    server = subprocess.Popen([sys.executable, "-m", "edupulse", "serve"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start in 120 s")


def timed(tab: Any, url: str) -> float:
    """Seconds from navigation until the page has drawn its first data."""
    started = time.perf_counter()
    tab.goto(url)
    tab.wait_for_function("document.body && document.body.dataset.ready === '1'", timeout=120_000)
    return time.perf_counter() - started


PAGES = ["/", "/analysis/trends", "/analysis/funnel", "/analysis/retention", "/analysis/distribution",
         "/analysis/interval", "/analysis/ltv", "/analysis/paths", "/analysis/attribution", "/reports", "/dashboards",
         "/people", "/people/1", "/segments", "/catalog", "/ingestion", "/settings", "/admin/members", "/admin/keys",
         "/admin/audit", "/admin/lifecycle", "/admin/metrics", "/admin/quarantine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=120_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8197)
    args = parser.parse_args()
    folder = data_dir(args.learners)
    server = serve(folder, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            tab = browser.new_context(locale="zh-CN", viewport={"width": 1440, "height": 900}).new_page()
            tab.goto(base + "/login")
            tab.fill("input[name=email]", ADMIN[0])
            tab.fill("input[name=password]", ADMIN[1])
            tab.click("button[type=submit]")
            tab.wait_for_url(base + "/")
            # the first analysis the server answers: the home page's first question, cold
            first = timed(tab, base + "/analysis/trends?preset=attendance")
            server_seconds = tab.evaluate("document.getElementById('status').textContent")
            static = statistics.median(timed(tab, base + "/login") for _ in range(max(3, args.rounds)))
            print(f"web pages on {args.learners:,} learners' data (make demo: 120,000); "
                  f"baseline: the static sign-in page {static * 1000:.0f} ms")
            print(f"first analysis (cold, attendance per day): {first:.2f} s = {first / static:.1f}x static "
                  f"(server: {server_seconds}) {'ok' if first <= ANALYSIS_LIMIT else 'OVER'} "
                  f"(limit {ANALYSIS_LIMIT} s)")
            print(f"{'page':28} {'first s':>8} {'median s':>9} {'x static':>9}")
            worst = 0.0
            for path in PAGES:
                times = [timed(tab, base + path) for _ in range(args.rounds)]
                median = statistics.median(times)
                worst = max(worst, times[0], median)
                print(f"{path:28} {times[0]:8.2f} {median:9.2f} {median / static:9.1f}"
                      f"{'' if max(times[0], median) <= PAGE_LIMIT else '  OVER'}")
            print(f"slowest page load: {worst:.2f} s = {worst / static:.1f}x static "
                  f"({'ok' if worst <= PAGE_LIMIT else 'OVER'}: limit {PAGE_LIMIT} s)")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
