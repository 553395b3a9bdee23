"""The web console end to end, in Debian's headless Chromium against a real `vigil serve` that analyses
the sample RTSP camera: an operator handles a real alarm, an admin draws a region, the big screen gets
new alarms (also across a gateway restart), roles hold in the console and the API (a viewer cannot
confirm, only an admin edits cameras), and every page renders cleanly in both languages at 1366x768 and
1920x1080. Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import CAMERA_ID, USERS, Tab
from tests.e2e.gateway_process import GatewayProcess

pytestmark = pytest.mark.e2e
Api = Callable[[str], httpx.Client]
MakeTab = Callable[..., Tab]
CJK = re.compile(r"[\u4e00-\u9fff]")
# Records when each big-screen alarm first appears in the page (browser clock = gateway clock: one host).
SEEN_JS = """
window.__e2eSeen = {};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('[data-testid="screen-alarm"]')) {
    const id = el.getAttribute('data-alarm-id');
    if (id && !(id in window.__e2eSeen)) window.__e2eSeen[id] = Date.now();
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-alarm-id']});
"""


def field(page: Page, testid: str) -> Locator:
    """The text box behind a test id: on the <input> itself or on a component that wraps one."""
    sel = f'[data-testid="{testid}"]'
    return page.locator(f"input{sel}, textarea{sel}, {sel} input, {sel} textarea").first


def login(tab: Tab, role: str) -> None:
    username, _, _, password = USERS[role]
    page = tab.page
    page.goto("/#/login")
    field(page, "login-username").fill(username)
    field(page, "login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)
    expect(page).not_to_have_url(re.compile(r"#/login"))  # the console has left the login page


def poll(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


def alarms(client: httpx.Client, **query: str) -> list[dict[str, Any]]:
    r = client.get("/api/alarms", params={"camera_id": CAMERA_ID, **query})
    r.raise_for_status()
    return list(r.json()["items"])


def epoch_ms(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp() * 1000


def raise_new_alarm(api: Api) -> tuple[str, float]:
    """Clear the camera's open alarms (that re-arms the rule); pedestrians keep walking through the
    video, so the camera raises a new alarm within a frame or two. Returns its id and the time the
    gateway recorded it (its first revision), in ms since the epoch."""
    op = api("operator")
    newest = max((a["id"] for a in alarms(op)), default="")  # ULIDs sort by creation time
    for alarm in alarms(op, status="open"):
        r = op.post(f"/api/alarms/{alarm['id']}/clear", json={"note": "e2e: re-arm"})
        assert r.status_code == 200, r.text
    fresh = poll(
        lambda: [a for a in alarms(op) if a["id"] > newest], 30, "the sample camera to raise a new alarm"
    )
    detail = op.get(f"/api/alarms/{fresh[-1]['id']}").json()
    return detail["id"], epoch_ms(detail["revisions"][0]["at"])


@pytest.fixture(scope="module")
def first_alarm(api: Api) -> str:
    """The first alarm the sample camera raised."""
    found = poll(lambda: alarms(api("admin")), 60, "the sample camera's first alarm")
    return str(found[-1]["id"])


def test_operator_logs_in_and_confirms_and_disposes_a_camera_alarm(
    tab: MakeTab, api: Api, first_alarm: str
) -> None:
    t = tab()
    page = t.page
    page.goto("/#/overview")
    expect(page).to_have_url(re.compile(r"#/login"))  # no session: the console asks for one
    field(page, "login-username").fill(USERS["operator"][0])
    field(page, "login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    t.shot("login-error")
    field(page, "login-password").fill(USERS["operator"][3])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(USERS["operator"][0])

    page.get_by_test_id("nav-alarms").click()
    row = page.locator(f'[data-testid="alarm-row"][data-alarm-id="{first_alarm}"]')
    expect(row).to_be_visible()
    expect(row.get_by_test_id("alarm-status")).to_be_visible()
    t.shot("alarms-list")
    row.click()
    expect(page).to_have_url(re.compile(f"#/alarms/{first_alarm}$"))
    status = page.get_by_test_id("alarm-detail-status")
    expect(status).to_have_attribute("data-status", "raised")
    expect(page.get_by_test_id("alarm-snapshot").first).to_be_visible()

    page.get_by_test_id("alarm-confirm").click()
    field(page, "confirm-note").fill("e2e: a person on the walkway")
    page.get_by_test_id("confirm-submit").click()
    expect(status).to_have_attribute("data-status", "confirmed")
    page.get_by_test_id("alarm-dispose").click()
    field(page, "dispose-handler").fill("Li Lei")
    field(page, "dispose-result").fill("person escorted off the walkway")
    field(page, "dispose-measures").fill("walkway barrier repaired")
    page.get_by_test_id("dispose-submit").click()
    expect(status).to_have_attribute("data-status", "disposed")
    expect(page.get_by_test_id("dispose-submit")).to_be_hidden()
    expect(page.get_by_test_id("alarm-timeline").get_by_test_id("timeline-item")).to_have_count(3)
    t.shot("alarm-disposed")

    detail = api("admin").get(f"/api/alarms/{first_alarm}").json()
    operator = USERS["operator"][0]
    assert [r["action"] for r in detail["revisions"]] == ["raised", "confirmed", "disposed"]
    assert [r["actor"] for r in detail["revisions"][1:]] == [operator, operator]
    assert detail["revisions"][1]["note"] == "e2e: a person on the walkway"
    [disposal] = detail["disposals"]
    assert (disposal["handler"], disposal["result"], disposal["measures"]) == (
        "Li Lei",
        "person escorted off the walkway",
        "walkway barrier repaired",
    )


def test_admin_draws_a_region_on_the_camera_snapshot(tab: MakeTab, api: Api) -> None:
    t = tab()
    login(t, "admin")  # camera configuration is an admin's (cameras:write)
    page = t.page
    page.goto(f"/#/cameras/{CAMERA_ID}")
    canvas = page.get_by_test_id("region-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    corners = [(0.1, 0.2), (0.9, 0.2), (0.9, 0.95), (0.1, 0.95)]
    field(page, "region-name").fill("e2e-zone")  # the name the next closed polygon takes
    for x, y in corners:
        canvas.click(position={"x": box["width"] * x, "y": box["height"] * y})
    page.get_by_test_id("region-finish").click()
    page.get_by_test_id("region-save").click()
    expect(page.get_by_test_id("region-item").filter(has_text="e2e-zone")).to_be_visible()
    t.shot("camera-region")

    def stored() -> list[list[float]] | None:
        camera = api("admin").get(f"/api/cameras/{CAMERA_ID}").json()
        for scene in camera["scenes"]:
            for region in scene["regions"]:
                if region["name"] == "e2e-zone":
                    return list(region["polygon"])
        return None

    polygon = poll(stored, 10, "GET /api/cameras/{id} to show the saved region")
    assert len(polygon) == 4
    for (x, y), (sx, sy) in zip(corners, polygon, strict=True):
        assert abs(sx - x) < 0.03 and abs(sy - y) < 0.03, (corners, polygon)


def test_big_screen_shows_new_alarms_within_2_s_and_reconnects_after_a_gateway_restart(
    tab: MakeTab, api: Api, gateway: GatewayProcess
) -> None:
    t = tab(1920, 1080)
    page = t.page
    page.add_init_script(SEEN_JS)
    login(t, "viewer")  # a control-room screen only reads
    page.goto("/#/screen")
    conn = page.get_by_test_id("screen-conn")
    expect(conn).to_have_attribute("data-state", "open")
    page.evaluate("window.__e2eSameDocument = true")

    alarm_id, recorded_ms = raise_new_alarm(api)
    expect(page.locator(f'[data-testid="screen-alarm"][data-alarm-id="{alarm_id}"]')).to_be_visible()
    latency_s = (page.evaluate("id => window.__e2eSeen[id]", alarm_id) - recorded_ms) / 1000
    print(f"big screen: alarm on screen {latency_s:.3f} s after the gateway recorded it")
    assert latency_s <= 2.0, f"alarm {alarm_id} reached the big screen {latency_s:.2f} s after it was raised"
    t.shot("screen-1920x1080")

    gateway.stop()
    expect(conn).to_have_attribute("data-state", "closed")
    gateway.start()
    expect(conn).to_have_attribute("data-state", "open", timeout=60_000)
    alarm_id, _ = raise_new_alarm(api)
    expect(page.locator(f'[data-testid="screen-alarm"][data-alarm-id="{alarm_id}"]')).to_be_visible()
    assert page.evaluate("window.__e2eSameDocument === true"), "the big screen reloaded the page"
    t.shot("screen-after-restart")


def test_viewer_cannot_confirm_in_the_console_nor_through_the_api(tab: MakeTab, api: Api) -> None:
    admin = api("admin")
    alarm_id, _ = raise_new_alarm(api)
    operator = tab()
    login(operator, "operator")
    operator.page.goto(f"/#/alarms/{alarm_id}")
    expect(operator.page.get_by_test_id("alarm-confirm")).to_be_visible()  # the button exists for some
    operator.page.goto(f"/#/cameras/{CAMERA_ID}")
    expect(operator.page.get_by_test_id("region-canvas")).to_be_visible()
    expect(operator.page.get_by_test_id("region-save")).to_have_count(0)  # cameras:write is admin only

    viewer = tab()
    login(viewer, "viewer")
    page = viewer.page
    expect(page.get_by_test_id("nav-users")).to_have_count(0)
    page.goto(f"/#/alarms/{alarm_id}")
    expect(page.get_by_test_id("alarm-detail-status")).to_have_attribute("data-status", "raised")
    expect(page.get_by_test_id("alarm-confirm")).to_have_count(0)
    viewer.shot("viewer-alarm-detail")
    page.goto(f"/#/cameras/{CAMERA_ID}")
    expect(page.get_by_test_id("region-canvas")).to_be_visible()
    expect(page.get_by_test_id("region-save")).to_have_count(0)
    # The browser's own session cookie, straight at the API: refused, and nothing changes.
    r = page.request.post(f"/api/alarms/{alarm_id}/confirm", data={})
    assert r.status == 403, r.text()
    assert admin.get(f"/api/alarms/{alarm_id}").json()["status"] == "raised"


def test_operator_uploads_plays_and_replays_a_library_video(
    tab: MakeTab, api: Api, vtest: Path, tmp_path: Path
) -> None:
    from tests.videos.test_video_import import cut

    op = api("operator")
    start = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    clip = cut(vtest, tmp_path / "vtest-4s.avi", 4)  # a few seconds keep the two analyses short
    r = op.post(
        "/api/videos",
        params={"camera_id": CAMERA_ID, "start": start.isoformat(), "filename": "vtest.avi"},
        content=clip.read_bytes(),
        headers={"Content-Type": "video/x-msvideo"},
    )
    assert r.status_code == 202, r.text
    video_id = r.json()["video_id"]

    t = tab()
    login(t, "operator")
    page = t.page
    page.goto("/#/videos")
    cell = page.locator(f'[data-testid="video-row"][data-video-id="{video_id}"]')
    expect(cell).to_be_visible()
    row = page.locator("tr", has=cell)
    row.get_by_test_id("video-play").click()
    player = page.get_by_test_id("video-player")
    expect(player).to_be_visible()
    # Chromium cannot decode this AVI (MS-MPEG4), so check what the player relies on: Range requests.
    src = player.get_attribute("src")
    status = page.evaluate("async src => (await fetch(src, {headers: {Range: 'bytes=0-1023'}})).status", src)
    assert status == 206, f"{src} answered {status} to a Range request"
    t.shot("video-player")
    page.keyboard.press("Escape")
    expect(player).to_be_hidden()

    row.get_by_test_id("video-replay").click()  # fills the replay form with the video's camera and range
    page.get_by_test_id("replay-submit").click()
    job = poll(lambda: op.get("/api/replay").json()["items"], 10, "the replay job to be listed")[0]
    assert job["camera_ids"] == [CAMERA_ID] and job["created_by"] == USERS["operator"][0]
    assert epoch_ms(job["since"]) == epoch_ms(start.isoformat())
    job_row = page.locator(f'[data-testid="replay-row"][data-job-id="{job["id"]}"]')
    expect(job_row).to_have_attribute("data-status", "done", timeout=60_000)
    detail = op.get(f"/api/replay/{job['id']}").json()
    assert [v["video_id"] for v in detail["videos"]] == [video_id]
    t.shot("video-replay-done")
    assert not t.errors, t.errors


PAGES = [
    "overview",
    "stats",
    "alarms",
    "alarms/{alarm}",
    "live",
    "cameras",
    "cameras/{camera}",
    "videos",
    "models",
    "samples",
    "uplinks",
    "users",
    "screen",
]
# What shows that a page has its data, where the contract names it.
CONTENT = {
    "alarms": "alarm-row",
    "alarms/{alarm}": "alarm-detail-status",
    "cameras": "camera-row",
    "cameras/{camera}": "region-canvas",
    "live": "live-frame",
    "screen": "screen-alarm",
}
# Text cut off: an element holding text whose content is wider (or, when it hides overflow, taller)
# than its box. Allowed: scroll containers (all of it is reachable) and a deliberate ellipsis whose
# element or an ancestor carries the full text as a tooltip (title).
CLIPPED_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'inline' || cs.display === 'contents') continue;
    if (['auto', 'scroll'].includes(cs.overflowX)) continue;
    const wide = el.scrollWidth > el.clientWidth + 1;
    const tall = ['hidden', 'clip'].includes(cs.overflowY) && el.scrollHeight > el.clientHeight + 1;
    if (!wide && !tall) continue;
    if (cs.textOverflow === 'ellipsis' && el.closest('[title]')) continue;
    const what = el.tagName.toLowerCase() + [...el.classList].map(c => '.' + c).join('');
    const size = `${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`;
    out.push(`${what} "${el.textContent.trim().slice(0, 40)}" ${size}`);
  }
  return out;
}
"""


def settle(tab: Tab, quiet_ms: int = 300, seconds: float = 15.0) -> None:
    """Wait until no request of the page has been in flight for quiet_ms (the page's data has come)."""
    pending: set[Any] = set()

    def started(request: Any) -> None:
        pending.add(request)

    def ended(request: Any) -> None:
        pending.discard(request)

    page = tab.page
    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    try:
        deadline, quiet_since = time.monotonic() + seconds, time.monotonic()
        while time.monotonic() < deadline:
            page.wait_for_timeout(50)  # lets Playwright deliver the request events
            if pending:
                quiet_since = time.monotonic()
            elif (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
                return
        raise AssertionError(f"{page.url}: requests still in flight after {seconds} s: {pending}")
    finally:
        page.remove_listener("request", started)
        page.remove_listener("requestfinished", ended)
        page.remove_listener("requestfailed", ended)


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_every_page_renders_in_both_languages_without_errors_scroll_or_clipped_text(
    tab: MakeTab, first_alarm: str, width: int, height: int
) -> None:
    t = tab(width, height)
    login(t, "admin")
    page = t.page
    nav = page.get_by_test_id("nav-overview")
    expect(nav).to_have_text(CJK)  # Chinese by default
    problems: list[str] = []
    for lang in ("zh", "en"):
        if lang == "en":
            page.goto("/#/overview")
            page.get_by_test_id("lang-toggle").click()
            expect(nav).not_to_have_text(CJK)
            assert page.evaluate("localStorage.getItem('vigil.lang')") == "en"
        for route in PAGES:
            path = route.format(alarm=first_alarm, camera=CAMERA_ID)
            errors_before = len(t.errors)
            page.goto(f"/#/{path}")
            if route in CONTENT:
                try:
                    expect(page.get_by_test_id(CONTENT[route]).first).to_be_visible()
                except AssertionError:
                    problems.append(f"#/{route} ({lang}): no data-testid={CONTENT[route]} shown")
            settle(t)
            if page.get_by_test_id("page-placeholder").count():  # the router's stand-in for a missing page
                problems.append(f"#/{route} ({lang}): the page is missing (placeholder shown)")
            if route == "screen" and lang == "zh":
                try:
                    expect(page.get_by_test_id("screen")).to_have_text(CJK)
                except AssertionError:
                    problems.append(f"#/{route} ({lang}): the big screen shows no Chinese")
            problems += [f"#/{route} ({lang}): clipped text: {c}" for c in page.evaluate(CLIPPED_JS)]
            scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll[0] > scroll[1]:
                problems.append(f"#/{route} ({lang}): horizontal scroll, {scroll[0]} px wide in {scroll[1]}")
            problems += [f"#/{route} ({lang}): {e}" for e in t.errors[errors_before:]]
            t.shot(f"{route.split('/')[0]}{'-detail' if '/' in route else ''}-{lang}-{width}x{height}")
    assert not problems, "\n".join(problems)
