"""Fixtures of the console's end-to-end tests: a real `vigil serve` subprocess analysing the sample RTSP
camera, and Debian's Chromium driven by Playwright (Playwright's own browser downloads are never used)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, write_config
from tests.e2e.gateway_process import GatewayProcess
from tests.peers.ports import free_port

DIST = ROOT / "gateway" / "web" / "dist"
CHROMIUM = Path(os.environ.get("VIGIL_CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / "test-artifacts" / "e2e"
README_SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
CAMERA_ID = "walkway"
# The people of the test plant; their passwords reach the gateway through the environment only.
USERS = {
    "admin": ("e2e-admin", "admin", "VIGIL_E2E_ADMIN_PASSWORD", "e2e admin password 1"),
    "operator": ("e2e-operator", "operator", "VIGIL_E2E_OPERATOR_PASSWORD", "e2e operator password 1"),
    "viewer": ("e2e-viewer", "viewer", "VIGIL_E2E_VIEWER_PASSWORD", "e2e viewer password 1"),
}
# Console messages that are the browser's own report of an answer the test asked for (a wrong
# password is a 401, a viewer's forbidden call a 403), not a defect of the page.
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 40[13]")


def _console_problem() -> str | None:
    if not (DIST / "index.html").is_file():
        return (
            "the web console is not built (gateway/web/dist/index.html missing): "
            "run `make console` (npm ci and npm run build in gateway/web)"
        )
    return None


@pytest.fixture(scope="session", autouse=True)
def console_built() -> None:
    """Skip without a console build, except under `make test` (VIGIL_REQUIRE_CONSOLE=1), where the
    build is part of the suite and its absence is a failure."""
    problem = _console_problem()
    if problem is not None:
        if os.environ.get("VIGIL_REQUIRE_CONSOLE") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (make test-system-deps)")


# Every event is its own alarm in the tests (they clear an alarm and wait for the next one at once):
# no cooldown, no merging of re-acquired targets, no flood guard.
NO_REPEAT_RULES = {"defaults": {"cooldown_s": 0, "merge_window_s": 0, "flood_alarms": 10000}}
WHOLE_FRAME_INTRUSION = [{"scene": "intrusion", "min_duration_s": 0, "gap_tolerance_s": 1}]


def start_gateway(
    tmp: Path, rtsp: Any, models_dir: Path, scenes: list[dict[str, Any]], **sections: Any
) -> GatewayProcess:
    """`vigil serve` on a free loopback port: the sample camera with these scenes (pedestrians walk
    through vtest.avi all the time, so intrusion raises within seconds), the big-screen feed target,
    and one user per role."""
    from gateway.config.schema import load_config
    from gateway.db import upgrade
    from gateway.db.engine import Database
    from gateway.models.pack import import_pack

    port = free_port()
    camera = {
        "id": CAMERA_ID,
        "name": "Walkway",
        "location": "east walkway",
        "url": rtsp.url("vtest"),
        "scenes": scenes,
    }
    config_path = write_config(
        tmp,
        cameras=[camera],
        uplink=[{"name": "big-screen", "kind": "websocket", "tier": "big_screen"}],
        users=[{"username": u, "role": r, "password_env": env} for u, r, env, _ in USERS.values()],
        server={"host": "127.0.0.1", "port": port},
        storage={"root": "storage", "clip_pre_s": 1, "clip_post_s": 1},
        alarms=NO_REPEAT_RULES,
        **sections,
    )
    config = load_config(config_path, environ={})
    db = Database(config.database.url)
    upgrade(db.engine)
    import_pack(db, config.storage.root, models_dir, ROOT / "config" / "models")
    db.dispose()
    env = {**os.environ, **{env: pw for _, _, env, pw in USERS.values()}}
    proc = GatewayProcess(config_path, port, env, tmp / "gateway.log")
    proc.start()
    return proc


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, rtsp: Any, models_dir: Path
) -> Iterator[GatewayProcess]:
    """The sample camera with intrusion over the whole frame."""
    proc = start_gateway(tmp_path_factory.mktemp("e2e"), rtsp, models_dir, WHOLE_FRAME_INTRUSION)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def api(gateway: GatewayProcess) -> Iterator[Callable[[str], httpx.Client]]:
    """api(role): an HTTP client logged in as that role's user (bearer session token)."""
    clients: dict[str, httpx.Client] = {}

    def client(role: str) -> httpx.Client:
        if role not in clients:
            username, _, _, password = USERS[role]
            r = httpx.post(
                f"{gateway.url}/api/auth/login", json={"username": username, "password": password}, timeout=10
            )
            r.raise_for_status()
            headers = {"Authorization": f"Bearer {r.json()['token']}"}
            clients[role] = httpx.Client(base_url=gateway.url, headers=headers, timeout=10)
        return clients[role]

    yield client
    for c in clients.values():
        c.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # the camera, the analysis and the feed are real: allow for them
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A page in its own browser context (own cookies and localStorage) that records console errors."""

    def __init__(
        self, browser: Any, base_url: str, width: int, height: int, timezone_id: str | None = None
    ) -> None:
        self.context = browser.new_context(
            base_url=base_url,
            viewport={"width": width, "height": height},
            timezone_id=timezone_id,
            accept_downloads=True,
        )
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not EXPECTED_CONSOLE.search(msg.text):
            self.errors.append(f"console: {msg.text} ({self.page.url})")

    def shot(self, name: str, readme: bool = False) -> None:
        """A screenshot in test-artifacts/e2e; readme: also a small copy (800 px wide, PNG) in
        docs/screenshots, the pictures of the README's quick start, when VIGIL_README_SHOTS=1 (a test
        run leaves the committed pictures alone unless asked to renew them)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), animations="disabled")
        if readme and os.environ.get("VIGIL_README_SHOTS") == "1":
            import cv2

            image = cv2.imread(str(path))
            assert image is not None, f"cannot read the screenshot {path}"
            height, width = image.shape[:2]
            small = cv2.resize(image, (800, round(height * 800 / width)), interpolation=cv2.INTER_AREA)
            README_SHOTS.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(README_SHOTS / f"{name}.png"), small, [cv2.IMWRITE_PNG_COMPRESSION, 9])


@pytest.fixture
def tab(browser: Any, gateway: GatewayProcess) -> Iterator[Callable[..., Tab]]:
    """tab(width=1366, height=768, timezone_id=None): a fresh, logged-out page on the gateway (in the
    browser's zone timezone_id, e.g. "UTC"; default the machine's)."""
    tabs: list[Tab] = []

    def make(width: int = 1366, height: int = 768, timezone_id: str | None = None) -> Tab:
        tabs.append(Tab(browser, gateway.url, width, height, timezone_id))
        return tabs[-1]

    yield make
    for t in tabs:
        t.context.close()
