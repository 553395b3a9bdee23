"""Upper-platform role against SIPp acting as GB28181 devices (real UDP on loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.gb28181.sip.transaction import Timers
from adapters.gb28181.upper import UpperConfig, UpperEvent, UpperPlatform
from tests.gb28181.fake_media import FakeReceiverFactory
from tests.gb28181.sipp import Sipp

pytestmark = pytest.mark.timeout(90)

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000001320000001"
CHANNEL = "34020000001310000001"
PASSWORD = "12345678"


def make_platform(
    passwords: dict[str, str], media: FakeReceiverFactory | None = None, **kw: object
) -> UpperPlatform:
    kw.setdefault("tcp", False)
    cfg = UpperConfig(SERVER_ID, DOMAIN, host="127.0.0.1", port=0, timers=Timers().scaled(0.2), **kw)  # type: ignore[arg-type]
    return UpperPlatform(cfg, passwords.get, media)


async def next_event(platform: UpperPlatform, kind: str, within: float = 15.0) -> UpperEvent:
    async def _wait() -> UpperEvent:
        while True:
            ev = await platform.events.get()
            if ev.kind == kind:
                return ev

    return await asyncio.wait_for(_wait(), within)


async def test_device_registers_keepalive_catalog_deviceinfo_alarm(tmp_path: Path) -> None:
    media = FakeReceiverFactory()
    platform = make_platform({DEVICE: PASSWORD}, media)
    await platform.start()
    sipp = Sipp(
        "device_uac.xml",
        tmp_path,
        remote_port=platform.port,
        ooc="device_ooc.xml",
        inf="device.csv",
        auth=(DEVICE, PASSWORD),
    )
    try:
        await sipp.start()
        await next_event(platform, "registered")
        await next_event(platform, "keepalive")
        dev = platform.devices[DEVICE]
        assert dev.online and dev.address.port == sipp.port
        items = await platform.query_catalog(DEVICE)
        assert sorted(i.device_id for i in items) == [CHANNEL, "34020000001310000002", "34020000001310000003"]
        gate = next(i for i in items if i.device_id == CHANNEL)
        assert (gate.name, gate.parent_id, gate.ptz_type, gate.status) == ("Gate-1", DEVICE, 1, "ON")
        assert set(dev.channels) == {i.device_id for i in items}
        info = await platform.query_device_info(DEVICE)
        assert info["DeviceName"] == "SIPp-IPC" and info["Channel"] == "3"
        session = await platform.play(DEVICE, CHANNEL, "udp")
        rx = media.opened[0]
        assert session.offer.ssrc == "0200000001" and session.offer.session == "Play"
        assert rx.answered_ssrc == 200000001 and rx.remote == ("127.0.0.1", sipp.media_port)
        assert session.answer.direction == "sendonly"
        await platform.stop(session)
        assert rx.closed and not platform.sessions
        alarm = (await next_event(platform, "alarm")).alarm
        assert alarm is not None
        assert (alarm.device_id, alarm.method, alarm.alarm_type, alarm.priority) == (CHANNEL, 5, 6, 1)
        await next_event(platform, "unregistered")
        result = await sipp.wait()
        result.check()
        assert DEVICE not in platform.devices
    finally:
        await sipp.stop()
        await platform.close()


async def test_wrong_password_gets_403_after_challenge(tmp_path: Path) -> None:
    platform = make_platform({DEVICE: PASSWORD})
    await platform.start()
    sipp = Sipp(
        "device_wrong_password.xml",
        tmp_path,
        remote_port=platform.port,
        inf="device.csv",
        auth=(DEVICE, "not-the-password"),
    )
    try:
        await sipp.start()
        (await sipp.wait()).check()
        assert DEVICE not in platform.devices
    finally:
        await sipp.stop()
        await platform.close()


async def test_unknown_device_is_held_for_approval(tmp_path: Path) -> None:
    platform = make_platform({}, unknown_devices="hold")
    await platform.start()
    sipp = Sipp(
        "device_unknown.xml", tmp_path, remote_port=platform.port, inf="device.csv", auth=(DEVICE, PASSWORD)
    )
    try:
        await sipp.start()
        (await sipp.wait()).check()
        assert DEVICE in platform.pending and DEVICE not in platform.devices
        assert (await next_event(platform, "held")).device_id == DEVICE
    finally:
        await sipp.stop()
        await platform.close()


@pytest.mark.parametrize(("transport", "count"), [("u1", 50), ("t1", 20)])
async def test_many_devices_register_and_stay_online(tmp_path: Path, transport: str, count: int) -> None:
    """50 devices over UDP (one SIPp socket each call's source); 20 over one shared TCP connection."""
    rows = (Path(__file__).parent / "scenarios" / "devices_many.csv").read_text().splitlines()[1 : count + 1]
    passwords = {r.split(";")[0]: r.split("password=")[1].split("]")[0] for r in rows}
    assert len(passwords) == count
    platform = make_platform(passwords, tcp=True)
    await platform.start()
    sipp = Sipp(
        "devices_many.xml",
        tmp_path,
        remote_port=platform.port,
        inf="devices_many.csv",
        calls=count,
        limit=count,
        rate=100,
        transport=transport,
    )
    try:
        await sipp.start()
        (await sipp.wait()).check()
        assert set(platform.devices) == set(passwords)
        assert all(d.online for d in platform.devices.values())
        assert {d.address.transport for d in platform.devices.values()} == {
            "TCP" if transport == "t1" else "UDP"
        }
        assert platform.check_liveness() == []
    finally:
        await sipp.stop()
        await platform.close()
