"""Wires sources to analyzers to the alarm recorder: one thread per camera, one inference worker per model.

Nothing here runs on the event loop: decoding and scene rules run on each camera's thread, inference
on the model's worker thread, and alarm writes on the camera thread through short DB transactions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adapters import Frame, RtspSource, StreamHealth
from analyzers import Region, Scene, build_scene
from analyzers.detectors import load_detector
from analyzers.pose import BlazePoseLandmarks, load_pose
from analyzers.runtime import InferenceWorker
from gateway.alarms import AlarmRecorder, SceneContext
from gateway.capture import FrameCapture
from gateway.clips import ClipRecorder
from gateway.config import CameraConfig
from gateway.db import Database
from gateway.db.schema import CameraScene
from gateway.modelpack import ModelPackError, active_model_dir

log = logging.getLogger(__name__)

# Detections below this never reach a scene; each scene applies its own, higher threshold.
DETECTION_FLOOR = 0.25


class FrameSource(Protocol):
    """What a camera runner reads: ``RtspSource``, or ``GbMediaSource`` for a GB/T 28181 channel."""

    health: StreamHealth

    def run(self, on_frame: Callable[[Frame], None]) -> None: ...

    def stop(self) -> None: ...


# (camera, sample rate in frames per second) -> the camera's frame source
SourceFactory = Callable[[CameraConfig, float], FrameSource]


@dataclass
class ModelHandle:
    name: str
    version_id: str
    provider: str
    kind: str  # detector | pose
    classes: frozenset[str]
    worker: InferenceWorker


@dataclass
class SceneRun:
    """One scene on one camera, with the models it reads and why it may not be running."""

    scene: Scene
    ctx: SceneContext
    model: ModelHandle | None
    pose: ModelHandle | None
    status: str  # "running", or what is missing


@dataclass
class CameraStats:
    frames_analysed: int = 0
    alarms: int = 0
    analyse_s: float = 0.0
    errors: int = 0
    last_error: str | None = None


class CameraRunner:
    """One camera as a two-stage pipeline, so decoding, inference and rules overlap:

    - the source thread decodes, picks the frames some scene is due to analyse and submits them to
      the models' workers (a few frames may be in flight; a full pipeline slows the source down);
    - the camera's rules thread takes the answers in frame order, runs the pose model where a scene
      needs it, applies the scenes and records alarms.
    """

    IN_FLIGHT = 4

    def __init__(
        self,
        camera: CameraConfig,
        runs: list[SceneRun],
        recorder: AlarmRecorder,
        on_alarm: Callable[[str], None] | None = None,
        capture: FrameCapture | None = None,
        clips: ClipRecorder | None = None,
        source_factory: SourceFactory | None = None,
    ) -> None:
        self.camera = camera
        self.runs = runs
        self.recorder = recorder
        self.on_alarm = on_alarm
        self.capture = capture
        rate = max((r.scene.config.rate for r in runs if r.model is not None), default=1.0)
        if capture is not None:  # the source must sample at least as often as frames are captured
            rate = max(rate, 1.0 / capture.interval_s)
        # "auto": keyframes only when every scene samples slowly and the camera's GOP allows it.
        # Alarm clips: the source feeds every encoded packet to a rolling buffer, before any decode.
        # A source from ``source_factory`` (a GB/T 28181 channel) feeds no packet buffer: no clips.
        self.clips = clips
        self.clip_buffer = clips.new_buffer() if clips is not None and source_factory is None else None
        self.source: FrameSource
        if source_factory is None:
            self.source = RtspSource(
                camera.id, camera.url, rate, transport=camera.transport, decode="auto", tap=self.clip_buffer
            )
        else:
            self.source = source_factory(camera, rate)
        self.stats = CameraStats()
        self.latest: Frame | None = None
        self._pending: queue.Queue[Pending | None] = queue.Queue(maxsize=self.IN_FLIGHT)
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        self._rules = threading.Thread(target=self._apply_rules, name=f"rules-{camera.id}", daemon=True)
        self._rules.start()

    @property
    def health(self) -> StreamHealth:
        return self.source.health

    def scene_status(self) -> dict[str, str]:
        return {r.scene.key: r.status for r in self.runs}

    def start(self) -> None:
        if self.clips is not None and self.clip_buffer is not None:
            self.clips.register(self.camera.id, self.clip_buffer)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.source.stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pending.put(None)
        self._rules.join(timeout)
        if self.capture is not None:
            self.capture.close()
        if self.clips is not None and self.clip_buffer is not None:
            self.clips.unregister(self.camera.id, self.clip_buffer)

    def drain(self) -> None:
        """Wait until every submitted frame has been through the rules."""
        self._pending.join()

    def rearm(self, scene_key: str, hold_key: str) -> None:
        for run in self.runs:
            if run.scene.key == scene_key:
                run.scene.rearm(hold_key)

    def _run(self) -> None:
        try:
            self.source.run(self.analyse)
        except Exception as exc:  # never let one camera take the process down
            log.exception("camera %s stopped on an unexpected error", self.camera.id)
            self.source.health.state, self.source.health.last_error = "error", str(exc)

    def analyse(self, frame: Frame) -> None:
        """Stage 1 (source thread): submit the frame to the models its due scenes read."""
        self.latest = frame  # the picture at clear (销警) when a person clears an alarm
        if self.capture is not None:
            self.capture.offer(frame)
        due = [r for r in self.runs if r.model is not None and r.scene.due(frame.ts)]
        if not due:
            return
        for run in due:
            run.scene.last_ts = frame.ts  # claimed now, so the next frame is judged against it
        # One inference per model per frame, shared by every scene on the camera that reads it.
        detectors = {r.model.name: r.model for r in due if r.model is not None}
        futures = {name: h.worker.submit(frame.image) for name, h in detectors.items()}
        self._pending.put(Pending(frame, due, futures, time.perf_counter()))

    def _apply_rules(self) -> None:
        """Stage 2 (rules thread): answers in frame order -> pose -> scenes -> alarms."""
        while True:
            item = self._pending.get()
            try:
                if item is None:
                    return
                self._judge(item)
                self.stats.frames_analysed += 1
                self.stats.analyse_s += time.perf_counter() - item.submitted
                self.stats.last_error = None
            except Exception as exc:  # one bad frame (or a full disk) must not stop the camera
                if str(exc) != self.stats.last_error:
                    log.exception("camera %s: analysing a frame failed", self.camera.id)
                self.stats.last_error = str(exc)
                self.stats.errors += 1
            finally:
                self._pending.task_done()

    def _judge(self, item: Pending) -> None:
        frame = item.frame
        height, width = frame.image.shape[:2]
        detections = {name: fut.result(timeout=60) for name, fut in item.futures.items()}
        people = [d for dets in detections.values() for d in dets if d.label == "person"]
        pose_models = {r.pose.name: r.pose for r in item.due if r.pose is not None}
        pose_futures = {name: h.worker.submit((frame.image, people)) for name, h in pose_models.items()}
        poses = {name: fut.result(timeout=60) for name, fut in pose_futures.items()}
        for run in item.due:
            assert run.model is not None
            events = run.scene.update(
                frame.ts,
                detections[run.model.name],
                width,
                height,
                image=frame.image,
                poses=poses[run.pose.name] if run.pose is not None else (),
            )
            for event in events:
                alarm_id = self.recorder.record(event, frame.image, run.ctx)
                if alarm_id is not None:
                    self.stats.alarms += 1
                    # Queued: written once the post-event seconds are in (no buffer: no clip).
                    if self.clips is not None and self.clip_buffer is not None:
                        self.clips.request(alarm_id, self.camera.id, event.raised_at)
                    if self.on_alarm:
                        self.on_alarm(alarm_id)


@dataclass
class Pending:
    """A frame submitted to its models, waiting for the rules thread."""

    frame: Frame
    due: list[SceneRun]
    futures: dict[str, Future[Any]]
    submitted: float


def _pose_batch(estimator: Any) -> Callable[[Sequence[Any]], list[Any]]:
    """Pose models take (image, person detections); whole-frame ones ignore the people."""

    def run(items: Sequence[tuple[np.ndarray, list[Any]]]) -> list[Any]:
        if isinstance(estimator, BlazePoseLandmarks):
            return [estimator.estimate(image, [d.box for d in people]) for image, people in items]
        return [estimator.estimate(image) for image, _ in items]

    return run


class Analytics:
    """Owns the model workers and camera runners of a running gateway."""

    def __init__(
        self, db: Database, storage_root: Path, recorder: AlarmRecorder, clips: ClipRecorder | None = None
    ) -> None:
        self.db = db
        self.storage_root = storage_root
        self.recorder = recorder
        self.clips = clips  # None: no alarm clips (and no packet buffers)
        self.models: dict[str, ModelHandle] = {}
        self.runners: dict[str, CameraRunner] = {}
        self._lock = threading.Lock()

    def model(self, name: str, kind: str) -> ModelHandle:
        """Load a model once; every scene on every camera that needs it shares the handle."""
        with self._lock:
            handle = self.models.get(name)
            if handle is None:
                path, card, version_id = active_model_dir(self.db, self.storage_root, name)
                if kind == "pose":
                    estimator = load_pose(card, path, threads=1)
                    worker = InferenceWorker(name, _pose_batch(estimator), 1)
                    provider = estimator.provider
                else:
                    detector = load_detector(card, path, threads=1)

                    def detect(images: Sequence[np.ndarray], detector: Any = detector) -> list[Any]:
                        return list(detector.detect(images, conf=DETECTION_FLOOR))

                    worker = InferenceWorker(name, detect, detector.max_batch)
                    provider = detector.provider
                handle = ModelHandle(name, version_id, provider, kind, frozenset(card.classes), worker)
                self.models[name] = handle
            elif handle.kind != kind:
                raise ModelPackError(f"model {name!r} is a {handle.kind} model, not a {kind} model")
            return handle

    def scene_run(self, camera: CameraConfig, scene: Scene, ctx: SceneContext) -> SceneRun:
        if not scene.model_name:
            return SceneRun(scene, ctx, None, None, "model missing: name the model in the scene's `model`")
        try:
            # A version activated for this camera-scene (`vigil models activate --camera`) wins over
            # the model's active version; models are shared per reference.
            model = self.model(self._pinned(ctx.camera_scene_id) or scene.model_name, "detector")
        except (ModelPackError, ValueError) as exc:
            log.warning("camera %s scene %s: %s", camera.id, scene.key, exc)
            return SceneRun(scene, ctx, None, None, f"model missing: {exc}")
        if not scene.wanted_labels() & model.classes:
            wanted = ", ".join(sorted(scene.wanted_labels()))
            return SceneRun(
                scene,
                ctx,
                None,
                None,
                f"model {model.name!r} has none of the classes this scene reads ({wanted})",
            )
        status, pose = "running", None
        if scene.uses_pose:
            try:
                pose = self.model(scene.config.pose_model, "pose")
            except (ModelPackError, ValueError) as exc:
                status = f"running without pose cues ({exc})"
        return SceneRun(scene, ctx, model, pose, status)

    def _pinned(self, camera_scene_id: int | None) -> str | None:
        if camera_scene_id is None:
            return None
        with self.db.session() as s:
            row = s.get(CameraScene, camera_scene_id)
            return row.model_version_id if row is not None else None

    def start_camera(
        self,
        camera: CameraConfig,
        scene_ids: dict[str, int],
        open_keys: set[str],
        on_alarm: Callable[[str], None] | None = None,
        source_factory: SourceFactory | None = None,
    ) -> CameraRunner:
        """Build a camera's scenes (latched where an alarm is still open) and start its thread."""
        runs = []
        for cfg in camera.scenes:
            if not cfg.enabled:
                continue
            scene = build_scene(camera.id, cfg)
            prefix = f"{camera.id}/{scene.key}/"
            for key in open_keys:
                if key.startswith(prefix):
                    scene.latch(key.removeprefix(prefix))
            ctx = SceneContext(
                camera_scene_id=scene_ids.get(cfg.scene),
                tags=cfg.tags.model_dump(exclude_none=True),
                scene_tag=cfg.scene_tag,
                regions=[Region(r.name, r.polygon) for r in cfg.regions],
            )
            runs.append(self.scene_run(camera, scene, ctx))
        capture = None
        if camera.capture_interval_s is not None:
            tags = camera.scenes[0].tags.model_dump(exclude_none=True) if camera.scenes else {}
            capture = FrameCapture(self.db, self.storage_root, camera.id, camera.capture_interval_s, tags)
        runner = CameraRunner(camera, runs, self.recorder, on_alarm, capture, self.clips, source_factory)
        with self._lock:
            old = self.runners.pop(camera.id, None)
        if old is not None:
            old.stop()
        self.runners[camera.id] = runner
        runner.start()
        log.info("camera %s started: %s", camera.id, runner.scene_status())
        return runner

    def latest_image(self, camera_id: str) -> np.ndarray | None:
        runner = self.runners.get(camera_id)
        frame = runner.latest if runner is not None else None
        return frame.image if frame is not None else None

    def rearm(self, camera_id: str, scene: str, hold_key: str) -> None:
        runner = self.runners.get(camera_id)
        if runner is not None:
            runner.rearm(scene, hold_key)

    def stop(self) -> None:
        for runner in list(self.runners.values()):
            runner.source.stop()
        for runner in list(self.runners.values()):
            runner.stop()
        if self.clips is not None:  # after the cameras: their last alarms' clips are written now
            self.clips.close()
        for handle in self.models.values():
            handle.worker.close()
