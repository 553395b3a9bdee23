"""GB/T 28181 in the running gateway, against SIPp as independent peers on loopback:

- a device registers to the gateway's upper platform, answers the Catalog query, and its video channels
  become cameras (DB and GET /api/cameras), offline once it unregisters;
- an alarm raised in the gateway goes through the outbox and the ``gb28181`` uplink target to a SIPp
  superior as MESSAGE Alarm, and the outbox row is delivered only once the superior's Response came.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Camera, OutboxRow, Source, UplinkTarget
from gateway.gb28181.service import alarm_description, gb_priority, parse_channel_url
from tests.alarms.test_alarm_lifecycle import raise_alarm
from tests.conftest import wait_until, write_config
from tests.delivery.test_uplink_delivery import auth
from tests.gb28181.sipp import SCENARIOS, Sipp, free_port

pytestmark = pytest.mark.timeout(120)

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000001320000001"
CHANNELS = ["34020000001310000001", "34020000001310000002", "34020000001310000003"]
DEVICE_PASSWORD = "12345678"
OUR_ID = "34020000002000000009"  # as the SIPp superior knows us
FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "max_attempts": 1000, "breaker_failures": 1000}
CAMERA = {"id": "gate-1", "name": "North gate", "url": "rtsp://127.0.0.1:9/none", "enabled": False}


def make_gateway(tmp: Path, **sections: Any) -> Gateway:
    gw = Gateway(load_config(write_config(tmp, **sections), environ={}), analyse=False)
    upgrade(gw.db.engine)
    return gw


def test_helpers() -> None:
    assert parse_channel_url(f"gb28181://{DEVICE}/{CHANNELS[0]}") == (DEVICE, CHANNELS[0])
    assert parse_channel_url("rtsp://x/y") == (None, None)
    assert [gb_priority(p) for p in (0, 1, 2, 3, 4)] == [4, 4, 3, 2, 1]
    record = {"type": {"code": "helmet", "zh": "未戴安全帽"}, "message": "2 person(s)"}
    assert alarm_description(record) == "未戴安全帽(helmet): 2 person(s)"


async def test_device_channels_become_cameras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    server = {
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "host": "127.0.0.1",
        "port": 0,
        "tcp": False,
        "devices": [{"id": DEVICE, "password_env": "VIGIL_TEST_GB_DEVICE_PW"}],
    }
    gw = make_gateway(tmp_path, gb28181={"server": server})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    sipp = Sipp(
        "device_uac.xml",
        tmp_path,
        remote_port=upper.port,
        ooc="device_ooc.xml",
        inf="device.csv",
        auth=(DEVICE, DEVICE_PASSWORD),
    )
    try:
        await sipp.start()

        def cameras() -> list[Camera]:
            with gw.db.session() as s:
                rows = list(s.scalars(select(Camera).where(Camera.origin == "gb28181").order_by(Camera.id)))
                s.expunge_all()
                return rows

        rows = await wait_until(lambda: len(cameras()) == 3 and cameras(), 20, "the catalog's cameras")
        assert [r.id for r in rows] == CHANNELS
        gate = rows[0]
        assert (gate.name, gate.gb_channel_id, gate.source_id, gate.status) == (
            "Gate-1",
            CHANNELS[0],
            DEVICE,
            "online",
        )
        assert gate.stream_url == f"gb28181://{DEVICE}/{CHANNELS[0]}" and gate.enabled and gate.ptz
        resp = await client.get("/api/cameras", headers=auth(gw))
        assert resp.status == 200
        items = {c["id"]: c for c in (await resp.json())["items"]}
        assert set(CHANNELS) <= set(items)
        assert items[CHANNELS[0]]["origin"] == "gb28181" and items[CHANNELS[0]]["name"] == "Gate-1"
        assert items[CHANNELS[0]]["source"] == DEVICE

        def source_row() -> Source | None:
            with gw.db.session() as s:
                row = s.get(Source, DEVICE)
                if row is not None:
                    s.expunge(row)
                return row

        src = source_row()
        assert src is not None and src.kind == "gb28181" and src.address == f"127.0.0.1:{sipp.port}"
        # The device sends an Alarm, then unregisters: its channels go offline.
        (await sipp.wait()).check()
        await wait_until(
            lambda: {r.status for r in cameras()} == {"offline"}, 10, "channels offline after unregister"
        )
        src = source_row()
        assert src is not None and src.status == "offline"
    finally:
        await client.close()
        await sipp.stop()


def superior_scenario(tmp: Path, pause_ms: int) -> str:
    """superior_main.xml with a longer lifetime: the gateway starts, registers and alarms meanwhile."""
    text = (SCENARIOS / "superior_main.xml").read_text(encoding="utf-8")
    assert '<pause milliseconds="3000"/>' in text
    path = tmp / "superior_long.xml"
    path.write_text(text.replace('"3000"', f'"{pause_ms}"'), encoding="utf-8")
    return str(path)


def superior_ooc_without_response(tmp: Path) -> str:
    """superior_ooc.xml answering an Alarm MESSAGE with 200 only: no application-level Response."""
    text = (SCENARIOS / "superior_ooc.xml").read_text(encoding="utf-8")
    marker = '<nop test="isalarm" next="alarm"/>'
    assert marker in text
    path = tmp / "superior_ooc_noresp.xml"
    path.write_text(text.replace(marker, '<nop test="isalarm" next="end"/>'), encoding="utf-8")
    return str(path)


def cascade_gateway(tmp: Path, sipp: Sipp, cascade_port: int, alarm_timeout_s: float) -> Gateway:
    superior = {
        "name": "park",
        "server_id": "34020000002000000100",
        "server_domain": DOMAIN,
        "host": "127.0.0.1",
        "port": sipp.port,
        "local_id": OUR_ID,
        "local_domain": DOMAIN,
        "password_env": "VIGIL_TEST_GB_UPLINK_PW",
        "retry_s": 0.5,
        "alarm_timeout_s": alarm_timeout_s,
        # The SIPp superior checks that our Catalog carries SumNum 3.
        "channels": [
            {"camera": "gate-1", "id": "34020000001310000101"},
            {"camera": "tank-farm", "id": "34020000001310000102"},
            {"camera": "reactor", "id": "34020000001310000103"},
        ],
    }
    targets = [
        {
            "name": "park-gb",
            "kind": "gb28181",
            "tier": "park",
            "gb28181": {"platform": "park"},
            "dispatch": FAST,
        },
        # A tier with no cascade registration: its messages wait as unavailable.
        {"name": "county-gb", "kind": "gb28181", "tier": "county", "gb28181": {"platform": "county"}},
    ]
    return make_gateway(
        tmp,
        cameras=[CAMERA],
        uplink=targets,
        gb28181={
            "cascade": {"host": "127.0.0.1", "port": cascade_port, "tcp": False, "superiors": [superior]}
        },
    )


def outbox(gw: Gateway, target: str) -> list[tuple[str, int, str | None]]:
    with gw.db.session() as s:
        tid = s.scalar(select(UplinkTarget.id).where(UplinkTarget.name == target))
        rows = s.scalars(select(OutboxRow).where(OutboxRow.target_id == tid).order_by(OutboxRow.id))
        return [(r.status, r.attempts, r.last_error) for r in rows]


async def test_alarm_reaches_superior_through_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_UPLINK_PW", "uplink-pw")
    cascade_port = free_port()
    sipp = Sipp(superior_scenario(tmp_path, 8000), tmp_path, ooc="superior_ooc.xml")
    sipp.args.insert(1, f"127.0.0.1:{cascade_port}")
    gw = cascade_gateway(tmp_path, sipp, cascade_port, alarm_timeout_s=5)
    await sipp.start()  # first: the gateway registers as soon as it starts
    client = await aiohttp_client(create_app(gw))
    try:
        link = gw.gb28181.link("park")
        assert link is not None
        await wait_until(lambda: link.registered, 15, "the cascade registration")
        alarm_id = await asyncio.to_thread(raise_alarm, gw)
        rows = await wait_until(
            lambda: (r := outbox(gw, "park-gb")) and r[0][0] == "delivered" and r, 15, "delivery"
        )
        assert len(rows) == 1
        (await sipp.wait()).check()  # the superior saw our REGISTER, Catalog (SumNum 3) and the Alarm
        county = outbox(gw, "county-gb")
        assert county and county[0][0] == "pending"
        assert county[0][2] is not None and "unavailable" in county[0][2]
        resp = await client.get("/api/uplinks", headers=auth(gw))
        assert resp.status == 200
        names = {t["name"]: t for t in (await resp.json())["items"]}
        assert names["park-gb"]["delivered"] == 1 and names["park-gb"]["available"]
        assert names["county-gb"]["pending"] == 1
        assert alarm_id
    finally:
        await client.close()
        await sipp.stop()


async def test_alarm_without_superior_response_stays_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_UPLINK_PW", "uplink-pw")
    cascade_port = free_port()
    sipp = Sipp(superior_scenario(tmp_path, 6000), tmp_path, ooc=superior_ooc_without_response(tmp_path))
    sipp.args.insert(1, f"127.0.0.1:{cascade_port}")
    gw = cascade_gateway(tmp_path, sipp, cascade_port, alarm_timeout_s=1)
    await sipp.start()
    client = await aiohttp_client(create_app(gw))
    try:
        link = gw.gb28181.link("park")
        assert link is not None
        await wait_until(lambda: link.registered, 15, "the cascade registration")
        await asyncio.to_thread(raise_alarm, gw)
        rows = await wait_until(
            lambda: (r := outbox(gw, "park-gb")) and r[0][1] >= 1 and r, 15, "a first delivery attempt"
        )
        status, _, error = rows[0]
        assert status == "pending"  # the superior's 200 alone is not a delivery
        assert error is not None and "Response" in error
    finally:
        await client.close()
        await sipp.stop()


def device_scenarios(tmp: Path) -> tuple[str, str]:
    """device_uac.xml idling longer (the channel plays meanwhile), and device_ooc.xml replaying
    media_ps.pcap (PS made by FFmpeg's vob muxer, in RTP) once our live INVITE is ACKed."""
    uac = (SCENARIOS / "device_uac.xml").read_text(encoding="utf-8")
    assert '<pause milliseconds="2500"/>' in uac
    uac_path = tmp / "device_long.xml"
    uac_path.write_text(uac.replace('"2500"', '"20000"'), encoding="utf-8")
    ooc = (SCENARIOS / "device_ooc.xml").read_text(encoding="utf-8")
    marker = '<recv request="ACK"/>'
    assert ooc.count(marker) == 1
    play = '<nop><action><exec play_pcap_video="media_ps.pcap"/></action></nop>'
    ooc_path = tmp / "device_ooc_media.xml"
    ooc_path.write_text(ooc.replace(marker, marker + "\n  " + play), encoding="utf-8")
    return str(uac_path), str(ooc_path)


async def test_gb_channel_stream_is_analysed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, models_dir: Path, vtest: Path
) -> None:
    from adapters.gb28181.pcap import encode_h264, ps_to_rtp, write_pcap
    from gateway.models.pack import import_pack
    from tests.conftest import DEMO_SCENES, ROOT

    buf = io.BytesIO()
    encode_h264(vtest, 75, 352, 288, fps=25, gop=25, ps_out=buf)
    write_pcap(tmp_path / "media_ps.pcap", ps_to_rtp(buf.getvalue(), 200000001))
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    server = {
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "host": "127.0.0.1",
        "port": 0,
        "tcp": False,
        "password_env": "VIGIL_TEST_GB_DEVICE_PW",
        "retry_s": 3,  # a session lost on a loaded machine is re-INVITEd while SIPp still answers
    }
    camera = {
        "id": CHANNELS[0],
        "name": "Gate (GB)",
        "source": "plant-nvr",
        "url": f"gb28181://{DEVICE}/{CHANNELS[0]}",
        "scenes": [DEMO_SCENES[0]],
    }
    config = load_config(
        write_config(
            tmp_path,
            sources=[{"id": "plant-nvr", "kind": "gb28181", "name": "plant NVR"}],
            cameras=[camera],
            gb28181={"server": server},
        ),
        environ={},
    )
    gw = Gateway(config)
    upgrade(gw.db.engine)
    results = import_pack(gw.db, config.storage.root, models_dir, ROOT / "config" / "models")
    assert [r.status for r in results if r.name == "yolox_nano"] == ["imported"]
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None and [c.id for c, _ in gw.gb_cameras] == [CHANNELS[0]]
    assert CHANNELS[0] not in gw.analytics.runners  # not an RTSP camera: waits for the device
    uac, ooc = device_scenarios(tmp_path)
    sipp = Sipp(
        uac, tmp_path, remote_port=upper.port, ooc=ooc, inf="device.csv", auth=(DEVICE, DEVICE_PASSWORD)
    )
    try:
        await sipp.start()

        def analysed() -> int:
            runner = gw.analytics.runners.get(CHANNELS[0])
            return runner.stats.frames_analysed if runner is not None else 0

        await wait_until(analysed, 60, "frames of the GB channel analysed")
        runner = gw.analytics.runners[CHANNELS[0]]
        assert runner.health.codec == "h264" and (runner.health.width, runner.health.height) == (352, 288)
        assert runner.latest is not None and runner.latest.camera_id == CHANNELS[0]
        assert runner.scene_status() == {"intrusion": "running"}
        session = next(iter(upper.sessions.values()))
        assert (session.device_id, session.channel_id) == (DEVICE, CHANNELS[0])
        resp = await client.get(f"/api/cameras/{CHANNELS[0]}", headers=auth(gw))
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "online" and body["codec"] == "h264"
    finally:
        await client.close()  # BYE to the device, runner stopped
        await sipp.stop()
    assert not upper.sessions
