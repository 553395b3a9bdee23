"""PTZ-aware regions: the intrusion scene of a PTZ camera belongs to preset "gate". With the loopback
ONVIF device reporting another position the scene pauses (status says so, no alarm from a view its
region does not fit); back at the preset it resumes and alarms; moving again pauses it. Without PTZ
state, a view that no longer matches the reference pauses region scenes instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from analyzers.health import DiagnosisSettings, Reference, VideoDiagnosis
from analyzers.scenes.settings import SceneConfig
from gateway.alarms.lifecycle import Change
from gateway.api import create_app
from gateway.app import Gateway
from gateway.cameras.ptz_gate import PtzGate
from gateway.cameras.scene_gate import SceneGate
from gateway.config.plant import PtzConfig
from gateway.config.schema import CameraConfig, load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm
from gateway.models.pack import import_pack
from tests.conftest import wait_until, write_config

CARDS = Path(__file__).resolve().parents[2] / "config" / "models"
WALKWAY = [[0.15, 0.28], [1.0, 0.28], [1.0, 1.0], [0.15, 1.0]]
GATE = (0.25, -0.5, 0.1)  # the device's home position: the preset the region was drawn at


def intrusions(gw: Gateway) -> list[Alarm]:
    with gw.db.session() as s:
        return list(s.scalars(select(Alarm).where(Alarm.scene == "intrusion")))


async def test_region_scene_pauses_off_its_preset_and_resumes_back(
    device: Any,
    rtsp: Any,
    models_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: Callable[..., Any],
) -> None:
    monkeypatch.setenv("VIGIL_TEST_ONVIF_PW", device.password)
    source = {
        "id": "ptz",
        "kind": "onvif",
        "address": f"127.0.0.1:{device.port}",
        "username": device.user,
        "password_env": "VIGIL_TEST_ONVIF_PW",
    }
    camera = {
        "id": "gate-ptz",
        "name": "Gate PTZ",
        "source": "ptz",
        "url": rtsp.url("vtest"),
        "diagnosis": {"enabled": False},
        "ptz": {
            "presets": [{"name": "gate", "pan": GATE[0], "tilt": GATE[1], "zoom": GATE[2]}],
            "settle_s": 1,
        },
        "scenes": [
            {
                "scene": "intrusion",
                "preset": "gate",
                "regions": [{"name": "walkway", "polygon": WALKWAY}],
                "min_duration_s": 1,
            }
        ],
    }
    gw = Gateway(load_config(write_config(tmp_path, sources=[source], cameras=[camera])), analyse=True)
    gw.onvif.ptz_interval_s = 0.5
    upgrade(gw.db.engine)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "yolox_nano").symlink_to(models_dir / "yolox_nano")
    import_pack(gw.db, gw.config.storage.root, pack, CARDS)
    device.set_ptz(0.9, 0.3, 0.1)  # an operator turned the camera to the tanks
    await aiohttp_client(create_app(gw))

    def status() -> str:
        runner = gw.analytics.runners.get("gate-ptz")
        return runner.scene_status()["intrusion"] if runner is not None else ""

    await wait_until(lambda: status().startswith("paused: camera off preset gate"), 30, "the pause")
    await asyncio.sleep(6)  # people walk through the region's pixels all the while
    assert intrusions(gw) == []
    assert gw.analytics.runners["gate-ptz"].stats.frames_analysed == 0

    device.set_ptz(*GATE)  # back at the preset: resumes after settle_s, and alarms
    raised = await wait_until(lambda: intrusions(gw), 60, "the intrusion alarm at the preset")
    assert status() == "running"
    await asyncio.to_thread(gw.lifecycle.apply, raised[0].id, Change("clear", "operator"))

    device.set_ptz(*GATE, moving=True)  # moved from the console: paused while it moves
    await wait_until(lambda: "moving" in status(), 30, "the pause while moving")
    analysed = gw.analytics.runners["gate-ptz"].stats.frames_analysed
    await asyncio.sleep(5)
    assert len(intrusions(gw)) == 1
    assert gw.analytics.runners["gate-ptz"].stats.frames_analysed <= analysed + 1  # one may be in flight


def test_preset_gate_tolerance_and_settling() -> None:
    position: dict[str, Any] = {"pan": 0.5, "tilt": 0.0, "zoom": 0.2, "moving": False}
    ptz = PtzConfig.model_validate(
        {"presets": [{"name": "p1", "pan": 0.5, "tilt": 0.0, "zoom": 0.2}], "settle_s": 2}
    )
    gate = PtzGate(ptz, lambda: position)
    assert gate.off_preset("p1", 100.0) == "paused: camera back at preset p1, settling"
    assert gate.off_preset("p1", 102.5) is None
    position["pan"] = 0.51  # within the tolerance (0.02)
    assert gate.off_preset("p1", 103.0) is None
    position["pan"] = 0.6
    assert gate.off_preset("p1", 104.0) == "paused: camera off preset p1 (at pan 0.60, tilt 0.00, zoom 0.20)"
    position["pan"] = 0.5
    assert gate.off_preset("p1", 105.0) is not None  # settling again
    assert PtzGate(ptz, lambda: None).off_preset("p1", 106.0) is None  # no PTZ state: not this gate's call
    silent = PtzGate(ptz, lambda: None)  # presets, but no status yet: wait a while, then let others decide
    assert silent.waiting(200.0) and silent.waiting(229.0) and not silent.waiting(230.5)
    assert not gate.waiting(200.0)


def test_without_ptz_state_a_moved_view_pauses_region_scenes() -> None:
    rng = np.random.default_rng(7)
    view = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
    view = np.kron(view, np.ones((8, 8, 1), dtype=np.uint8))  # blocky texture, 576x768
    turned = np.ascontiguousarray(view[:, ::-1])
    diagnosis = VideoDiagnosis("c", DiagnosisSettings(check_interval_s=1), Reference.of(view))
    camera = CameraConfig.model_validate({"id": "c", "name": "c", "url": "rtsp://127.0.0.1/x"})
    gate = SceneGate(camera, None, None, diagnosis)
    region_scene = SceneConfig.model_validate(
        {"scene": "intrusion", "regions": [{"name": "r", "polygon": WALKWAY}]}
    )
    whole_frame = SceneConfig.model_validate({"scene": "flame"})
    now = time.time()
    diagnosis.offer(view, now)
    diagnosis.offer(view, now + 1)
    assert gate.paused(region_scene) is None
    diagnosis.offer(turned, now + 2)
    assert gate.paused(region_scene) == "paused: the view does not match the reference picture (camera moved)"
    assert gate.paused(whole_frame) is None
    diagnosis.offer(view, now + 3)
    assert gate.paused(region_scene) is None
