"""Wires sources to analyzers to the alarm recorder: one thread per camera, one inference worker per model.

Nothing here runs on the event loop: decoding and scene rules run on each camera's thread, inference
on the model's worker thread, and alarm writes on the camera thread through short DB transactions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapters import Frame, RtspSource, StreamHealth
from analyzers import Detection, Region, Scene, YoloxDetector, build_scene
from analyzers.runtime import InferenceWorker
from gateway.alarms import AlarmRecorder, SceneContext
from gateway.config import CameraConfig
from gateway.db import Database
from gateway.modelpack import active_model_dir

log = logging.getLogger(__name__)

# Detections below this never reach a scene; each scene applies its own, higher threshold.
DETECTION_FLOOR = 0.25


@dataclass
class ModelHandle:
    name: str
    version_id: str
    provider: str
    worker: InferenceWorker


@dataclass
class CameraStats:
    frames_analysed: int = 0
    alarms: int = 0
    analyse_s: float = 0.0
    errors: int = 0
    last_error: str | None = None


class CameraRunner:
    """One camera: its source thread, its scenes, and where their events go."""

    def __init__(
        self,
        camera: CameraConfig,
        scenes: list[tuple[Scene, SceneContext, ModelHandle]],
        recorder: AlarmRecorder,
        on_alarm: Callable[[str], None] | None = None,
    ) -> None:
        self.camera = camera
        self.scenes = scenes
        self.recorder = recorder
        self.on_alarm = on_alarm
        rate = max((s.config.sample_fps for s, _, _ in scenes), default=1.0)
        self.source = RtspSource(camera.id, camera.url, rate, transport=camera.transport)
        self.stats = CameraStats()
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)

    @property
    def health(self) -> StreamHealth:
        return self.source.health

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.source.stop()
        self._thread.join(timeout)

    def rearm(self, scene_key: str, region: str) -> None:
        for scene, _, _ in self.scenes:
            if scene.key == scene_key:
                scene.rearm(region)

    def _run(self) -> None:
        try:
            self.source.run(self.analyse)
        except Exception as exc:  # never let one camera take the process down
            log.exception("camera %s stopped on an unexpected error", self.camera.id)
            self.source.health.state, self.source.health.last_error = "error", str(exc)

    def analyse(self, frame: Frame) -> None:
        try:
            self._analyse(frame)
        except Exception as exc:  # one bad frame (or a full disk) must not stop the camera
            if str(exc) != self.stats.last_error:
                log.exception("camera %s: analysing a frame failed", self.camera.id)
            self.stats.last_error = str(exc)
            self.stats.errors += 1

    def _analyse(self, frame: Frame) -> None:
        start = time.perf_counter()
        height, width = frame.image.shape[:2]
        # One inference per model per frame, shared by every scene that uses the model.
        handles = {h.name: h for _, _, h in self.scenes}
        futures = {name: h.worker.submit(frame.image) for name, h in handles.items()}
        detections = {name: fut.result(timeout=60) for name, fut in futures.items()}
        for scene, ctx, handle in self.scenes:
            for event in scene.update(frame.ts, detections[handle.name], width, height):
                alarm_id = self.recorder.record(event, frame.image, ctx)
                if alarm_id is not None:
                    self.stats.alarms += 1
                    if self.on_alarm:
                        self.on_alarm(alarm_id)
        self.stats.frames_analysed += 1
        self.stats.analyse_s += time.perf_counter() - start
        self.stats.last_error = None


class Analytics:
    """Owns the model workers and camera runners of a running gateway."""

    def __init__(self, db: Database, storage_root: Path, recorder: AlarmRecorder) -> None:
        self.db = db
        self.storage_root = storage_root
        self.recorder = recorder
        self.models: dict[str, ModelHandle] = {}
        self.runners: dict[str, CameraRunner] = {}
        self._lock = threading.Lock()

    def model(self, name: str) -> ModelHandle:
        """Load a model once; every scene on every camera that needs it shares the handle."""
        with self._lock:
            handle = self.models.get(name)
            if handle is None:
                path, card, version_id = active_model_dir(self.db, self.storage_root, name)
                if card.family != "yolox":
                    raise ValueError(
                        f"model {name} is a {card.family} model; the scenes here need a detector"
                    )
                detector = YoloxDetector(card, path)

                def detect(
                    images: Sequence[np.ndarray], detector: YoloxDetector = detector
                ) -> list[list[Detection]]:
                    return detector.detect(images, conf=DETECTION_FLOOR)

                handle = ModelHandle(
                    name, version_id, detector.provider, InferenceWorker(name, detect, detector.max_batch)
                )
                self.models[name] = handle
            return handle

    def start_camera(
        self,
        camera: CameraConfig,
        scene_ids: dict[str, int],
        open_keys: set[str],
        on_alarm: Callable[[str], None] | None = None,
    ) -> CameraRunner:
        """Build a camera's scenes (latched where an alarm is still open) and start its thread."""
        scenes = []
        for cfg in camera.scenes:
            if not cfg.enabled:
                continue
            scene = build_scene(camera.id, cfg)
            for region in scene.regions:
                if f"{camera.id}/{scene.key}/{region.name}" in open_keys:
                    scene.latch(region.name)
            ctx = SceneContext(
                camera_scene_id=scene_ids.get(cfg.scene),
                tags=cfg.tags.model_dump(exclude_none=True),
                scene_tag=cfg.scene_tag,
                regions=[Region(r.name, r.polygon) for r in cfg.regions],
            )
            scenes.append((scene, ctx, self.model(cfg.model)))
        runner = CameraRunner(camera, scenes, self.recorder, on_alarm)
        with self._lock:
            old = self.runners.pop(camera.id, None)
        if old is not None:
            old.stop()
        self.runners[camera.id] = runner
        runner.start()
        log.info("camera %s started with scenes %s", camera.id, [s.key for s, _, _ in scenes])
        return runner

    def rearm(self, camera_id: str, scene: str, region: str) -> None:
        runner = self.runners.get(camera_id)
        if runner is not None:
            runner.rearm(scene, region)

    def stop(self) -> None:
        for runner in list(self.runners.values()):
            runner.source.stop()
        for runner in list(self.runners.values()):
            runner.stop()
        for handle in self.models.values():
            handle.worker.close()
