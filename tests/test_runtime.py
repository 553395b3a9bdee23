"""The inference worker and the camera runner keep going through bad input."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adapters import Frame
from analyzers import Region, build_scene
from analyzers.runtime import InferenceWorker
from gateway.alarms.recorder import SceneContext
from gateway.app import Gateway
from gateway.cameras.analytics import CameraRunner
from gateway.config.schema import CameraConfig, load_config
from gateway.db import upgrade
from gateway.models.pack import import_pack
from tests.conftest import DEMO_SCENES, ROOT, write_config


def test_a_bad_item_fails_alone_and_the_worker_lives_on() -> None:
    gate = threading.Event()

    def double(items: Sequence[object]) -> list[object]:
        gate.wait(5)
        if any(i == "bad" for i in items):
            raise ValueError("bad input")
        return [2 * i for i in items]  # type: ignore[operator]

    worker = InferenceWorker("double", double, max_batch=8)
    futures = [worker.submit(x) for x in (1, "bad", 3)]  # queued together: one batch
    gate.set()
    assert futures[0].result(5) == 2 and futures[2].result(5) == 6
    with pytest.raises(ValueError, match="bad input"):
        futures[1].result(5)
    assert worker.submit(5).result(5) == 10
    worker.close()


@pytest.fixture
def gateway(tmp_path: Path, models_dir: Path) -> Gateway:
    gw = Gateway(load_config(write_config(tmp_path), environ={}), analyse=False)
    upgrade(gw.db.engine)
    import_pack(gw.db, gw.config.storage.root, models_dir, ROOT / "config" / "models")
    return gw


def test_camera_runner_survives_black_tiny_odd_and_corrupt_frames(gateway: Gateway, vtest: Path) -> None:
    import av

    camera = CameraConfig.model_validate(
        {"id": "c", "name": "c", "url": "rtsp://127.0.0.1:9/x", "scenes": DEMO_SCENES}
    )
    runs = []
    for cfg in camera.scenes:
        scene = build_scene("c", cfg)
        runs.append(
            gateway.analytics.scene_run(
                camera, scene, SceneContext(None, {}, None, [Region(r.name, r.polygon) for r in cfg.regions])
            )
        )
    runner = CameraRunner(camera, runs, gateway.recorder)
    with av.open(str(vtest)) as container:
        real = next(container.decode(video=0)).to_ndarray(format="bgr24")
    frames = [
        np.zeros((576, 768, 3), np.uint8),  # black
        np.zeros((8, 8, 3), np.uint8),  # tiny
        np.zeros((1, 900, 3), np.uint8),  # a one-pixel strip
        np.zeros((1080, 1920, 3), np.uint8),  # not the camera's usual size
        np.zeros((576, 768), np.uint8),  # grayscale: a decoder fault
        np.zeros((576, 768, 3), np.float32),  # wrong pixel type
        real,
    ]
    for i, image in enumerate(frames):
        runner.analyse(Frame("c", 1_795_000_000.0 + 2 * i, image, float(i), True))
    runner.drain()
    assert runner.stats.errors == 2  # the grayscale and the float frame, reported, not raised
    assert runner.stats.frames_analysed == 5
    assert runner.stats.last_error is None  # the real frame after them went through
    runner.stop()
    gateway.analytics.stop()
