"""Regions per PTZ preset within one scene: the intrusion scene of a PTZ camera has a region drawn at
preset "gate" (the scene's preset) and one drawn at preset "tanks". Moving the loopback ONVIF device
between the two presets, the scene alarms only for the region of the preset the camera is at."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
from gateway.models.pack import import_pack
from tests.conftest import wait_until, write_config
from tests.ptz.test_ptz_regions import CARDS, GATE, WALKWAY, intrusions

TANKS = (0.9, 0.3, 0.1)
YARD = [[0.0, 0.2], [1.0, 0.2], [1.0, 1.0], [0.0, 1.0]]  # people walk here too, seen from "tanks"
# Each event its own alarm: a yard event must not be merged into the walkway alarm (cooldown, same target).
NO_REPEATS = {"defaults": {"cooldown_s": 0, "merge_window_s": 0, "flood_alarms": 10000}}
PRESETS = [
    {"name": "gate", "pan": GATE[0], "tilt": GATE[1], "zoom": GATE[2]},
    {"name": "tanks", "pan": TANKS[0], "tilt": TANKS[1], "zoom": TANKS[2]},
]


async def test_scene_alarms_only_for_the_regions_of_the_current_preset(
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
        "ptz": {"presets": PRESETS, "settle_s": 1},
        "scenes": [
            {
                "scene": "intrusion",
                "preset": "gate",
                "regions": [
                    {"name": "walkway", "polygon": WALKWAY},  # the scene's preset: gate
                    {"name": "yard", "polygon": YARD, "preset": "tanks"},
                ],
                "min_duration_s": 1,
            }
        ],
    }
    gw = Gateway(
        load_config(write_config(tmp_path, sources=[source], cameras=[camera], alarms=NO_REPEATS)),
        analyse=True,
    )
    gw.onvif.ptz_interval_s = 0.5
    upgrade(gw.db.engine)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "yolox_nano").symlink_to(models_dir / "yolox_nano")
    import_pack(gw.db, gw.config.storage.root, pack, CARDS)
    device.set_ptz(*GATE)
    await aiohttp_client(create_app(gw))

    def regions() -> list[str]:
        return sorted(a.region for a in intrusions(gw))

    # At "gate": people in both polygons' pixels, but only the walkway (drawn at gate) alarms.
    raised = await wait_until(lambda: intrusions(gw), 60, "the walkway alarm at preset gate")
    await asyncio.sleep(4)
    assert regions() == ["walkway"]
    await asyncio.to_thread(gw.lifecycle.apply, raised[0].id, Change("clear", "operator"))

    # At "tanks": only the yard alarms; the cleared walkway region is not analysed there.
    device.set_ptz(*TANKS)
    await wait_until(lambda: "yard" in regions(), 60, "the yard alarm at preset tanks")
    await asyncio.sleep(4)
    assert regions() == ["walkway", "yard"]
    runner = gw.analytics.runners["gate-ptz"]
    assert runner.scene_status()["intrusion"] == "running"

    # Between presets the scene pauses, naming both presets.
    device.set_ptz(0.0, 0.0, 0.5)
    await wait_until(
        lambda: runner.scene_status()["intrusion"].startswith("paused: camera off preset gate, tanks"),
        30,
        "the pause between presets",
    )


def test_plan_picks_the_regions_of_the_preset_the_camera_is_at() -> None:
    position: dict[str, Any] = {"pan": GATE[0], "tilt": GATE[1], "zoom": GATE[2], "moving": False}
    ptz = PtzConfig.model_validate({"presets": PRESETS, "settle_s": 0})
    camera = CameraConfig.model_validate({"id": "c", "name": "c", "url": "rtsp://127.0.0.1/x"})
    gate = SceneGate(camera, None, PtzGate(ptz, lambda: position), None)
    scene = SceneConfig.model_validate(
        {
            "scene": "intrusion",
            "preset": "gate",
            "regions": [
                {"name": "walkway", "polygon": WALKWAY},
                {"name": "yard", "polygon": YARD, "preset": "tanks"},
            ],
        }
    )
    assert gate.plan(scene, 100.0) == (frozenset({"walkway"}), None)
    position.update(pan=TANKS[0], tilt=TANKS[1], zoom=TANKS[2])
    assert gate.plan(scene, 101.0) == (frozenset({"yard"}), None)
    position["moving"] = True
    assert gate.plan(scene, 102.0) == (None, "paused: camera off preset gate, tanks (moving)")
    # A region with no preset in a scene with none is analysed at every view.
    free = SceneConfig.model_validate(
        {
            "scene": "intrusion",
            "regions": [
                {"name": "fence", "polygon": WALKWAY},
                {"name": "yard", "polygon": YARD, "preset": "tanks"},
            ],
        }
    )
    assert gate.plan(free, 103.0) == (frozenset({"fence"}), None)
    position["moving"] = False
    assert gate.plan(free, 104.0) == (None, None)  # at tanks: both


def test_a_region_preset_must_be_one_of_the_camera() -> None:
    from pydantic import ValidationError

    camera: dict[str, Any] = {
        "id": "c",
        "name": "c",
        "url": "rtsp://127.0.0.1/x",
        "ptz": {"presets": PRESETS},
        "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": YARD, "preset": "roof"}]}],
    }
    with pytest.raises(ValidationError, match="preset 'roof' is not in ptz.presets"):
        CameraConfig.model_validate(camera)


def test_without_a_ptz_position_preset_regions_fall_back_to_the_moved_view_check() -> None:
    """A GB/T 28181 channel (or any camera the ONVIF watcher does not poll) has presets but no PTZ
    position: its preset scenes wait 30 s for one, then the moved-view check decides for all regions."""
    rng = np.random.default_rng(7)
    view = np.kron(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8), np.ones((8, 8, 1), dtype=np.uint8))
    turned = np.ascontiguousarray(view[:, ::-1])
    diagnosis = VideoDiagnosis("gb", DiagnosisSettings(check_interval_s=1), Reference.of(view))
    ptz = PtzConfig.model_validate({"presets": PRESETS})
    camera = CameraConfig.model_validate({"id": "gb", "name": "gb", "url": "rtsp://127.0.0.1/x"})
    gate = SceneGate(camera, None, PtzGate(ptz, lambda: None), diagnosis)
    scene = SceneConfig.model_validate(
        {
            "scene": "intrusion",
            "preset": "gate",
            "regions": [{"name": "yard", "polygon": YARD, "preset": "tanks"}],
        }
    )
    now = time.time()
    diagnosis.offer(view, now)
    assert gate.plan(scene, now) == (None, "paused: waiting for the camera's PTZ position (preset tanks)")
    assert gate.plan(scene, now + 31) == (None, None)  # no position came: every region runs
    diagnosis.offer(turned, now + 32)
    moved = "paused: the view does not match the reference picture (camera moved)"
    assert gate.plan(scene, now + 32) == (None, moved)


def test_extinguisher_scans_only_the_regions_of_the_current_preset() -> None:
    from analyzers.scenes.extinguisher import Extinguisher

    left = [[0.0, 0.0], [0.4, 0.0], [0.4, 0.4], [0.0, 0.4]]
    right = [[0.6, 0.6], [1.0, 0.6], [1.0, 1.0], [0.6, 1.0]]
    config = SceneConfig.model_validate(
        {
            "scene": "extinguisher",
            "regions": [{"name": "a", "polygon": left}, {"name": "b", "polygon": right}],
        }
    )
    scene = Extinguisher("c", config)
    both = scene.windows(640, 480)
    scene.active_regions = frozenset({"a"})
    only_a = scene.windows(640, 480)
    assert 0 < len(only_a) < len(both)
    assert all((x0 + x1) / 2 < 0.4 * 640 for x0, _, x1, _ in only_a)  # window centres in region a
