"""The first working slice end to end, against a real RTSP server on loopback:
RTSP -> PyAV -> 1 fps sampler -> YOLOX-Nano -> zones -> intrusion + crowd -> alarm + snapshot -> API/CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.models.pack import import_pack
from tests.conftest import ARTIFACTS, DEMO_SCENES, MORE_SCENES, ROOT, write_config

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def slice_config(tmp_path: Path, rtsp: Any) -> Path:
    return write_config(
        tmp_path,
        cameras=[
            {
                "id": "walkway",
                "name": "Walkway",
                "location": "east path",
                "url": rtsp.url("vtest"),
                # One stream, five scenes; no helmet model is imported, so that one says so.
                "scenes": [*DEMO_SCENES, *MORE_SCENES, {"scene": "helmet"}],
            },
            # Nothing listens on port 9 of loopback: the camera must show an error, not crash anything.
            {
                "id": "broken",
                "name": "Broken",
                "url": "rtsp://user:pw@127.0.0.1:9/none",
                "scenes": [DEMO_SCENES[0]],
            },
        ],
        # No camera-scene cooldown: the slice checks that clearing re-arms the rule within a minute
        # (the cooldown and merge rules have their own tests in tests/alarms/test_alarm_repeats.py).
        alarms={"defaults": {"cooldown_s": 0}},
    )


@pytest.fixture
def gateway(slice_config: Path, models_dir: Path) -> Gateway:
    config = load_config(slice_config, environ={})
    gw = Gateway(config)
    upgrade(gw.db.engine)
    results = import_pack(gw.db, config.storage.root, models_dir, ROOT / "config" / "models")
    assert [r.status for r in results if r.name == "yolox_nano"] == ["imported"]
    return gw


async def wait_for(check: Callable[[], Awaitable[Any]], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {within_s} s waiting for {what}")


async def test_rtsp_to_alarms_with_snapshots(
    gateway: Gateway,
    slice_config: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with gateway.db.session() as s:
        secret, _ = issue_token(s, "test", "machine", "admin")
    auth = {"Authorization": f"Bearer {secret}"}
    client = await aiohttp_client(create_app(gateway))
    started = time.monotonic()

    async def all_alarms() -> dict[str, Any] | None:
        items = (await (await client.get("/api/alarms", headers=auth)).json())["items"]
        by_scene = {a["scene"]: a for a in items}
        return by_scene if {"intrusion", "crowd", "off_post", "lifting_zone"} <= set(by_scene) else None

    alarms = await wait_for(all_alarms, 60, "intrusion, crowd, off-post and lifting-zone alarms")
    print(f"all four alarms after {time.monotonic() - started:.1f} s")
    assert alarms["off_post"]["region"] == "duty-box" and "on duty" in alarms["off_post"]["message"]
    assert alarms["lifting_zone"]["region"] == "crane-area"

    intrusion, crowd = alarms["intrusion"], alarms["crowd"]
    assert intrusion["camera_id"] == "walkway" and intrusion["region"] == "lawn-east"
    assert crowd["region"] == "walkway" and "crowd of up to" in crowd["message"]
    for alarm in (intrusion, crowd):
        r = await client.get(alarm["snapshot"], headers=auth)
        assert r.status == 200 and r.content_type == "image/jpeg"
        annotated = await r.read()
        raw = await (await client.get(alarm["snapshot"] + "?kind=snapshot_raw", headers=auth)).read()
        assert annotated[:3] == raw[:3] == b"\xff\xd8\xff" and annotated != raw
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"slice-{alarm['scene']}.jpg").write_bytes(annotated)
        detail = await (await client.get(f"/api/alarms/{alarm['id']}", headers=auth)).json()
        assert [r["action"] for r in detail["revisions"]] == ["raised"]
        assert {e["kind"] for e in detail["evidence"]} == {"snapshot", "snapshot_raw"}
        assert detail["details"]["duration_s"] >= 3

    cameras = {c["id"]: c for c in (await (await client.get("/api/cameras", headers=auth)).json())["items"]}
    walkway, broken = cameras["walkway"], cameras["broken"]
    assert walkway["status"] == "online" and walkway["codec"] == "h264"
    # Every scene samples at 1 frame/s and the sample camera's GOP is 1 s: only keyframes are decoded.
    assert walkway["decode_mode"] == "keyframes" and abs(walkway["gop_s"] - 1.0) < 0.05
    assert (walkway["width"], walkway["height"]) == (768, 576)
    statuses = {s["scene"]: s["status"] for s in walkway["scenes"]}
    assert statuses["intrusion"] == statuses["off_post"] == "running"
    assert statuses["helmet"].startswith("model missing: model 'ppe' is not imported")
    assert broken["status"] == "error"
    assert "cannot open rtsp://***@127.0.0.1:9/none" in broken["last_error"]
    assert "pw" not in broken["stream_url"] + broken["last_error"]

    metrics = await (await client.get("/metrics", headers=auth)).text()
    assert 'vigil_camera_up{camera="walkway"} 1.0' in metrics
    assert 'vigil_camera_up{camera="broken"} 0.0' in metrics
    assert 'vigil_scene_running{camera="walkway",scene="helmet"} 0.0' in metrics
    assert 'provider="CPUExecutionProvider"' in metrics
    samples = [line.split(" ") for line in metrics.splitlines() if line and not line.startswith("#")]
    values = {name: float(value) for name, value in samples}
    analysed = values['vigil_frames_analysed_total{camera="walkway"}']
    inferred = values['vigil_inference_frames_total{model="yolox_nano"}']
    # Both scenes share one inference per frame; one frame may be between the two counters.
    assert analysed >= 5 and 0 <= inferred - analysed <= 1

    # One alarm per event: the open intrusion alarm is not raised again while people stay.
    await asyncio.sleep(3)
    items = (await (await client.get("/api/alarms?scene=intrusion", headers=auth)).json())["items"]
    assert len(items) == 1

    # Clearing re-arms the rule: a new intrusion alarm follows while people keep walking there.
    r = await client.post(f"/api/alarms/{intrusion['id']}/clear", json={"note": "checked"}, headers=auth)
    assert r.status == 200 and (await r.json())["status"] == "cleared"

    async def second_intrusion() -> bool:
        items = (await (await client.get("/api/alarms?scene=intrusion", headers=auth)).json())["items"]
        return len(items) == 2

    await wait_for(second_intrusion, 60, "a new intrusion alarm after the clear")

    # The CLI reads the same configuration and database.
    assert main(["--config", str(slice_config), "alarms", "list"]) == 0
    out = capsys.readouterr().out
    assert "walkway" in out and "intrusion" in out and "crowd" in out and ".jpg" in out
