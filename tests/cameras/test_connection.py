"""Stream addresses: checked before they are saved (scheme, host, port), "test connection" against the
real sample RTSP camera (with a password), and faults in the camera list in the user's language."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import gateway.api.cameras  # noqa: F401  (registers the camera routes before the app is built)
from adapters.rtsp.probe import ProbeError, probe_stream
from adapters.rtsp.sample_camera import SampleRtspServer
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.config.schema import load_config
from gateway.db import upgrade
from tests.conftest import wait_until, write_config

Client = TestClient
USER, PASSWORD = "operator", "s3cret-pass"


@pytest.fixture(scope="module")
def camera(vtest: Path) -> Iterator[SampleRtspServer]:
    """The sample camera behind a password, like a real one."""
    with SampleRtspServer({"cam": vtest}, max_seconds=3, user=f"{USER}:{PASSWORD}") as server:
        yield server


@pytest.fixture
def running(tmp_path: Path, camera: SampleRtspServer) -> Gateway:
    """A gateway running one camera at a path the camera does not have (404)."""
    wrong = camera.credentials_url("cam", USER, PASSWORD).replace("/cam", "/no-such-path")
    cams = [{"id": "gate-9", "name": "Gate 9", "url": wrong}]
    gw = Gateway(load_config(write_config(tmp_path, cameras=cams), environ={}), analyse=True)
    upgrade(gw.db.engine)
    return gw


@pytest.fixture
async def client(running: Gateway, aiohttp_client: Callable[..., Any]) -> Client:
    from gateway.api import create_app

    result: Client = await aiohttp_client(create_app(running))
    return result


def token(gw: Gateway, role: str) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, f"t-{role}", "machine", role, None)
    return {"Authorization": f"Bearer {secret}"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_reports_codec_size_and_rate(camera: SampleRtspServer) -> None:
    info = probe_stream(camera.credentials_url("cam", USER, PASSWORD), timeout_s=5)
    assert (info.codec, info.width, info.height) == ("h264", 768, 576)
    assert info.fps is not None and 9 <= info.fps <= 11  # vtest.avi is 10 fps


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda url: url.replace(PASSWORD, "wrong"), "unauthorized"),
        (lambda url: url.replace(f"{USER}:{PASSWORD}@", ""), "unauthorized"),
        (lambda url: url.replace("/cam", "/nope"), "not_found"),
        (lambda url: f"rtsp://127.0.0.1:{closed_port()}/cam", "refused"),
    ],
)
def test_probe_says_why_not(camera: SampleRtspServer, mangle: Callable[[str], str], code: str) -> None:
    url = mangle(camera.credentials_url("cam", USER, PASSWORD))
    with pytest.raises(ProbeError) as err:
        probe_stream(url, timeout_s=5)
    assert err.value.code == code
    assert PASSWORD not in err.value.detail


def test_probe_of_a_silent_server_is_unreachable() -> None:
    with socket.socket() as silent:  # accepts the connection (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(ProbeError) as err:
            probe_stream(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam", timeout_s=1.5)
    assert err.value.code == "unreachable"


def test_probe_of_a_text_file_is_not_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50, encoding="utf-8")
    with pytest.raises(ProbeError) as err:
        probe_stream(f"file://{text}")
    assert err.value.code == "not_video"


async def test_test_connection_route(client: Client, running: Gateway, camera: SampleRtspServer) -> None:
    admin = token(running, "admin")
    good = camera.credentials_url("cam", USER, PASSWORD)
    r = await client.post("/api/cameras/test", json={"url": good}, headers={**admin, "Accept-Language": "zh"})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["ok"] is True and (body["codec"], body["width"], body["height"]) == ("h264", 768, 576)
    assert body["message"].startswith("连接成功：H264 768×576")

    wrong = good.replace(PASSWORD, "nope")
    r = await client.post(
        "/api/cameras/test", json={"url": wrong}, headers={**admin, "Accept-Language": "zh-CN"}
    )
    body = await r.json()
    assert body["ok"] is False and body["code"] == "unauthorized"
    assert "用户名或密码错误" in body["message"] and "nope" not in str(body)

    r = await client.post(
        "/api/cameras/test",
        json={"url": good.replace("/cam", "/x")},
        headers={**admin, "Accept-Language": "en"},
    )
    body = await r.json()
    assert body["code"] == "not_found" and "404" in body["message"]

    r = await client.post("/api/cameras/test", json={"url": "rtps://10.0.0.5/live"}, headers=admin)
    assert r.status == 422
    assert "rtsp://" in (await r.json())["error"]["message"]

    r = await client.post("/api/cameras/test", json={"url": good}, headers=token(running, "viewer"))
    assert r.status == 403


@pytest.mark.parametrize(
    ("url", "zh"),
    [
        ("http://10.0.0.5/live", "不支持的协议"),
        ("rtps://10.0.0.5/live", "是否应为 rtsp://"),
        ("10.0.0.5:554/live", "缺少协议"),
        ("rtsp://10.0.0.5:70000/live", "端口必须是 1 到 65535"),
        ("rtsp:///live", "缺少主机"),
    ],
)
async def test_a_bad_address_is_not_saved(client: Client, running: Gateway, url: str, zh: str) -> None:
    admin = {**token(running, "admin"), "Accept-Language": "zh-CN,zh;q=0.9"}
    r = await client.post("/api/cameras", json={"id": "bad-1", "name": "Bad", "url": url}, headers=admin)
    assert r.status == 422
    detail = (await r.json())["error"]["details"]
    assert detail[0]["field"] == "url" and zh in detail[0]["problem"]
    r = await client.get("/api/cameras/bad-1", headers=admin)
    assert r.status == 404


async def test_the_list_says_why_a_camera_is_down_in_chinese(client: Client, running: Gateway) -> None:
    headers = {**token(running, "viewer"), "Accept-Language": "zh-CN"}

    async def fault() -> Any:
        r = await client.get("/api/cameras", headers=headers)
        return (await r.json())["items"][0]["fault"]

    found = None
    for _ in range(200):  # the camera's first attempt fails within a second
        found = await fault()
        if found:
            break
        await wait_until(lambda: True, 0.1, "a tick")
    assert found is not None, "the camera at a wrong path shows a fault"
    assert found["code"] == "not_found"
    assert found["message"].startswith("码流路径不存在（404）")
    r = await client.get("/api/cameras/gate-9", headers={**headers, "Accept-Language": "en"})
    body = await r.json()
    assert body["fault"]["message"].startswith("stream path not found (404)")
    assert PASSWORD not in str(body)


async def test_adding_an_existing_camera_says_so_in_chinese(client: Client, running: Gateway) -> None:
    admin = {**token(running, "admin"), "Accept-Language": "zh-CN"}
    body = {"id": "gate-9", "name": "Again", "url": "rtsp://10.0.0.9/live"}
    r = await client.post("/api/cameras", json=body, headers=admin)
    assert r.status == 409
    assert (await r.json())["error"]["message"] == "摄像机编号 gate-9 已存在，请换一个编号"
