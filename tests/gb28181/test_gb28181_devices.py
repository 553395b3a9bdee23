"""GB/T 28181 devices in the running gateway, against SIPp devices on loopback:

- a device's Alarm notification becomes a vigil alarm (mapped type, the channel's camera, the device's
  priority/method/type/description in details, outbox rows), once per device + channel + AlarmTime + type;
- an unknown device is held for approval (``unknown_devices: hold``), listed by the API, approved with a
  password (then its digest REGISTER succeeds) or refused; both decisions survive a restart, the approval
  stored as the digest HA1 only (a wrong password still gets 403);
- a GB channel camera added through POST /api/cameras is INVITEd and analysed like a configured one.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.gb28181.manscdp import AlarmNotify
from adapters.gb28181.sip.digest import ha1_of
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, GbDeviceApproval, OutboxRow
from gateway.gb28181.service import our_priority, parse_gb_time
from tests.conftest import DEMO_SCENES, ROOT, wait_until, write_config
from tests.delivery.test_uplink_delivery import auth
from tests.gb28181.sipp import Sipp
from tests.gb28181.test_gb28181_gateway import (
    CHANNELS,
    DEVICE,
    DEVICE_PASSWORD,
    DOMAIN,
    SERVER_ID,
    device_scenarios,
)

pytestmark = pytest.mark.timeout(120)


def server_config(**extra: Any) -> dict[str, Any]:
    return {"server_id": SERVER_ID, "domain": DOMAIN, "host": "127.0.0.1", "port": 0, "tcp": False, **extra}


def gateway(tmp: Path, analyse: bool = False, **sections: Any) -> Gateway:
    gw = Gateway(load_config(write_config(tmp, **sections), environ={}), analyse=analyse)
    upgrade(gw.db.engine)
    return gw


async def holding_gateway(tmp: Path, aiohttp_client: Any) -> tuple[Gateway, Any, Any]:
    """A gateway whose registrar holds unknown devices for approval, its API client and registrar."""
    gw = gateway(tmp, gb28181={"server": server_config(unknown_devices="hold")})
    client = await aiohttp_client(create_app(gw))
    assert gw.gb28181.upper is not None
    return gw, client, gw.gb28181.upper


async def register_unknown(tmp: Path, upper: Any) -> Sipp:
    """SIPp REGISTERs as a device the registrar does not know; the scenario expects 403, no challenge."""
    sipp = Sipp("device_unknown.xml", tmp, remote_port=upper.port, inf="device.csv")
    await sipp.start()
    (await sipp.wait()).check()
    return sipp


def known_device(tmp: Path, upper: Any) -> Sipp:
    """The whole device scenario (digest REGISTER, keepalive, queries, INVITE, alarm) with its password."""
    return Sipp(
        "device_uac.xml",
        tmp,
        remote_port=upper.port,
        ooc="device_ooc.xml",
        inf="device.csv",
        auth=(DEVICE, DEVICE_PASSWORD),
    )


def test_time_and_priority_helpers() -> None:
    when = parse_gb_time("2026-11-21T19:30:00", "Asia/Shanghai")
    assert when is not None and when.isoformat() == "2026-11-21T11:30:00+00:00"
    assert parse_gb_time("yesterday", "Asia/Shanghai") is None
    assert [our_priority(p) for p in (1, 2, 3, 4, 0, 9)] == [4, 3, 2, 1, 2, 2]


async def test_device_alarm_is_stored_and_sent_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    server = server_config(devices=[{"id": DEVICE, "password_env": "VIGIL_TEST_GB_DEVICE_PW"}])
    target = {"name": "park", "kind": "http", "tier": "park", "http": {"url": "http://127.0.0.1:9/a"}}
    gw = gateway(tmp_path, gb28181={"server": server}, uplink=[target])
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    sipp = known_device(tmp_path, upper)
    try:
        await sipp.start()
        # device_ooc.xml answers our Alarm <Response> MESSAGE; check() fails if it never came
        (await sipp.wait()).check()

        def stored() -> int:
            with gw.db.session() as s:
                return len(list(s.scalars(select(Alarm.id))))

        await wait_until(stored, 10, "the device alarm stored")
        resp = await client.get("/api/alarms", headers=auth(gw, "viewer"))
        assert resp.status == 200
        items = (await resp.json())["items"]
        assert len(items) == 1, items
        alarm = items[0]
        # AlarmMethod 5 + AlarmType 6 is intrusion in config/alarm_types.yaml; AlarmPriority 1 is urgent.
        assert (alarm["scene"], alarm["camera_id"], alarm["status"], alarm["priority"]) == (
            "intrusion",
            CHANNELS[0],
            "raised",
            4,
        )
        assert alarm["message"] == "intrusion" and alarm["occurred_at"].startswith("2026-11-21T11:30:00")
        resp = await client.get(f"/api/alarms/{alarm['id']}", headers=auth(gw, "viewer"))
        details = (await resp.json())["details"]
        assert details["device_id"] == DEVICE and details["channel_id"] == CHANNELS[0]
        assert (details["gb_alarm_priority"], details["gb_alarm_method"], details["gb_alarm_type"]) == (
            1,
            5,
            6,
        )
        assert details["event_type"] == "1"
        with gw.db.session() as s:  # like any alarm: an outbox row for the uplink target
            rows = list(s.scalars(select(OutboxRow).where(OutboxRow.alarm_id == alarm["id"])))
            assert [(r.alarm_revision, r.status) for r in rows] == [(1, "pending")]
        # The same alarm again (a device resending it): stored once.
        again = AlarmNotify(CHANNELS[0], 9, 1, 5, 6, "2026-11-21T19:30:00", "intrusion")
        assert gw.gb28181.store_device_alarm(DEVICE, again) is None
        # An alarm type the table does not map: scene device_alarm, no camera for an unknown channel.
        other = AlarmNotify("34020000001340000009", 10, 3, 2, 3, "2026-11-21T19:31:00", "disk full")
        alarm_id = gw.gb28181.store_device_alarm(DEVICE, other)
        assert alarm_id is not None
        resp = await client.get(f"/api/alarms/{alarm_id}", headers=auth(gw, "viewer"))
        body = await resp.json()
        assert (body["scene"], body["camera_id"], body["priority"]) == ("device_alarm", None, 2)
    finally:
        await client.close()
        await sipp.stop()


async def test_unknown_device_is_held_then_approved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    gw, client, upper = await holding_gateway(tmp_path, aiohttp_client)
    try:
        held = await register_unknown(tmp_path, upper)  # 403 without a challenge
        resp = await client.get("/api/gb28181/pending", headers=auth(gw, "viewer"))
        assert resp.status == 200
        body = await resp.json()
        assert body["unknown_devices"] == "hold"
        assert [d["device_id"] for d in body["items"]] == [DEVICE]
        assert body["items"][0]["address"] == f"127.0.0.1:{held.port}"
        url = f"/api/gb28181/pending/{DEVICE}/approve"
        resp = await client.post(url, json={"password": DEVICE_PASSWORD}, headers=auth(gw, "viewer"))
        assert resp.status == 403  # approving needs cameras:write
        resp = await client.post(url, json={}, headers=auth(gw))
        assert resp.status == 422
        resp = await client.post("/api/gb28181/pending/123/approve", json={"password": "x"}, headers=auth(gw))
        assert resp.status == 400 and "20 digits" in (await resp.json())["error"]["message"]
        resp = await client.post(url, json={"password": DEVICE_PASSWORD}, headers=auth(gw))
        assert resp.status == 200 and (await resp.json())["status"] == "approved"
        resp = await client.post(url, json={"password": DEVICE_PASSWORD}, headers=auth(gw))
        assert resp.status == 404  # not held any more
        resp = await client.get("/api/gb28181/pending", headers=auth(gw))
        assert (await resp.json())["items"] == []
        # Its next REGISTER with digest and that password is accepted (the whole device scenario runs).
        device = known_device(tmp_path, upper)
        await device.start()
        await wait_until(lambda: DEVICE in upper.devices, 15, "the approved device registered")
        (await device.wait()).check()
    finally:
        await client.close()


async def test_approval_survives_a_restart_as_ha1(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    gw, client, upper = await holding_gateway(tmp_path, aiohttp_client)
    try:
        await register_unknown(tmp_path, upper)
        url = f"/api/gb28181/pending/{DEVICE}/approve"
        resp = await client.post(url, json={"password": DEVICE_PASSWORD}, headers=auth(gw))
        assert resp.status == 200 and DEVICE_PASSWORD not in await resp.text()
    finally:
        await client.close()  # the gateway stops; the approval is in the database only
    ha1 = ha1_of(DEVICE, DOMAIN, DEVICE_PASSWORD)
    with gw.db.session() as s:
        row = s.get(GbDeviceApproval, DEVICE)
        assert row is not None
        assert (row.status, row.realm, row.ha1, row.decided_by) == ("approved", DOMAIN, ha1, "test-admin")
    # The same database, a new gateway: the device is known without being held again.
    gw, client, upper = await holding_gateway(tmp_path, aiohttp_client)
    try:
        wrong = Sipp(
            "device_wrong_password.xml",
            tmp_path,
            remote_port=upper.port,
            inf="device.csv",
            auth=(DEVICE, "not-the-password"),
        )
        await wrong.start()
        (await wrong.wait()).check()  # challenged, then 403
        assert DEVICE not in upper.devices and upper.pending == {}
        device = known_device(tmp_path, upper)
        await device.start()
        await wait_until(lambda: DEVICE in upper.devices, 15, "the approved device registered after restart")
        (await device.wait()).check()
        resp = await client.get("/api/gb28181/pending", headers=auth(gw))
        assert (await resp.json())["items"] == []
    finally:
        await client.close()
    assert ha1 not in caplog.text and DEVICE_PASSWORD not in caplog.text


async def test_refused_device_stays_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    gw, client, upper = await holding_gateway(tmp_path, aiohttp_client)
    try:
        await register_unknown(tmp_path, upper)
        resp = await client.post(f"/api/gb28181/pending/{DEVICE}/refuse", headers=auth(gw))
        assert resp.status == 200 and (await resp.json())["status"] == "refused"
        await register_unknown(tmp_path, upper)  # 403 again
        assert upper.pending == {} and DEVICE not in upper.devices  # and not held again
    finally:
        await client.close()
    gw, client, upper = await holding_gateway(tmp_path, aiohttp_client)
    try:  # after a restart too
        await register_unknown(tmp_path, upper)
        assert upper.pending == {} and DEVICE not in upper.devices
    finally:
        await client.close()


async def test_gb_camera_added_through_api_is_played_and_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, models_dir: Path, vtest: Path
) -> None:
    from adapters.gb28181.pcap import encode_h264, ps_to_rtp, write_pcap
    from gateway.models.pack import import_pack

    buf = io.BytesIO()
    encode_h264(vtest, 75, 352, 288, fps=25, gop=25, ps_out=buf)
    write_pcap(tmp_path / "media_ps.pcap", ps_to_rtp(buf.getvalue(), 200000001))
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    # retry_s 3: a session lost on a loaded machine is re-INVITEd while SIPp still answers
    server = server_config(password_env="VIGIL_TEST_GB_DEVICE_PW", retry_s=3)
    gw = gateway(tmp_path, analyse=True, gb28181={"server": server})
    results = import_pack(gw.db, gw.config.storage.root, models_dir, ROOT / "config" / "models")
    assert [r.status for r in results if r.name == "yolox_nano"] == ["imported"]
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None and gw.gb_cameras == []
    camera = {
        "id": CHANNELS[0],
        "name": "Gate (GB, added)",
        "url": f"gb28181://{DEVICE}/{CHANNELS[0]}",
        "scenes": [DEMO_SCENES[0]],
    }
    uac, ooc = device_scenarios(tmp_path)
    sipp = Sipp(
        uac, tmp_path, remote_port=upper.port, ooc=ooc, inf="device.csv", auth=(DEVICE, DEVICE_PASSWORD)
    )
    try:
        resp = await client.post("/api/cameras", json=camera, headers=auth(gw))
        assert resp.status == 201, await resp.text()
        assert [c.id for c, _ in gw.gb_cameras] == [CHANNELS[0]]
        assert CHANNELS[0] not in gw.analytics.runners  # waits for the device, not opened as RTSP
        await sipp.start()

        def analysed() -> int:
            runner = gw.analytics.runners.get(CHANNELS[0])
            return runner.stats.frames_analysed if runner is not None else 0

        await wait_until(analysed, 60, "frames of the added GB channel analysed")
        runner = gw.analytics.runners[CHANNELS[0]]
        assert (runner.health.width, runner.health.height) == (352, 288)
        assert runner.scene_status() == {"intrusion": "running"}
        session = next(iter(upper.sessions.values()))
        assert (session.device_id, session.channel_id) == (DEVICE, CHANNELS[0])
    finally:
        await client.close()
        await sipp.stop()


async def test_gb_camera_without_upper_platform_is_refused(tmp_path: Path, aiohttp_client: Any) -> None:
    gw = gateway(tmp_path, analyse=True)
    client = await aiohttp_client(create_app(gw))
    try:
        camera = {
            "id": "gb-cam",
            "name": "GB",
            "url": f"gb28181://{DEVICE}/{CHANNELS[0]}",
            "scenes": [DEMO_SCENES[0]],
        }
        resp = await client.post("/api/cameras", json=camera, headers=auth(gw))
        assert resp.status == 409, await resp.text()
        assert "enable gb28181.server" in (await resp.json())["error"]["message"]
    finally:
        await client.close()
