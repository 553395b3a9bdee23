"""A GB/T 28181 channel's snapshot and live view come from the media session the gateway plays (issue 19
item 5: they used to open "gb28181://..." with FFmpeg: "Protocol not found"). The device is SIPp on
loopback replaying H.264 in PS over RTP; the channel runs without a model (nothing to load)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
import pytest

from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from tests.conftest import DEMO_SCENES, wait_until, write_config
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
FRAMES = 250  # 10 s at 25 fps: the live viewer joins while the device still sends


async def test_gb_channel_snapshot_and_live_from_its_media_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, vtest: Path
) -> None:
    from adapters.gb28181.pcap import encode_h264, ps_to_rtp, write_pcap

    buf = io.BytesIO()
    encode_h264(vtest, FRAMES, 352, 288, fps=25, gop=25, ps_out=buf)
    write_pcap(tmp_path / "media_ps.pcap", ps_to_rtp(buf.getvalue(), 200000001))
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    server = {
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "host": "127.0.0.1",
        "port": 0,
        "tcp": False,
        "password_env": "VIGIL_TEST_GB_DEVICE_PW",
        "retry_s": 30,
    }
    camera = {
        "id": CHANNELS[0],
        "name": "Gate (GB)",
        "source": "plant-nvr",
        "url": f"gb28181://{DEVICE}/{CHANNELS[0]}",
        "scenes": [DEMO_SCENES[0]],  # a scene makes the gateway play the channel; its model is absent
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
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    headers = auth(gw, "viewer")
    r = await client.get(f"/api/cameras/{CHANNELS[0]}/snapshot", headers={**headers, "Accept-Language": "zh"})
    assert r.status == 503  # not played yet: said so, no FFmpeg "Protocol not found"
    assert "国标通道当前未在点播" in (await r.json())["error"]["message"]

    uac, ooc = device_scenarios(tmp_path)
    sipp = Sipp(
        uac, tmp_path, remote_port=upper.port, ooc=ooc, inf="device.csv", auth=(DEVICE, DEVICE_PASSWORD)
    )
    try:
        await sipp.start()

        def playing() -> bool:
            runner = gw.analytics.runners.get(CHANNELS[0])
            return runner is not None and runner.latest is not None

        await wait_until(playing, 60, "the GB channel's first frame")
        r = await client.get(f"/api/cameras/{CHANNELS[0]}/snapshot", headers=headers)
        assert r.status == 200, await r.text()
        image = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (288, 352, 3)

        async with client.ws_connect(f"/api/cameras/{CHANNELS[0]}/live", headers=headers) as ws:
            first = await ws.receive(timeout=15)
            assert first.type == aiohttp.WSMsgType.TEXT, first
            init = json.loads(first.data)
            assert init["type"] == "init", init
            assert init["mime"].startswith('video/mp4; codecs="avc1.')
            body = b""
            for _ in range(3):  # the init segment and two GOPs
                msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                body += msg.data
        with av.open(io.BytesIO(body), "r") as container:
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        assert len(frames) >= 25 and frames[0].shape == (288, 352, 3)
    finally:
        await client.close()
        await sipp.stop()
