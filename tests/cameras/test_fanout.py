"""Snapshots and live view of a running camera come from its own stream: the sample RTSP camera counts
its client connections, and repeated snapshots plus two live viewers add none beyond the camera's own."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

import gateway.api.cameras  # noqa: F401  (registers the camera routes before the app is built)
from adapters.rtsp.packet_feed import PacketFeed
from adapters.rtsp.sample_camera import SampleRtspServer
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cameras.viewing import camera_feed
from gateway.config.schema import load_config
from gateway.db import upgrade
from tests.conftest import wait_until, write_config

Client = TestClient
SNAPSHOTS = 6  # one every second: the console's camera page polls the same way (every 2 s)


@pytest.fixture(scope="module")
def camera(vtest: Path) -> Iterator[SampleRtspServer]:
    with SampleRtspServer({"cam": vtest}, max_seconds=4) as server:
        yield server


@pytest.fixture
def running(tmp_path: Path, camera: SampleRtspServer) -> Gateway:
    """A gateway that analyses (runs) one camera without scenes on the sample stream; the API app
    starts and stops it."""
    cams = [{"id": "gate-1", "name": "Gate 1", "url": camera.url("cam")}]
    gw = Gateway(load_config(write_config(tmp_path, cameras=cams), environ={}), analyse=True)
    upgrade(gw.db.engine)
    return gw


@pytest.fixture
async def client(running: Gateway, aiohttp_client: Callable[..., Any]) -> Client:
    from gateway.api import create_app

    result: Client = await aiohttp_client(create_app(running))
    return result


def viewer(gw: Gateway) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, "t-viewer", "machine", "viewer", None)
    return {"Authorization": f"Bearer {secret}"}


async def watch(client: Client, headers: dict[str, str], fragments: int) -> tuple[dict[str, Any], bytes]:
    """One live viewer: the init message, then the init segment and ``fragments`` fragments."""
    async with client.ws_connect("/api/cameras/gate-1/live", headers=headers) as ws:
        first = await ws.receive(timeout=20)
        assert first.type == aiohttp.WSMsgType.TEXT, first
        init = json.loads(first.data)
        body = b""
        got = 0
        while got < fragments + 1:
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            body += msg.data
            got += 1
    return init, body


def decoded_frames(mp4: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(mp4), "r") as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


async def test_snapshots_and_two_viewers_add_no_session(
    client: Client, running: Gateway, camera: SampleRtspServer
) -> None:
    await wait_until(
        lambda: running.analytics.runners["gate-1"].health.state == "online", 20, "camera online"
    )
    own = camera.clients_opened
    assert own == 1, "the running camera holds one connection"
    headers = viewer(running)

    times = []
    for _ in range(SNAPSHOTS):
        r = await client.get("/api/cameras/gate-1/snapshot", headers=headers)
        assert r.status == 200, await r.text()
        assert r.content_type == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (576, 768, 3)
        times.append(float(r.headers["X-Frame-Time"]))
        await asyncio.sleep(1.0)
    assert times == sorted(times) and times[-1] > times[0], "each snapshot is a newer frame of the stream"

    (init_a, mp4_a), (init_b, mp4_b) = await asyncio.gather(
        watch(client, headers, 2), watch(client, headers, 2)
    )
    for init, mp4 in ((init_a, mp4_a), (init_b, mp4_b)):
        assert init["type"] == "init" and init["mime"].startswith('video/mp4; codecs="avc1.')
        assert (init["width"], init["height"]) == (768, 576)
        frames = decoded_frames(mp4)
        assert len(frames) >= 10, "two whole 1 s GOPs at 10 fps"
        assert frames[0].shape == (576, 768, 3)

    assert camera.clients_opened == own, "snapshots and live viewers opened no RTSP connection"
    assert camera.sessions == 1
    feed = camera_feed(running.analytics, "gate-1")
    assert isinstance(feed, PacketFeed)
    deadline = time.monotonic() + 5
    while feed.subscribers:  # the viewers left: their subscriptions end
        assert time.monotonic() < deadline, "a live viewer's subscription outlived it"
        await asyncio.sleep(0.1)


async def test_snapshot_of_a_camera_that_lost_its_stream_says_why(
    client: Client, running: Gateway, camera: SampleRtspServer
) -> None:
    await wait_until(
        lambda: running.analytics.runners["gate-1"].health.state == "online", 20, "camera online"
    )
    camera.stop()
    try:
        await wait_until(
            lambda: running.analytics.runners["gate-1"].health.state != "online", 20, "camera offline"
        )
        headers = viewer(running)
        r = await client.get("/api/cameras/gate-1/snapshot", headers={**headers, "Accept-Language": "en"})
        assert r.status == 503
        assert (await r.json())["error"]["message"].startswith("the camera has no current picture: ")
        r = await client.get("/api/cameras/gate-1/snapshot", headers={**headers, "Accept-Language": "zh-CN"})
        assert r.status == 503
        assert (await r.json())["error"]["message"].startswith("摄像机暂无画面：")
    finally:
        camera.restart()
