"""Issue 19 item 14: a camera password holding '@', '/', ':' or '#' (typed unencoded, as people do)
opens the stream at the right host and never shows in answers, errors or logs; against the real
sample RTSP camera behind that password."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from adapters.rtsp.probe import ProbeError, probe_stream
from adapters.rtsp.sample_camera import SampleRtspServer
from gateway.app import Gateway
from gateway.config.schema import CameraConfig
from gateway.db.schema import Camera
from tests.conftest import login, make_gateway

Client = TestClient
PASSWORD = "p@ss/w:rd#1"


@pytest.fixture(scope="module")
def camera(vtest: Path) -> Iterator[SampleRtspServer]:
    with SampleRtspServer({"cam": vtest}, max_seconds=3, user=f"admin:{PASSWORD}") as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, users=("admin",))
    return gw


def test_the_password_is_encoded_and_the_stream_opens(camera: SampleRtspServer) -> None:
    raw = camera.credentials_url("cam", "admin", PASSWORD)  # as typed: rtsp://admin:p@ss/w:rd#1@host/cam
    with pytest.raises(ProbeError):
        probe_stream(raw, timeout_s=8)  # unencoded, FFmpeg takes 'ss' for the host
    cam = CameraConfig.model_validate({"id": "c", "name": "c", "url": raw})
    assert cam.url.startswith("rtsp://admin:p%40ss%2Fw%3Ard%231@127.0.0.1:")
    assert probe_stream(cam.url, timeout_s=8).codec == "h264"


async def test_api_answers_and_logs_never_show_the_password(
    client: Client, gateway: Gateway, camera: SampleRtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = await login(client, "admin")
    raw = camera.credentials_url("cam", "admin", PASSWORD)
    r = await client.post("/api/cameras/test", json={"url": raw}, headers=admin)
    answers = [await r.text()]
    assert (await r.json())["ok"] is True, answers
    wrong = camera.credentials_url("cam", "admin", "n@pe/x")
    r = await client.post("/api/cameras/test", json={"url": wrong}, headers=admin)
    answers.append(await r.text())
    assert (await r.json())["code"] == "unauthorized"
    body = {"id": "gate", "name": "Gate", "url": raw, "sub_url": raw, "enabled": False}
    r = await client.post("/api/cameras", json=body, headers=admin)
    assert r.status == 201, await r.text()
    for path in ("/api/cameras", "/api/cameras/gate", "/metrics"):
        answers.append(await (await client.get(path, headers=admin)).text())
    with gateway.db.session() as s:
        stored = s.scalars(select(Camera.stream_url)).one()
    assert stored.startswith("rtsp://admin:p%40ss%2Fw%3Ard%231@127.0.0.1:")  # opened, sealed at rest
    for text in [*answers, caplog.text]:
        for secret in ("p@ss", "ss/w", "w:rd", "p%40ss", "n@pe", "pe/x"):
            assert secret not in text, (secret, text[:300])
