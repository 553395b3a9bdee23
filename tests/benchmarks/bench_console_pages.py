"""Benchmark of the web console's page response times on a large database.

Not a test: it prints measured numbers. Run it with the venv's python after `make console`.
`vigil seed` fills a fresh SQLite database (default 100 cameras, 200,000 alarms); `vigil serve` runs on
it without analysis; Debian's headless Chromium logs in as an admin and opens each page several times
from another page, as a person clicking the menu does. A page's time runs from the navigation to the
end of the last request it made (its data has arrived and is rendered: no request for 300 ms after it)
and, where the console names one, its main element visible.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import write_config  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DIST  # noqa: E402
from tests.e2e.gateway_process import GatewayProcess  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402

PASSWORD = "bench admin password 1"
# route -> the element that shows the page has its content (None: the end of its requests is the mark)
PAGES: dict[str, str | None] = {
    "alarms": "alarm-row",
    "alarms/{alarm}": "alarm-detail-status",
    "stats": None,
    "overview": None,
}


def vigil(config: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), *args], check=True, env=env)


def timed_visit(page: Any, path: str, testid: str | None, quiet_ms: int = 300) -> float:
    """Seconds from the navigation to its last request's end (and the main element visible)."""
    pending: set[Any] = set()
    last_end = [0.0]

    def started(request: Any) -> None:
        pending.add(request)

    def ended(request: Any) -> None:
        pending.discard(request)
        last_end[0] = time.perf_counter()

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    t0 = time.perf_counter()
    try:
        page.goto(f"/#/{path}")
        if testid:
            expect(page.get_by_test_id(testid).first).to_be_visible(timeout=30_000)
        shown = time.perf_counter()
        quiet_since = time.perf_counter()
        while (time.perf_counter() - quiet_since) * 1000 < quiet_ms:
            page.wait_for_timeout(25)  # lets Playwright deliver the request events
            if pending:
                quiet_since = time.perf_counter()
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"#/{path}: requests still in flight after 60 s")
        return max(shown, last_end[0]) - t0
    finally:
        page.remove_listener("request", started)
        page.remove_listener("requestfinished", ended)
        page.remove_listener("requestfailed", ended)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--alarms", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7, help="visits of each page")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the seeded database here")
    args = parser.parse_args()
    if not (DIST / "index.html").is_file():
        print("the console is not built: run `make console` first", file=sys.stderr)
        return 2
    if not CHROMIUM.is_file():
        print(f"Chromium not found at {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2

    tmp = tempfile.TemporaryDirectory(prefix="vigil-bench-console-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "VIGIL_BENCH_ADMIN_PASSWORD": PASSWORD}
    config = write_config(
        work,
        server={"host": "127.0.0.1", "port": port},
        users=[{"username": "bench", "role": "admin", "password_env": "VIGIL_BENCH_ADMIN_PASSWORD"}],
    )
    marker = work / f".seeded-{args.cameras}-{args.alarms}"
    if not marker.exists():
        vigil(config, "db", "upgrade", env=env)
        t0 = time.perf_counter()
        vigil(
            config,
            "seed",
            "--cameras",
            str(args.cameras),
            "--alarms",
            str(args.alarms),
            "--no-progress",
            env=env,
        )
        print(f"seeded {args.cameras} cameras and {args.alarms} alarms in {time.perf_counter() - t0:.1f} s")
        marker.touch()
    gateway = GatewayProcess(config, port, env, work / "gateway.log")
    gateway.start()
    try:
        token = httpx.post(
            f"{gateway.url}/api/auth/login", json={"username": "bench", "password": PASSWORD}, timeout=30
        ).json()["token"]
        items = httpx.get(
            f"{gateway.url}/api/alarms",
            params={"limit": 500},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["items"]
        alarm = items[len(items) // 2]["id"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=gateway.url, viewport={"width": 1366, "height": 768})
            page = context.new_page()
            page.goto("/#/login")
            page.locator('[data-testid="login-username"] input, input[data-testid="login-username"]').fill(
                "bench"
            )
            page.locator('[data-testid="login-password"] input, input[data-testid="login-password"]').fill(
                PASSWORD
            )
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("current-user")).to_be_visible(timeout=30_000)
            times: dict[str, list[float]] = {route: [] for route in PAGES}
            for _ in range(args.rounds):
                for route, testid in PAGES.items():
                    page.goto("/#/videos")  # a light page in between: each visit starts from elsewhere
                    timed_visit(page, "videos", None)
                    times[route].append(timed_visit(page, route.format(alarm=alarm), testid))
            browser.close()
    finally:
        gateway.stop()
        tmp.cleanup()

    print(
        f"\nconsole pages, {args.cameras} cameras, {args.alarms} alarms, SQLite; {platform.machine()}, "
        f"{os.cpu_count()} cores; {args.rounds} visits each (s)"
    )
    print(f"{'page':<18}{'p50':>8}{'max':>8}")
    for route, values in times.items():
        print(f"#/{route:<16}{statistics.median(values):>8.3f}{max(values):>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
