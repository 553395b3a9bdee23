"""Live view: fMP4 over WebSocket from the sample RTSP camera (H.264 remuxed), H.265 refused, snapshots."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

import gateway.api.cameras  # noqa: F401  (registers the live routes before the app is built)
from adapters.rtsp.live import FragmentedMp4Relay, avc_codec_string, split_boxes
from gateway.app import Gateway
from gateway.auth import issue_token
from tests.conftest import make_gateway

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture(scope="module")
def rtsp_h265(vtest: Path) -> Iterator[Any]:
    from adapters.rtsp.sample_camera import SampleRtspServer

    with SampleRtspServer({"cam": vtest}, codec="h265", max_seconds=4) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, users=("admin",))
    return gw


def auth(gw: Gateway, role: str = "viewer") -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, f"t-{role}", "machine", role, None)
    return {"Authorization": f"Bearer {secret}"}


async def add_camera(client: Client, gw: Gateway, camera_id: str, url: str) -> None:
    r = await client.post(
        "/api/cameras", json={"id": camera_id, "name": camera_id, "url": url}, headers=auth(gw, "admin")
    )
    assert r.status == 201, await r.text()


def box_types(segment: bytes) -> list[str]:
    """The top-level MP4 boxes of one message (each message holds whole boxes)."""
    types, pos = [], 0
    while pos < len(segment):
        size = int.from_bytes(segment[pos : pos + 4], "big")
        assert size >= 8, f"bad box size {size} at {pos}"
        types.append(segment[pos + 4 : pos + 8].decode("ascii"))
        pos += size
    assert pos == len(segment), "a message ends inside a box"
    return types


async def test_live_h264_sends_init_then_fragments(client: Client, gateway: Gateway, rtsp: Any) -> None:
    await add_camera(client, gateway, "gate-1", rtsp.url("vtest"))
    started = time.monotonic()
    async with client.ws_connect("/api/cameras/gate-1/live", headers=auth(gateway)) as ws:
        first = await ws.receive(timeout=15)
        assert first.type == aiohttp.WSMsgType.TEXT
        init = json.loads(first.data)
        assert init["type"] == "init"
        assert init["mime"].startswith('video/mp4; codecs="avc1.')
        assert "rtsp://" not in first.data and "127.0.0.1" not in first.data
        types: list[str] = []
        while types.count("mdat") < 3:
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            types += box_types(msg.data)
    assert time.monotonic() - started < 15
    assert types[:2] == ["ftyp", "moov"]
    rest = types[2:]
    assert rest == ["moof", "mdat"] * (len(rest) // 2)
    # The viewer left: its relay thread (and camera connection) ends.
    deadline = time.monotonic() + 10
    while any(t.name == "live-relay" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the relay thread outlived its viewer"
        await asyncio.sleep(0.1)


async def test_live_needs_a_token(client: Client, gateway: Gateway, rtsp: Any) -> None:
    await add_camera(client, gateway, "gate-1", rtsp.url("vtest"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/api/cameras/gate-1/live")
    assert err.value.status == 401
    r = await client.get("/api/cameras/gate-1/snapshot")
    assert r.status == 401


async def test_live_unknown_camera_is_404(client: Client, gateway: Gateway) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/api/cameras/nope/live", headers=auth(gateway))
    assert err.value.status == 404
    r = await client.get("/api/cameras/nope/live", headers=auth(gateway))
    assert r.status == 404
    assert "no camera nope" in (await r.json())["error"]["message"]


async def test_live_h265_is_unsupported(client: Client, gateway: Gateway, rtsp_h265: Any) -> None:
    await add_camera(client, gateway, "cam-265", rtsp_h265.url("cam"))
    async with client.ws_connect("/api/cameras/cam-265/live", headers=auth(gateway)) as ws:
        msg = await ws.receive(timeout=15)
        assert msg.type == aiohttp.WSMsgType.TEXT
        body = json.loads(msg.data)
        assert body["type"] == "unsupported"
        assert "H.265" in body["reason"]
        assert body["snapshot"] == "/api/cameras/cam-265/snapshot"
        assert "rtsp://" not in msg.data
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


@pytest.mark.parametrize("which", ["h264", "h265"])
async def test_snapshot_is_a_jpeg(
    client: Client, gateway: Gateway, which: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("rtsp" if which == "h264" else "rtsp_h265")
    await add_camera(client, gateway, "cam", server.url("vtest" if which == "h264" else "cam"))
    r = await client.get("/api/cameras/cam/snapshot", headers=auth(gateway))
    assert r.status == 200, await r.text()
    assert r.content_type == "image/jpeg"
    data = await r.read()
    assert data[:3] == b"\xff\xd8\xff"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (576, 768, 3)


async def test_relay_cpu_and_order(rtsp: Any) -> None:
    """About 4 s of remux costs a small fraction of a core (no decode); printed for the record."""
    relay = FragmentedMp4Relay(rtsp.url("vtest"))
    await relay.start()
    assert relay.codec is not None and relay.codec.startswith("avc1.")
    types: list[str] = []
    cpu0, t0 = time.process_time(), time.monotonic()
    async with contextlib.aclosing(relay.segments()) as segments:
        async for segment in segments:
            types += box_types(segment)
            if time.monotonic() - t0 > 4:
                break
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    print(f"relay: {100 * cpu / wall:.1f} % of a core over {wall:.1f} s")
    assert types[:2] == ["ftyp", "moov"] and types.count("mdat") >= 2
    assert cpu / wall < 0.25
    assert not any(t.name == "live-relay" for t in threading.enumerate())


def test_codec_string_and_box_split() -> None:
    # avcC (MP4) and Annex-B (RTSP) extradata of a High 3.1 stream.
    assert avc_codec_string(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001F"
    assert avc_codec_string(b"\x00\x00\x00\x01\x67\x4d\x40\x28\xaa\x00\x00\x00\x01\x68\xee") == "avc1.4D4028"
    assert avc_codec_string(b"") is None
    buf = bytearray(b"\x00\x00\x00\x08ftyp" + b"\x00\x00\x00\x0cmoov1234" + b"\x00\x00\x00\x10moof")
    assert [b[4:8] for b in split_boxes(buf)] == [b"ftyp", b"moov"]
    assert bytes(buf) == b"\x00\x00\x00\x10moof"  # incomplete: kept for the next write
