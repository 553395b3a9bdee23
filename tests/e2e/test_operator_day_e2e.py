"""The operator's day in Debian's headless Chromium against a real `vigil serve` analysing the sample
RTSP camera (issue 16): a new alarm pops up with its picture and a sound in the console and on the
big screen; every time is on the site's clock (Asia/Shanghai) with the browser in UTC, in the list,
the detail, the export and the big screen; batch reject with one reason; alarms of an uploaded video
are marked, shown with their video time and kept out of the live counts; no ASCII-only server text
on the Chinese alarm pages. The camera watches two regions with Chinese names, so two alarms can be
open at once."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import CAMERA_ID, USERS, Tab, start_gateway
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.test_console_e2e import alarms, field, login, poll, raise_new_alarm

pytestmark = pytest.mark.e2e
Api = Callable[[str], httpx.Client]
MakeTab = Callable[..., Tab]
SITE_ZONE = "Asia/Shanghai"
REGIONS = [
    {"name": "西侧通道", "polygon": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]},
    {"name": "东侧通道", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]},
]
# The page's own record of what it played: every oscillator started and every notification shown.
SOUND_JS = """
window.__e2eTones = [];
window.__e2eNotes = [];
const Shown = window.Notification;
class Recorded extends Shown {
  constructor(title, options) {
    window.__e2eNotes.push(title);
    super(title, options);
  }
}
Object.defineProperty(Recorded, "permission", {get: () => Shown.permission});
Recorded.requestPermission = (...args) => Shown.requestPermission(...args);
window.Notification = Recorded;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__e2eTones.push({hz: this.frequency.value, at: Date.now()});
  return start.apply(this, args);
};
"""
# Text nodes on the page that are ASCII words and no Chinese, outside what people typed or named
# (marked translate="no": camera names, ids, region names, notes) and outside hidden elements.
ASCII_TEXT_JS = """
() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    if (!/[A-Za-z]{2,}/.test(text) || /[\\u3400-\\u9fff]/.test(text)) continue;
    const el = n.parentElement;
    if (!el || el.closest('[translate="no"], script, style, noscript, svg')) continue;
    if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) continue;
    bad.push(text.slice(0, 80));
  }
  return bad;
}
"""


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, rtsp: Any, models_dir: Path
) -> Iterator[GatewayProcess]:
    scenes = [{"scene": "intrusion", "min_duration_s": 0, "gap_tolerance_s": 1, "regions": REGIONS}]
    tmp = tmp_path_factory.mktemp("e2e-day")
    proc = start_gateway(tmp, rtsp, models_dir, scenes, site={"timezone": SITE_ZONE})
    try:
        yield proc
    finally:
        proc.stop()


def site_time(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone(ZoneInfo(SITE_ZONE)).strftime("%Y-%m-%d %H:%M:%S")


def watch_answered(response: Any) -> bool:
    """The console's watch for new alarms answering (it polls the newest alarms)."""
    return "/api/alarms?limit=20" in response.url and response.status == 200


def popup_of_new_alarm(page: Page, alarm_id: str) -> Locator:
    """The pop-up once it shows this alarm or a newer one (the camera may raise two at once: the
    pop-up shows the newest, the rest wait behind it)."""
    popup = page.get_by_test_id("alert-popup")
    expect(popup).to_be_visible()
    poll(
        lambda: (popup.get_attribute("data-alarm-id") or "") >= alarm_id,
        15,
        f"a pop-up of {alarm_id} or newer",
    )
    return popup


def tones(page: Page, since_ms: float = 0) -> list[dict[str, float]]:
    """The tones the page started (since a time, ms since the epoch)."""
    return [x for x in page.evaluate("window.__e2eTones") if x["at"] >= since_ms]


def shows_a_picture(img: Locator) -> bool:
    return bool(img.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_a_new_alarm_pops_up_with_its_picture_and_sound_in_the_console_and_on_the_big_screen(
    tab: MakeTab, api: Api
) -> None:
    # The alarms that exist before anyone logs in: the console's watcher starts at login, so an alarm
    # raised between login and this poll would rightly be new to it.
    existing = poll(lambda: alarms(api("operator")), 60, "the sample camera's first alarms")
    console, screen = tab(), tab(1920, 1080)
    for t, role in ((console, "operator"), (screen, "viewer")):
        t.page.add_init_script(SOUND_JS)
        login(t, role)
    with console.page.expect_response(watch_answered):  # the console's first look at the list
        console.page.goto("/#/overview")
    console.context.grant_permissions(["notifications"])
    console.page.get_by_test_id("alert-bell").click()
    console.page.get_by_test_id("alert-notify-toggle").click()  # browser notifications on
    expect(console.page.get_by_test_id("alert-notify-toggle")).to_have_class(re.compile("is-checked"))
    console.page.get_by_test_id("alert-bell").click()
    screen.page.goto("/#/screen")
    expect(screen.page.get_by_test_id("screen-conn")).to_have_attribute("data-state", "open")
    # What existed before the console looked never alerts.
    for old in existing:
        expect(
            console.page.locator(f'[data-testid="alert-popup"][data-alarm-id="{old["id"]}"]')
        ).to_have_count(0)

    raised_ms = time.time() * 1000
    alarm_id, _ = raise_new_alarm(api)
    priority = api("operator").get(f"/api/alarms/{alarm_id}").json()["priority"]
    for t in (console, screen):
        popup = popup_of_new_alarm(t.page, alarm_id)
        picture = popup.get_by_test_id("alert-snapshot")
        expect(picture).to_be_visible()
        poll(partial(shows_a_picture, picture), 10, "the picture")
        expect(popup.get_by_test_id("alert-scene")).to_have_text(re.compile(r"[\u4e00-\u9fff]"))
        played = poll(partial(tones, t.page, raised_ms), 5, "the alert sound")
        # The sound of the alarm's priority: a siren (880/660 Hz) from 3, two 740 Hz beeps at 2, else one.
        expected = {880.0, 660.0} if priority >= 3 else {740.0} if priority == 2 else {520.0}
        assert {tone["hz"] for tone in played} == expected, played
    notes = poll(lambda: console.page.evaluate("window.__e2eNotes"), 5, "a browser notification")
    assert all(n.startswith("新报警") for n in notes), notes
    expect(console.page.get_by_test_id("nav-alarms-unread")).to_have_text(re.compile(r"^[1-9]"))
    assert int(console.page.get_by_test_id("alert-bell").get_attribute("data-unread") or 0) >= 1
    console.shot("alert-popup-console", readme=True)
    screen.shot("alert-popup-screen", readme=True)

    # Muted: remembered in this browser, and the next alarm pops up without a sound.
    console.page.get_by_test_id("alert-bell").click()
    console.page.get_by_test_id("alert-sound-toggle").click()
    assert console.page.evaluate("JSON.parse(localStorage.getItem('vigil.alerts')).sound") is False
    with console.page.expect_response(watch_answered):
        console.page.reload()
    before = len(tones(console.page))
    alarm_id, _ = raise_new_alarm(api)
    shown = popup_of_new_alarm(console.page, alarm_id).get_attribute("data-alarm-id")
    console.page.wait_for_timeout(500)
    assert len(tones(console.page)) == before, "a muted console played a sound"
    console.page.get_by_test_id("alert-view").click()  # opens the alarm and counts it read
    expect(console.page).to_have_url(re.compile(f"#/alarms/{shown}$"))
    expect(console.page.get_by_test_id("nav-alarms-unread")).to_have_count(0)
    assert not console.errors and not screen.errors, console.errors + screen.errors


def test_every_time_is_on_the_sites_clock_with_the_browser_in_utc(
    tab: MakeTab, api: Api, tmp_path: Path
) -> None:
    t = tab(1920, 1080, timezone_id="UTC")
    page = t.page
    login(t, "operator")
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "UTC"
    alarm_id, _ = raise_new_alarm(api)
    alarm = api("operator").get(f"/api/alarms/{alarm_id}").json()
    shown = site_time(alarm["occurred_at"])
    utc_shown = (
        dt.datetime.fromisoformat(alarm["occurred_at"]).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    )
    assert shown != utc_shown  # 8 hours apart: the test tells the two clocks apart

    clock = page.get_by_test_id("site-clock")
    expect(clock).to_have_attribute("data-zone", SITE_ZONE)
    expect(clock).to_contain_text(f"{SITE_ZONE} (UTC+08:00)")
    assert SITE_ZONE in (clock.get_attribute("title") or "")

    page.goto("/#/alarms")
    row = page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]')
    expect(row.get_by_test_id("alarm-time")).to_have_text(shown)
    page.goto(f"/#/alarms/{alarm_id}")
    expect(page.get_by_test_id("alarm-detail-time")).to_have_text(shown)

    # Today's alarms by the site's day in the date filter, and the export of the same selection.
    today = dt.datetime.now(ZoneInfo(SITE_ZONE)).date().isoformat()
    page.goto(f"/#/alarms?from={today}&to={today}")
    expect(page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]')).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    path = tmp_path / "alarms.csv"
    download.value.save_as(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert SITE_ZONE in rows[0][1]
    exported = {r[0]: r[1] for r in rows[1:]}
    assert exported[alarm_id] == shown
    assert all(v.startswith(today) for v in exported.values()), "the export has alarms of another site day"

    page.goto("/#/screen")
    item = page.locator(f'[data-testid="screen-alarm"][data-alarm-id="{alarm_id}"]')
    expect(item.get_by_test_id("screen-alarm-time")).to_have_text(shown)
    local_now = dt.datetime.now(ZoneInfo(SITE_ZONE))
    expect(page.get_by_test_id("screen-clock")).to_contain_text(
        re.compile(rf"{local_now:%H}:\d\d:\d\d|\d\d:00:\d\d")
    )
    t.shot("screen-site-clock-browser-utc")
    assert not t.errors, t.errors


def test_the_statistics_date_picker_shows_the_range_on_the_sites_clock(tab: MakeTab) -> None:
    """Browser in UTC, site in Asia/Shanghai: the default range (the last 30 site days) reads from the
    site's midnight, and the picker shows the same instants the page asks the API for."""
    t = tab(1366, 768, timezone_id="UTC")
    page = t.page
    login(t, "operator")
    with page.expect_request(lambda r: "/api/stats/alarms" in r.url) as asked:
        page.goto("/#/stats")
    since = httpx.URL(asked.value.url).params["since"]
    since_site = dt.datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(ZoneInfo(SITE_ZONE))
    assert (since_site.hour, since_site.minute, since_site.second) == (0, 0, 0)  # the site's midnight
    first_day = dt.datetime.now(ZoneInfo(SITE_ZONE)).date() - dt.timedelta(days=29)
    assert since_site.date() in (first_day, first_day - dt.timedelta(days=1))  # (a run across midnight)
    shown = page.get_by_test_id("page-stats").locator("input.el-range-input")
    expect(shown.first).to_have_value(since_site.strftime("%Y-%m-%d %H:%M:%S"))  # not 16:00 the day before
    end = dt.datetime.strptime(shown.nth(1).input_value(), "%Y-%m-%d %H:%M:%S")
    now_site = dt.datetime.now(ZoneInfo(SITE_ZONE)).replace(tzinfo=None)
    assert dt.timedelta(0) <= now_site - end < dt.timedelta(minutes=10), (end, now_site)

    # A range picked in the picker (the shortcut "today") is read back as the site's instants.
    shown.first.click()
    with page.expect_request(lambda r: "/api/stats/alarms" in r.url) as asked:
        page.locator(".el-picker-panel__shortcut", has_text="今天").click()
    since = httpx.URL(asked.value.url).params["since"]
    since_site = dt.datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(ZoneInfo(SITE_ZONE))
    assert since_site.strftime("%H:%M:%S") == "00:00:00"
    assert since_site.date() >= dt.datetime.now(ZoneInfo(SITE_ZONE)).date() - dt.timedelta(days=1)
    assert not t.errors, t.errors


def two_raised(op: httpx.Client) -> list[str] | None:
    raised = [a["id"] for a in alarms(op, status="raised")]
    return raised[:2] if len(raised) >= 2 else None


def test_batch_reject_with_one_reason(tab: MakeTab, api: Api) -> None:
    op = api("operator")
    poll(lambda: alarms(op), 60, "the sample camera's first alarms")
    raise_new_alarm(api)  # clears what is open; both regions raise again while people walk through
    raised = poll(lambda: two_raised(op), 30, "an alarm in each region")
    other = next(a["id"] for a in alarms(op, status="cleared"))
    t = tab()
    login(t, "operator")
    page = t.page
    page.goto("/#/alarms")
    for alarm_id in [*raised, other]:
        page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]').get_by_test_id(
            "alarm-select"
        ).check()
    expect(page.get_by_test_id("batch-count")).to_contain_text("3")
    # Meanwhile another operator confirms one of them: a true alarm is not rejected with the rest.
    assert op.post(f"/api/alarms/{other}/confirm", json={}).status_code == 200
    page.get_by_test_id("batch-reject").click()
    page.get_by_test_id("batch-submit").click()  # no reason: refused in the page, nothing sent
    expect(page.locator(".el-dialog .el-alert")).to_be_visible()
    field(page, "batch-reason").fill("行人正常通行，非闯入")
    page.get_by_test_id("batch-submit").click()
    message = page.locator(".batch-result")
    expect(message).to_contain_text("已处理 2 条")
    expect(message).to_contain_text("1 条未处理")
    t.shot("alarms-batch-reject", readme=True)
    for alarm_id in raised:
        a = op.get(f"/api/alarms/{alarm_id}").json()
        assert (a["status"], a["verdict"], a["verdict_reason"]) == (
            "rejected",
            "false_positive",
            "行人正常通行，非闯入",
        )
        row = page.locator(f'[data-testid="alarm-row"][data-alarm-id="{alarm_id}"]')
        expect(row.get_by_test_id("alarm-status")).to_have_attribute("data-status", "rejected")
    assert op.get(f"/api/alarms/{other}").json()["verdict"] == "true_positive"
    assert not t.errors, t.errors


def test_uploaded_video_alarms_are_marked_and_kept_out_of_live_counts(
    tab: MakeTab, api: Api, vtest: Path, tmp_path: Path
) -> None:
    from tests.videos.test_video_import import cut

    op = api("operator")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)  # today, as live ones
    clip = cut(vtest, tmp_path / "vtest-4s.avi", 4)
    r = op.post(
        "/api/videos",
        params={"camera_id": CAMERA_ID, "start": start.isoformat(), "filename": "vtest.avi"},
        content=clip.read_bytes(),
        headers={"Content-Type": "video/x-msvideo"},
    )
    assert r.status_code == 202, r.text
    video = poll(lambda: alarms(op, source="video"), 60, "the uploaded video's alarms")[0]
    assert video["source"] == "video" and video["video_ts"] is not None

    t = tab()
    login(t, "operator")
    page = t.page
    page.goto("/#/alarms?source=video")
    row = page.locator(f'[data-testid="alarm-row"][data-alarm-id="{video["id"]}"]')
    marker = row.get_by_test_id("alarm-source")
    expect(marker).to_have_attribute("data-source", "video")
    expect(marker).to_contain_text("离线视频")
    expect(marker).to_contain_text(re.compile(r"视频内 \d\d:\d\d:\d\d"))
    t.shot("alarms-offline-video", readme=True)
    problems = [f"list: {s}" for s in page.evaluate(ASCII_TEXT_JS)]
    page.goto(f"/#/alarms/{video['id']}")
    expect(page.get_by_test_id("alarm-detail-source")).to_have_attribute("data-source", "video")
    expect(page.get_by_test_id("alarm-timeline")).to_be_visible()
    problems += [f"video alarm detail: {s}" for s in page.evaluate(ASCII_TEXT_JS)]
    live = alarms(op, source="live")[0]
    page.goto(f"/#/alarms/{live['id']}")
    expect(page.get_by_test_id("alarm-detail-source")).to_have_attribute("data-source", "live")
    problems += [f"live alarm detail: {s}" for s in page.evaluate(ASCII_TEXT_JS)]
    assert not problems, "ASCII-only text in the Chinese alarm pages:\n" + "\n".join(problems)

    # Live counts: the overview's today is the live alarms of the site's day, the offline ones apart.
    midnight = dt.datetime.now(ZoneInfo(SITE_ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)
    counted = op.get("/api/stats/overview").json()["today"]["total"]
    live_today = op.get(
        "/api/alarms", params={"source": "live", "since": midnight.isoformat(), "count": "1", "limit": "1"}
    ).json()["total"]
    assert counted <= live_today, (counted, live_today)
    page.goto("/#/overview")
    expect(page.get_by_test_id("overview-today")).to_be_visible()
    page.goto("/#/screen")
    expect(page.get_by_test_id("screen-conn")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("screen-alarm").first).to_be_visible()
    assert page.locator(f'[data-testid="screen-alarm"][data-alarm-id="{video["id"]}"]').count() == 0
    assert not t.errors, t.errors


def test_enter_logs_in_with_one_request_and_the_live_wall_shows_frames_and_alarms(
    tab: MakeTab, api: Api
) -> None:
    poll(lambda: alarms(api("operator"), status="open"), 60, "an open alarm")
    t = tab()
    page = t.page
    logins: list[str] = []
    page.on("request", lambda r: logins.append(r.method) if r.url.endswith("/api/auth/login") else None)
    page.goto("/#/login")
    field(page, "login-username").fill(USERS["operator"][0])
    field(page, "login-password").fill(USERS["operator"][3])
    field(page, "login-password").press("Enter")
    expect(page.get_by_test_id("current-user")).to_contain_text(USERS["operator"][0])
    page.wait_for_timeout(300)
    assert logins == ["POST"], logins

    page.goto("/#/live")
    tile = page.locator(f'[data-testid="live-tile"][data-camera-id="{CAMERA_ID}"]')
    frame = tile.get_by_test_id("live-frame")
    expect(frame).to_be_visible()
    poll(partial(shows_a_picture, frame), 15, "the camera's picture")
    first = frame.get_attribute("src")
    poll(lambda: frame.get_attribute("src") != first, 10, "the next picture")  # it follows the stream
    expect(tile.get_by_test_id("live-badge")).to_be_visible()
    t.shot("live-wall", readme=True)
    assert not t.errors, t.errors
