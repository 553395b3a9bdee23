"""ONVIF adapter against a loopback SOAP device whose clock is 3 hours ahead (tests/peers/onvif_device.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
from pathlib import Path
from typing import Any, Literal

import pytest
from sqlalchemy import select, text

from adapters.onvif import (
    OnvifAuthError,
    OnvifClient,
    OnvifError,
    OnvifProtocolError,
    OnvifUnreachable,
    discover,
    probe,
)
from adapters.onvif.discovery import parse_probe_matches
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import Database, upgrade
from gateway.db.schema import Camera
from gateway.secrets_at_rest import is_sealed
from tests.conftest import write_config
from tests.peers.onvif_device import OnvifDevice

pytestmark = pytest.mark.timeout(60)


async def test_probe_gathers_everything_despite_clock_offset(device: OnvifDevice) -> None:
    cam = await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)

    assert cam.info.manufacturer == "HIKVISION"
    assert cam.info.model == "DS-2DE4425IW-DE"
    assert cam.info.firmware == "V5.7.3 build 220112"
    assert cam.info.serial.startswith("DS-2DE4425IW-DE2022")
    assert cam.info.hardware_id == "88"
    assert [(p.token, p.name, p.encoding, p.width, p.height, p.fps) for p in cam.profiles] == [
        ("Profile_1", "mainStream", "H264", 1920, 1080, 25.0),
        ("Profile_2", "subStream", "H264", 640, 360, 15.0),
    ]
    assert cam.main.token == "Profile_1"
    assert cam.sub is not None and cam.sub.token == "Profile_2"
    assert cam.main_stream_uri.endswith("/Streaming/Channels/101?transportmode=unicast")
    assert cam.main_stream_uri.startswith("rtsp://127.0.0.1:")  # as the camera gave it: no credentials
    assert cam.sub_stream_uri is not None and "/Channels/102" in cam.sub_stream_uri
    assert cam.snapshot_uri == f"{device.address}/onvif-http/snapshot?Profile_101"
    assert cam.ptz is not None
    assert (cam.ptz.pan, cam.ptz.tilt, cam.ptz.zoom) == (0.25, -0.5, 0.1)
    assert (cam.ptz.pan_tilt_move, cam.ptz.zoom_move) == ("IDLE", "IDLE")
    assert cam.clock_offset is not None
    assert abs(cam.clock_offset - dt.timedelta(hours=3)) < dt.timedelta(seconds=2)
    # The clock is read first, unauthenticated; everything after it is signed with the offset applied.
    assert device.actions[:2] == ["GetSystemDateAndTime", "GetServices"]
    for action in ("GetDeviceInformation", "GetProfiles", "GetStreamUri", "GetSnapshotUri", "GetStatus"):
        assert action in device.actions


async def test_client_methods_and_credentials_only_when_asked(device: OnvifDevice) -> None:
    device.password = "p@ss:w/rd"  # characters that must be percent-encoded inside a URI
    async with OnvifClient("127.0.0.1", device.port, device.user, device.password, timeout_s=5) as client:
        plain = await client.stream_uri("Profile_2")
        secret = await client.stream_uri("Profile_2", with_credentials=True)
        snapshot = await client.snapshot_uri("Profile_1", with_credentials=True)
        status = await client.ptz_status("Profile_1")
    assert "@" not in plain
    assert secret == plain.replace("rtsp://", "rtsp://admin:p%40ss%3Aw%2Frd@", 1)
    assert snapshot is not None and snapshot.startswith("http://admin:p%40ss%3Aw%2Frd@127.0.0.1:")
    assert status is not None and status.pan == 0.25


async def test_no_ptz_and_capabilities_fallback(device: OnvifDevice) -> None:
    device.ptz = False
    device.get_services = False  # older devices: the library falls back to GetCapabilities
    cam = await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)
    assert cam.ptz is None
    assert not cam.main.has_ptz
    assert "GetCapabilities" in device.actions
    assert "GetStatus" not in device.actions


async def test_wrong_password_is_an_auth_error_without_the_password(device: OnvifDevice) -> None:
    wrong = "Wr0ng-S3cret"
    with pytest.raises(OnvifAuthError) as caught:
        await probe("127.0.0.1", device.port, device.user, wrong, timeout_s=5)
    message = str(caught.value)
    assert f"127.0.0.1:{device.port}" in message
    assert "rejected the user name or password" in message
    # The measured clock offset (device seconds are whole, so it reads just under 3 h), so nobody chases
    # the clock needlessly.
    assert re.search(r"it is (2h59m5\ds|3h00m0\ds) ahead of ours, already compensated", message)
    assert wrong not in message and device.password not in message
    assert wrong not in repr(caught.value.__cause__)


async def test_clock_offset_that_cannot_be_measured_is_explained(device: OnvifDevice) -> None:
    device.clock_needs_auth = True  # the 3-hour offset stays unknown: even the right password fails
    with pytest.raises(OnvifAuthError) as caught:
        await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)
    assert "would not tell its time without authentication" in str(caught.value)
    assert device.password not in str(caught.value)
    device.clock_offset = dt.timedelta(0)  # the same device with a correct clock accepts the password
    cam = await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)
    assert cam.clock_offset is not None and abs(cam.clock_offset) < dt.timedelta(seconds=2)


@pytest.mark.parametrize("mode", ["html", "html_404"])
async def test_html_answer_is_a_protocol_error(
    device: OnvifDevice, mode: Literal["html", "html_404"]
) -> None:
    device.mode = mode
    with pytest.raises(OnvifProtocolError) as caught:
        await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)
    assert f"the device at 127.0.0.1:{device.port} answered with HTML, not ONVIF SOAP" in str(caught.value)
    assert device.password not in str(caught.value)


async def test_garbage_answer_is_a_protocol_error(device: OnvifDevice) -> None:
    device.mode = "garbage"
    with pytest.raises(OnvifProtocolError) as caught:
        await probe("127.0.0.1", device.port, device.user, device.password, timeout_s=5)
    assert "answered with bytes that are not XML, not ONVIF SOAP" in str(caught.value)


async def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OnvifUnreachable) as caught:
        await probe("127.0.0.1", port, "admin", "secret-pw", timeout_s=5)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "secret-pw" not in str(caught.value)


async def test_discovery_unicast_to_the_responder(device: OnvifDevice) -> None:
    found = await discover(0.5, multicast=False, targets=[("127.0.0.1", device.discovery_port)])
    assert len(found) == 1  # the repeated Probe yields one device, not two
    cam = found[0]
    assert cam.endpoint == "urn:uuid:2419d68a-2dd2-21b2-a205-ec1b2c3d4e5f"
    assert cam.xaddrs == (f"{device.address}/onvif/device_service",)
    assert (cam.host, cam.port) == ("127.0.0.1", device.port)
    assert cam.name == "Tank Farm East"
    assert cam.location == "Plant-A/Tank-Farm"
    assert cam.hardware == "DS-2DE4425IW"
    assert cam.mac == "ec:1b:2c:3d:4e:5f"
    assert "dn:NetworkVideoTransmitter" in cam.types
    assert "Probe" in device.actions
    # The discovered address is enough to probe the device.
    assert cam.host is not None
    info = await probe(cam.host, cam.port, device.user, device.password, timeout_s=5)
    assert info.info.model == "DS-2DE4425IW-DE"


def test_probe_matches_parser_ignores_foreign_and_malformed_datagrams() -> None:
    peer = OnvifDevice(port=8000)
    answer = peer.probe_match("urn:uuid:ours")
    assert len(parse_probe_matches(answer, "10.0.0.5", "urn:uuid:ours")) == 1
    assert parse_probe_matches(answer, "10.0.0.5", "urn:uuid:someone-else") == []
    assert parse_probe_matches(b"\xff\x00 not xml", "10.0.0.5") == []
    entity = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    assert parse_probe_matches(entity, "10.0.0.5") == []


def closed_port() -> int:
    """A loopback port nothing listens on (a LAN address unreachable from here, without waiting)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_device_behind_port_forwarding_is_used_through_the_forwarded_address(
    device: OnvifDevice,
) -> None:
    """Issue 19 item 10: the device answers through a port-mapping proxy but advertises its own LAN
    address (here a port nothing listens on); the services and snapshot are used through the proxy."""
    from tests.peers.port_map import PortMap

    lan = closed_port()
    device.advertise = f"http://127.0.0.1:{lan}"
    forward = await PortMap("127.0.0.1", device.port).start()
    try:
        cam = await probe("127.0.0.1", forward.port, device.user, device.password, timeout_s=5)
        assert cam.behind_nat and cam.info.model == "DS-2DE4425IW-DE"
        assert cam.snapshot_uri == f"http://127.0.0.1:{forward.port}/onvif-http/snapshot?Profile_101"
        assert cam.ptz is not None and cam.ptz.pan == 0.25  # the PTZ service, reached through the proxy
        assert "GetStatus" in device.actions and forward.connections > 0
        with pytest.raises(OnvifUnreachable, match="nothing answered"):
            async with OnvifClient(
                "127.0.0.1", forward.port, device.user, device.password, timeout_s=5, nat=False
            ) as client:  # as advertised: the media service's LAN address does not answer
                await client.profiles()
    finally:
        await forward.stop()


async def test_device_on_its_own_address_is_not_rewritten(device: OnvifDevice) -> None:
    async with OnvifClient("127.0.0.1", device.port, device.user, device.password, timeout_s=5) as client:
        assert not client.behind_nat
        assert await client.snapshot_uri("Profile_1") == f"{device.address}/onvif-http/snapshot?Profile_101"


async def test_ptz_continuous_move_stop_and_presets(device: OnvifDevice) -> None:
    async with OnvifClient("127.0.0.1", device.port, device.user, device.password, timeout_s=5) as client:
        await client.continuous_move("Profile_1", 0.5, -0.25, 0)
        await client.stop("Profile_1")
        device.set_ptz(0.75, 0.1, 0.2)
        token = await client.set_preset("Profile_1", "gate")
        device.set_ptz(0.0, 0.0, 0.0)
        assert await client.presets("Profile_1") == [(token, "gate")]
        await client.goto_preset("Profile_1", token)
        assert device.ptz_position == (0.75, 0.1, 0.2)
        with pytest.raises(OnvifError, match="GotoPreset"):
            await client.goto_preset("Profile_1", "nope")
        await client.remove_preset("Profile_1", token)
        assert await client.presets("Profile_1") == []
    assert device.moves[:2] == [("move", "Profile_1", "0.5", "-0.25", "0"), ("stop", "Profile_1")]


# --- issue 19 item 10 in the gateway: discovery, probe and PTZ through the API ----------------------


async def test_discover_add_seals_the_password_and_shows_the_snapshot(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    config = write_config(tmp_path)
    assert await asyncio.to_thread(main, ["--config", str(config), "db", "upgrade"]) == 0
    monkeypatch.setenv("TEST_ONVIF_PASSWORD", device.password)
    target = f"127.0.0.1:{device.discovery_port}"
    args = ["--config", str(config), "discover", "--wait", "1", "--target", target, "--user", device.user]
    args += ["--password-env", "TEST_ONVIF_PASSWORD", "--add", "tank-gate"]
    assert await asyncio.to_thread(main, args) == 0  # the CLI runs its own loop: in a thread
    out = capsys.readouterr().out
    snapshot = f"snapshot http://***@127.0.0.1:{device.port}/onvif-http/snapshot?Profile_101"
    assert snapshot in out and device.password not in out
    db = Database(load_config(config, environ={}).database.url)
    with db.session() as s:
        stored = s.execute(text("SELECT stream_url, sub_stream_url FROM cameras")).one()
        assert is_sealed(stored[0]) and is_sealed(stored[1])  # what the database holds: sealed
        assert "Fl4re" not in str(stored) and device.user not in str(stored)
        url = s.scalars(select(Camera.stream_url)).one()  # what the analyzers read: usable
        assert f"{device.user}:Fl4re-Stack%21@" in url


def onvif_gateway(tmp: Path, device: OnvifDevice, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("TEST_ONVIF_PASSWORD", device.password)
    source = {
        "id": "tank-dome",
        "kind": "onvif",
        "address": f"127.0.0.1:{device.port}",
        "username": device.user,
        "password_env": "TEST_ONVIF_PASSWORD",
    }
    camera = {
        "id": "tank-gate",
        "name": "Tank farm gate",
        "source": "tank-dome",
        "url": f"rtsp://127.0.0.1:{device.port + 1}/Streaming/Channels/101?transportmode=unicast",
    }
    gw = Gateway(
        load_config(write_config(tmp, sources=[source], cameras=[camera]), environ={}), analyse=False
    )
    upgrade(gw.db.engine)
    return gw


async def test_onvif_ptz_and_presets_through_the_camera_ptz_api(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    from gateway.api import create_app
    from tests.delivery.test_uplink_delivery import auth

    gw = onvif_gateway(tmp_path, device, monkeypatch)
    client = await aiohttp_client(create_app(gw))
    try:

        async def ptz(action: str, **extra: int) -> Any:
            resp = await client.post(
                "/api/cameras/tank-gate/ptz", json={"action": action, **extra}, headers=auth(gw)
            )
            return resp.status, await resp.json()

        status, body = await ptz("upleft", speed=255)
        assert status == 200 and body["onvif"] == "ContinuousMove -1.00 1.00 0.00", body
        assert (await ptz("stop"))[0] == 200
        device.set_ptz(0.75, 0.1, 0.2)
        status, body = await ptz("preset_set", preset=3)
        assert status == 200 and body["onvif"].startswith("SetPreset 3"), body
        device.set_ptz(0.0, 0.0, 0.0)
        resp = await client.get("/api/cameras/tank-gate/ptz/presets", headers=auth(gw, "viewer"))
        items = (await resp.json())["items"]
        assert [(p["preset"], p["name"]) for p in items] == [(3, "3")]
        assert (await ptz("preset_goto", preset=3))[0] == 200
        assert device.ptz_position == (0.75, 0.1, 0.2)
        status, body = await ptz("preset_goto", preset=4)  # never set: says so, nothing sent
        assert status == 409 and "no preset 4" in body["error"]["message"]
        resp = await client.post(
            "/api/cameras/tank-gate/ptz", json={"action": "stop"}, headers=auth(gw, "viewer")
        )
        assert resp.status == 403  # moving a camera is a write
        assert [m[0] for m in device.moves] == ["move", "stop", "set", "goto"]
        assert device.moves[0][2:4] == ("-1.0", "1.0")
    finally:
        await client.close()


async def test_probe_api_shows_the_snapshot_uri(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    from gateway.api import create_app
    from tests.delivery.test_uplink_delivery import auth

    gw = onvif_gateway(tmp_path, device, monkeypatch)
    client = await aiohttp_client(create_app(gw))
    try:
        body = {
            "host": "127.0.0.1",
            "port": device.port,
            "username": device.user,
            "password": device.password,
        }
        resp = await client.post("/api/discovery/onvif/probe", json=body, headers=auth(gw))
        answer = await resp.json()
        assert resp.status == 200, answer
        assert answer["snapshot_uri"] == f"{device.address}/onvif-http/snapshot?Profile_101"
        assert answer["behind_nat"] is False and device.password not in str(answer["snapshot_uri"])
    finally:
        await client.close()
