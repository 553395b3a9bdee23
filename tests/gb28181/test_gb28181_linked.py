"""Issue 19, GB/T 28181 items 4, 6 and 9, against peers on real loopback sockets: our cascade role
standing in for an NVR that registers to the gateway, and our upper-platform role standing in for the
superior the gateway registers to (each a different SIP stack path than the gateway side it talks to).

- item 4: a camera configured as the README describes (a ``kind: gb28181`` source with a slug id, the
  camera addressing ``gb28181://DEVICE/CHANNEL``) is the device's camera: one device in the devices API
  (no second, phantom one for the source), ``camera_id`` filled, no second camera row for the channel,
  offline with its device, and the Catalog the superior reads says OFF then;
- item 6: a superior's INVITE for a shared channel without a stream gets 480 with the reason (logged);
- item 7: a device alarm pushed upwards carries when it happened (its AlarmTime), not when vigil stored
  it; it links no snapshot (it has none) in the alarms API and the big-screen feed, instead of a 404;
- item 9: the Catalog sent upwards carries the manufacturer/model the device gave; DeviceInfo is queried
  after registration, stored with the device and shown by the devices API (also once it is offline).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.gb28181.cascade import CascadeAgent, SuperiorConfig
from adapters.gb28181.common import GbError
from adapters.gb28181.manscdp import CatalogItem
from adapters.gb28181.media import GbMediaFactory
from adapters.gb28181.upper import UpperConfig, UpperEvent, UpperPlatform
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Camera, OutboxRow, Source
from tests.conftest import wait_until, write_config
from tests.delivery.test_uplink_delivery import auth
from tests.gb28181.test_gb28181_hardening import DOMAIN, NVR, NVR_CHANNELS, PASSWORD, SERVER_ID, T

pytestmark = pytest.mark.timeout(90)

SUPERIOR_ID = "34020000002000000100"
OUR_ID = "34020000002000000009"  # the gateway as the superior knows it
SHARED = "34020000001310000101"  # gate-1 as the superior knows it
UP_PASSWORD = "up-secret"  # noqa: S105


def nvr(port: int, relay: Any = None) -> CascadeAgent:
    """An NVR (type 118) with two cameras; it answers Catalog and DeviceInfo like a real one."""
    channels = [
        CatalogItem(NVR_CHANNELS[0], "Gate", manufacturer="Hikvision", model="DS-2CD2T47", parent_id=NVR),
        CatalogItem(NVR_CHANNELS[1], "Tank farm", parent_id=NVR),
    ]
    sup = SuperiorConfig(
        "gateway",
        SERVER_ID,
        DOMAIN,
        "127.0.0.1",
        port,
        NVR,
        DOMAIN,
        PASSWORD,
        keepalive_interval=3600,
        channels=channels,
        device_name="Plant NVR",
        manufacturer="Hikvision",
        model="DS-7608NI",
        firmware="V4.30",
    )
    return CascadeAgent("127.0.0.1", 0, [sup], relay, timers=T, tcp=False)


async def superior() -> UpperPlatform:
    """The park platform the gateway registers up to (it can INVITE, so it has a media factory)."""
    config = UpperConfig(SUPERIOR_ID, DOMAIN, port=0, tcp=False, timers=T, keepalive_interval=3600)
    platform = UpperPlatform(config, {OUR_ID: UP_PASSWORD}.get, GbMediaFactory(bind_host="127.0.0.1"))
    await platform.start(liveness_loop=False)
    return platform


def linked_gateway(tmp: Path, superior_port: int, uplink: list[dict[str, Any]] | None = None) -> Gateway:
    share = {
        "name": "park",
        "server_id": SUPERIOR_ID,
        "server_domain": DOMAIN,
        "host": "127.0.0.1",
        "port": superior_port,
        "local_id": OUR_ID,
        "local_domain": DOMAIN,
        "password_env": "VIGIL_TEST_GB_UP_PW",
        "retry_s": 0.5,
        "channels": [{"camera": "gate-1", "id": SHARED}],
    }
    server = {
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "host": "127.0.0.1",
        "port": 0,
        "tcp": False,
        "password_env": "VIGIL_TEST_GB_NVR_PW",
    }
    config = load_config(
        write_config(
            tmp,
            # as the README describes: a gb28181 source, its camera addressing DEVICE/CHANNEL
            sources=[{"id": "plant-nvr", "kind": "gb28181", "name": "plant NVR"}],
            cameras=[
                {
                    "id": "gate-1",
                    "name": "North gate",
                    "source": "plant-nvr",
                    "url": f"gb28181://{NVR}/{NVR_CHANNELS[0]}",
                }
            ],
            uplink=uplink or [],
            gb28181={
                "server": server,
                "cascade": {"host": "127.0.0.1", "port": 0, "tcp": False, "superiors": [share]},
            },
        ),
        environ={},
    )
    gw = Gateway(config, analyse=False)
    upgrade(gw.db.engine)
    return gw


def camera_rows(gw: Gateway) -> dict[str, tuple[str | None, str | None, str]]:
    with gw.db.session() as s:
        return {c.id: (c.gb_channel_id, c.source_id, c.status) for c in s.scalars(select(Camera))}


async def shared_item(platform: UpperPlatform) -> CatalogItem:
    items = await platform.query_catalog(OUR_ID, within=5)
    return next(i for i in items if i.device_id == SHARED)


async def test_configured_gb_camera_is_its_devices_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    monkeypatch.setenv("VIGIL_TEST_GB_UP_PW", UP_PASSWORD)
    park = await superior()
    gw = linked_gateway(tmp_path, park.port)
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    agent = nvr(upper.port)
    await agent.start(run_links=False)
    link = agent.link("gateway")
    try:
        await wait_until(lambda: OUR_ID in park.devices, 15, "the gateway registered to the superior")
        assert await link.register()
        await wait_until(
            lambda: camera_rows(gw).get("gate-1", (None,))[0] == NVR_CHANNELS[0], 15, "gate-1 linked"
        )
        await wait_until(
            lambda: NVR_CHANNELS[1] in camera_rows(gw) and camera_rows(gw)["gate-1"][2] == "online",
            10,
            "the catalog stored",
        )
        rows = camera_rows(gw)
        # the configured camera is the channel's camera: no second row for NVR_CHANNELS[0]
        assert set(rows) == {"gate-1", NVR_CHANNELS[1]}, rows
        assert rows["gate-1"] == (NVR_CHANNELS[0], "plant-nvr", "online")
        assert rows[NVR_CHANNELS[1]][:2] == (NVR_CHANNELS[1], "plant-nvr")
        with gw.db.session() as s:  # the configured source stands for the device: no phantom row
            assert sorted(s.scalars(select(Source.id).where(Source.kind == "gb28181"))) == ["plant-nvr"]

        async def devices() -> list[dict[str, Any]]:
            resp = await client.get("/api/gb28181/devices", headers=auth(gw, "viewer"))
            assert resp.status == 200
            return list((await resp.json())["items"])

        def info_stored() -> bool:
            with gw.db.session() as s:
                src = s.get(Source, "plant-nvr")
                return bool(src is not None and (src.settings or {}).get("device_info"))

        await wait_until(info_stored, 15, "DeviceInfo queried and stored")
        items = await devices()
        assert [d["id"] for d in items] == [NVR], items
        device = items[0]
        assert (device["name"], device["source"], device["online"]) == ("plant NVR", "plant-nvr", True)
        assert {c["id"]: c["camera_id"] for c in device["channels"]} == {
            NVR_CHANNELS[0]: "gate-1",
            NVR_CHANNELS[1]: NVR_CHANNELS[1],
        }
        assert (device["info"]["Manufacturer"], device["info"]["Model"]) == ("Hikvision", "DS-7608NI")
        assert device["info"]["Firmware"] == "V4.30"

        # Upwards: the shared camera is ON, with the manufacturer/model its device gave.
        item = await shared_item(park)
        assert (item.status, item.name, item.manufacturer, item.model) == (
            "ON",
            "North gate",
            "Hikvision",
            "DS-2CD2T47",
        )

        # The NVR goes away: its cameras go offline, the superior reads OFF and, as it subscribed to
        # our Catalog, is told so (NOTIFY, Event OFF).
        await park.subscribe(OUR_ID, "Catalog")
        while not park.events.empty():
            park.events.get_nowait()
        await link.unregister()
        await wait_until(lambda: camera_rows(gw)["gate-1"][2] == "offline", 10, "gate-1 offline")
        assert camera_rows(gw)[NVR_CHANNELS[1]][2] == "offline"
        assert (await shared_item(park)).status == "OFF"
        told = await asyncio.wait_for(park.events.get(), 10)
        while told.kind != "catalog_notify":
            told = await asyncio.wait_for(park.events.get(), 10)
        assert [(i.device_id, i.event, i.status) for i in told.items] == [(SHARED, "OFF", "OFF")]
        device = (await devices())[0]
        assert (device["id"], device["online"], device["status"]) == (NVR, False, "offline")
        assert device["info"]["Manufacturer"] == "Hikvision"  # stored: shown while it is away
    finally:
        await agent.close(unregister=False)
        await client.close()
        await park.close()


async def test_superior_invite_for_a_channel_without_stream_gets_480_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """gate-1 is shared but not played (a GB channel without scenes) and its device is not registered:
    the superior hears 480 and why, and the gateway logs it; an id that is not shared stays 404."""
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    monkeypatch.setenv("VIGIL_TEST_GB_UP_PW", UP_PASSWORD)
    caplog.set_level(logging.INFO, logger="adapters.gb28181.cascade")
    park = await superior()
    gw = linked_gateway(tmp_path, park.port)
    client = await aiohttp_client(create_app(gw))
    try:
        await wait_until(lambda: OUR_ID in park.devices, 15, "the gateway registered to the superior")
        with pytest.raises(GbError) as refused:
            await park.play(OUR_ID, SHARED)
        assert refused.value.status == 480, refused.value
        assert "INVITE for 34020000001310000101 answered 480: camera gate-1" in caplog.text
        assert "its GB/T 28181 device is not registered or offline" in caplog.text
        with pytest.raises(GbError) as unknown:
            await park.play(OUR_ID, "34020000001310000999")
        assert unknown.value.status == 404
        assert "not shared" in caplog.text
        assert not park.sessions
    finally:
        await client.close()
        await park.close()


async def test_device_alarm_goes_up_with_its_own_time_and_links_no_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    from tests.gb28181.test_gb28181_gateway import FAST
    from uplink.targets.websocket import feed_item

    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    monkeypatch.setenv("VIGIL_TEST_GB_UP_PW", UP_PASSWORD)
    park = await superior()
    target = {
        "name": "park-gb",
        "kind": "gb28181",
        "tier": "park",
        "gb28181": {"platform": "park"},
        "dispatch": FAST,
    }
    gw = linked_gateway(tmp_path, park.port, uplink=[target])
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    agent = nvr(upper.port)
    await agent.start(run_links=False)
    link = agent.link("gateway")
    try:
        await wait_until(lambda: OUR_ID in park.devices, 15, "the gateway registered to the superior")
        assert await link.register()
        when = "2026-11-21T19:30:00"  # long before now: what went up says when it happened
        sent = await link.send_alarm(NVR_CHANNELS[0], alarm_type=6, time=when, description="intrusion")
        assert sent.delivered, sent.reason
        seen: list[UpperEvent] = []

        def alarm_up() -> UpperEvent | None:
            while not park.events.empty():
                seen.append(park.events.get_nowait())
            return next((e for e in seen if e.kind == "alarm"), None)

        up = await wait_until(alarm_up, 15, "the alarm at the superior")
        assert up.alarm is not None and (up.alarm.time, up.alarm.device_id) == (when, SHARED)
        resp = await client.get("/api/alarms", headers=auth(gw, "viewer"))
        listed = (await resp.json())["items"]
        assert [(a["camera_id"], a["snapshot"]) for a in listed] == [("gate-1", None)]
        detail = await (await client.get(f"/api/alarms/{listed[0]['id']}", headers=auth(gw, "viewer"))).json()
        assert detail["snapshot"] is None and detail["evidence"] == []
        with gw.db.session() as s:
            payload = s.scalars(select(OutboxRow.payload)).first()
        assert payload is not None and feed_item(1, payload)["alarm"]["snapshot_url"] is None
    finally:
        await agent.close(unregister=False)
        await client.close()
        await park.close()


async def test_superior_invite_for_an_unplayed_gb_channel_starts_the_pull_and_ends_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    """gate-1 (no scenes: not played) of a registered NVR: the superior's INVITE is answered 200 and the
    gateway INVITEs the NVR for the channel; when the superior hangs up, the gateway hangs up too."""
    from tests.gb28181.fake_media import FakeRelayFactory

    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    monkeypatch.setenv("VIGIL_TEST_GB_UP_PW", UP_PASSWORD)
    park = await superior()
    gw = linked_gateway(tmp_path, park.port)
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    agent = nvr(upper.port, FakeRelayFactory({NVR_CHANNELS[0]}))
    await agent.start(run_links=False)
    try:
        await wait_until(lambda: OUR_ID in park.devices, 15, "the gateway registered to the superior")
        assert await agent.link("gateway").register()
        await wait_until(lambda: upper.devices.get(NVR) is not None, 5, "the NVR registered")
        session = await park.play(OUR_ID, SHARED)  # answered 200 at once; media follows the pull
        seen: list[tuple[str, str]] = []

        def saw(kind: str) -> bool:
            while not agent.events.empty():
                event = agent.events.get_nowait()
                seen.append((event.kind, event.detail))
            return (kind, NVR_CHANNELS[0]) in seen

        await wait_until(lambda: saw("invite"), 30, "the gateway pulling the channel from the NVR")
        assert "gate-1" in gw.gb28181._players
        await park.stop(session)  # the superior hangs up: nobody watches, the pull ends
        await wait_until(lambda: "gate-1" not in gw.gb28181._players, 15, "the pull stopped")
        # no session left with the NVR (hung up now, or earlier when no media came for 10 s)
        await wait_until(lambda: saw("bye"), 15, "the gateway hanging up on the NVR")
    finally:
        await agent.close(unregister=False)
        await client.close()
        await park.close()
