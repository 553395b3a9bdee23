"""ONVIF events (PullPoint) and PTZ polling against the loopback SOAP device, and the gateway's watcher."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.onvif import OnvifClient, OnvifEvent
from gateway.cameras.onvif_watch import OnvifWatcher, split_address
from gateway.config.schema import GatewayConfig
from tests.peers.onvif_device import OnvifDevice

pytestmark = pytest.mark.timeout(60)

MOTION = "tns1:RuleEngine/CellMotionDetector/Motion"


def client(device: OnvifDevice, password: str | None = None) -> OnvifClient:
    return OnvifClient("127.0.0.1", device.port, device.user, password or device.password, timeout_s=5)


async def pull_until(sub: Any, count: int, within_s: float = 5.0) -> list[OnvifEvent]:
    found: list[OnvifEvent] = []
    async with asyncio.timeout(within_s):
        while len(found) < count:
            found += await sub.pull(dt.timedelta(seconds=1))
    return found


async def test_motion_events_arrive_with_topic_and_time(device: OnvifDevice) -> None:
    async with client(device) as onvif:
        assert await onvif.events_supported()
        async with onvif.pullpoint(pull_timeout=dt.timedelta(seconds=1)) as sub:
            assert len(device.subscriptions) == 1
            assert await sub.pull() == []  # nothing happened yet: the long poll ends empty
            device.emit_motion(True)
            device.emit_motion(False)
            events = await pull_until(sub, 2)
    assert [e.topic for e in events] == [MOTION, MOTION]
    assert [e.is_motion for e in events] == [True, False]
    assert events[0].data == {"IsMotion": "true"}
    assert events[0].source["VideoSourceConfigurationToken"] == "VideoSourceConfig_1"
    assert events[0].operation == "Changed"
    # UtcTime is the device's own clock (3 hours ahead here); received_at is ours.
    first = events[0]
    assert first.utc_time is not None and first.received_at is not None
    assert abs(first.utc_time - first.received_at - device.clock_offset) < dt.timedelta(seconds=5)
    assert first.to_json()["topic"] == MOTION
    assert device.subscriptions == {}  # unsubscribed on close
    assert "Unsubscribe" in device.actions


async def test_subscription_is_renewed_before_it_terminates(device: OnvifDevice) -> None:
    async with client(device) as onvif:
        sub = onvif.pullpoint(ttl=dt.timedelta(seconds=2), pull_timeout=dt.timedelta(seconds=1))
        await sub.start()
        first_termination = next(iter(device.subscriptions.values()))
        loop = asyncio.get_running_loop()
        end = loop.time() + 3.5  # past the first termination time: only renewals keep it alive
        while loop.time() < end:
            await sub.pull()
        assert sub.renewals >= 1
        assert "Renew" in device.actions
        assert next(iter(device.subscriptions.values())) > first_termination
        device.emit_motion(True)
        assert [e.is_motion for e in await pull_until(sub, 1)] == [True]
    # Closing the client unsubscribes what is still subscribed.
    assert device.subscriptions == {}
    assert device.actions.count("CreatePullPointSubscription") == 1


async def test_forgotten_subscription_is_created_again(device: OnvifDevice) -> None:
    async with client(device) as onvif, onvif.pullpoint(pull_timeout=dt.timedelta(seconds=1)) as sub:
        device.subscriptions.clear()  # the camera rebooted
        device.emit_motion(True)  # lost with the old subscription, as on a real camera
        assert await sub.pull() == []
        assert device.actions.count("CreatePullPointSubscription") == 2
        device.emit_motion(False)
        assert [e.is_motion for e in await pull_until(sub, 1)] == [False]


async def test_no_events_service(device: OnvifDevice) -> None:
    device.events = False
    async with client(device) as onvif:
        assert not await onvif.events_supported()
    device.get_services = False  # the GetCapabilities path says the same
    async with client(device) as onvif:
        assert not await onvif.events_supported()
    device.events = True
    async with client(device) as onvif:
        assert await onvif.events_supported()  # advertised through GetCapabilities too


async def test_ptz_status_follows_the_device(device: OnvifDevice) -> None:
    async with client(device) as onvif:
        device.set_ptz(0.5, 0.25, 0.75, moving=True)
        status = await onvif.ptz_status("Profile_1")
        assert status is not None
        assert (status.pan, status.tilt, status.zoom, status.pan_tilt_move) == (0.5, 0.25, 0.75, "MOVING")
        device.set_ptz(-0.1, 0.0, 0.0)
        status = await onvif.ptz_status("Profile_1")
        assert status is not None and (status.pan, status.pan_tilt_move) == (-0.1, "IDLE")


def watcher_for(device: OnvifDevice, password: str, **kwargs: Any) -> OnvifWatcher:
    config = GatewayConfig.model_validate(
        {
            "sources": [
                {
                    "id": "tank-ptz",
                    "kind": "onvif",
                    "address": f"127.0.0.1:{device.port}",
                    "username": device.user,
                    "password_env": "VIGIL_TEST_ONVIF_PW",
                }
            ],
            "cameras": [
                {
                    "id": "tank-east",
                    "name": "Tank farm east",
                    "source": "tank-ptz",
                    "url": f"rtsp://127.0.0.1:{device.port + 1}/Streaming/Channels/101?transportmode=unicast",
                },
                {"id": "gate", "name": "Gate", "url": "rtsp://127.0.0.1:9/gate"},
            ],
        }
    )
    return OnvifWatcher(
        SimpleNamespace(config=config),
        ptz_interval_s=0.5,
        backoff_s=(0.2, 1.0),
        timeout_s=5,
        environ={"VIGIL_TEST_ONVIF_PW": password},
        **kwargs,
    )


async def wait_for(check: Callable[[], bool], within_s: float = 8.0) -> None:
    async with asyncio.timeout(within_s):
        while not check():  # noqa: ASYNC110 - polling the watcher's state is what the test checks
            await asyncio.sleep(0.05)


async def test_watcher_exposes_ptz_and_last_events(device: OnvifDevice) -> None:
    watcher = watcher_for(device, device.password)
    assert watcher.state("gate") is None  # not on an ONVIF source
    await watcher.start()
    try:
        device.set_ptz(0.3, -0.2, 0.4, moving=True)
        await wait_for(lambda: (watcher.state("tank-east") or {}).get("ptz") is not None)
        await wait_for(lambda: bool(device.subscriptions))
        device.emit_motion(True)
        device.emit_motion(False)
        await wait_for(lambda: len((watcher.state("tank-east") or {})["events"]) >= 2)
        device.set_ptz(0.6, -0.2, 0.4, moving=False)
        await wait_for(lambda: ((watcher.state("tank-east") or {})["ptz"] or {})["pan"] == 0.6)
        state = watcher.state("tank-east")
        assert state is not None
        assert state["error"] is None and state["connected"] and state["events_supported"]
        assert state["profile"] == "Profile_1"
        assert state["ptz"]["moving"] is False and (state["ptz"]["tilt"], state["ptz"]["zoom"]) == (-0.2, 0.4)
        assert [(e["topic"], e["is_motion"]) for e in state["events"]] == [(MOTION, True), (MOTION, False)]
        assert state["events"][0]["time"] is not None
        for _ in range(25):
            device.emit_motion(True)
        await wait_for(lambda: all(e["is_motion"] for e in (watcher.state("tank-east") or {})["events"]))
        events = (watcher.state("tank-east") or {})["events"]
        assert len(events) == 20 and all(e["is_motion"] for e in events)  # only the last 20 are kept
    finally:
        await watcher.stop()
    assert device.subscriptions == {}  # stopping unsubscribes


async def test_watcher_wrong_password_is_an_error_state(
    device: OnvifDevice, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-S3cret"
    watcher = watcher_for(device, wrong)
    caplog.set_level(logging.DEBUG)
    await watcher.start()
    try:
        await wait_for(lambda: (watcher.state("tank-east") or {}).get("error") is not None)
        await wait_for(lambda: device.actions.count("GetSystemDateAndTime") >= 2)  # it keeps retrying
        state = watcher.state("tank-east")
        assert state is not None
        assert "rejected the user name or password" in state["error"]
        assert state["ptz"] is None and not state["connected"]
        assert wrong not in state["error"]
        assert wrong not in caplog.text and device.password not in caplog.text
        # The camera's password is fixed on the camera side: the next attempt works.
        device.password = wrong
        await wait_for(lambda: (watcher.state("tank-east") or {}).get("error") is None)
        await wait_for(lambda: (watcher.state("tank-east") or {}).get("ptz") is not None)
    finally:
        await watcher.stop()


async def test_watcher_missing_password_env(device: OnvifDevice) -> None:
    watcher = watcher_for(device, "x")
    watcher._environ = {}
    await watcher.start()
    try:
        await wait_for(lambda: (watcher.state("tank-east") or {}).get("error") is not None)
        assert "VIGIL_TEST_ONVIF_PW is not set" in (watcher.state("tank-east") or {})["error"]
    finally:
        await watcher.stop()


def test_split_address() -> None:
    assert split_address("10.0.0.5") == ("10.0.0.5", 80)
    assert split_address("cam.local:8080") == ("cam.local", 8080)
    assert split_address("[fe80::1]:8000") == ("fe80::1", 8000)
    assert split_address("http://10.0.0.5:8000/onvif/device_service") == ("10.0.0.5", 8000)
    with pytest.raises(ValueError):
        split_address(":80")


async def test_camera_api_shows_ptz_and_events(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    from gateway.api import create_app
    from gateway.app import Gateway
    from gateway.auth import issue_token
    from gateway.config.schema import load_config
    from gateway.db import upgrade
    from tests.conftest import write_config

    monkeypatch.setenv("VIGIL_TEST_ONVIF_PW", device.password)
    path = write_config(
        tmp_path,
        sources=[
            {
                "id": "ptz",
                "kind": "onvif",
                "address": f"127.0.0.1:{device.port}",
                "username": device.user,
                "password_env": "VIGIL_TEST_ONVIF_PW",
            }
        ],
        cameras=[
            {
                "id": "tank-east",
                "name": "Tank farm east",
                "source": "ptz",
                "url": f"rtsp://127.0.0.1:{device.port + 1}/Streaming/Channels/101",
            }
        ],
    )
    gateway = Gateway(load_config(path))
    upgrade(gateway.db.engine)
    with gateway.db.session() as s:
        secret, _ = issue_token(s, "t", "machine", "viewer")
    client = await aiohttp_client(create_app(gateway))
    device.set_ptz(0.1, 0.2, 0.3)
    device_pw_seen = []

    async def camera() -> dict[str, Any]:
        r = await client.get("/api/cameras/tank-east", headers={"Authorization": f"Bearer {secret}"})
        text = await r.text()
        device_pw_seen.append(device.password in text)
        return dict(await r.json())

    for _ in range(100):
        onvif = (await camera())["onvif"]
        if onvif and onvif.get("ptz"):
            break
        await asyncio.sleep(0.1)
    assert onvif["ptz"]["pan"] == 0.1 and onvif["error"] is None
    assert not any(device_pw_seen)
