"""ONVIF adapter against a loopback SOAP device whose clock is 3 hours ahead (tests/peers/onvif_device.py)."""

from __future__ import annotations

import datetime as dt
import re
import socket
from typing import Literal

import pytest

from adapters.onvif import (
    OnvifAuthError,
    OnvifClient,
    OnvifProtocolError,
    OnvifUnreachable,
    discover,
    probe,
)
from adapters.onvif.discovery import parse_probe_matches
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
