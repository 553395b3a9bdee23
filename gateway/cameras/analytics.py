"""Wires sources to the per-frame analysis (analyzers.pipeline) to the alarm recorder: one thread per
camera, one inference worker per model.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from adapters import Frame, RtspSource, StreamHealth
from analyzers import Region, Scene, build_scene, crops, pipeline
from analyzers.detectors import ImageClassifier, InputSize, load_detector
from analyzers.pose import load_pose
from analyzers.runtime import InferenceWorker, ModelCard
from analyzers.scenes.base import DETECTION_FLOOR
from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import AlarmRecorder, SceneContext
from gateway.cameras.capture import FrameCapture
from gateway.cameras.plant_context import CameraContext, PlantContext
from gateway.config.schema import CameraConfig
from gateway.db import Database
from gateway.db.schema import CameraScene
from gateway.models.pack import ModelPackError, active_model_dir

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    """What a camera runner reads: ``RtspSource``, or ``GbMediaSource`` for a GB/T 28181 channel."""

    health: StreamHealth

    def run(self, on_frame: Callable[[Frame], None]) -> None: ...

    def stop(self) -> None: ...


# (camera, sample rate in frames per second) -> the camera's frame source
SourceFactory = Callable[[CameraConfig, float], FrameSource]

# A scene's `input_size` setting (analyzers/scenes/settings.py SceneConfig).
SceneInputSize = Literal["auto", "card"] | tuple[int, int]


def detector_input(card: ModelCard, setting: SceneInputSize) -> InputSize:
    """What a scene's ``input_size`` asks of ``load_detector`` for this card (None = the card's size):
    "auto" is aspect-matched only on YOLOX cards with ``dynamic_size``; an explicit size other than the
    card's goes through, so that a model which cannot take it refuses it with the reason."""
    if isinstance(setting, tuple):
        return None if setting == card.input.size else setting
    if setting == "auto" and card.family == "yolox" and card.dynamic_size:
        return "auto"
    return None


def size_label(card: ModelCard, size: InputSize) -> str:
    """ "auto", or the input "WxH" a detector runs at."""
    if size == "auto":
        return "auto"
    width, height = size if isinstance(size, tuple) else card.input.size
    return f"{width}x{height}"


@dataclass
class ModelHandle:
    name: str
    version_id: str
    provider: str
    kind: str  # detector | pose | classifier
    classes: frozenset[str]
    worker: InferenceWorker
    crop: str | None = None  # classifier cards: the part the card says it was trained on
    input_size: str | None = None  # detectors: "auto" (aspect-matched per frame) or the "WxH" they run at
    key: str = ""  # its key in Analytics.models: the name, plus "[WxH]" when not at the size "auto" gives
    thresholds: dict[str, float] = field(default_factory=dict)  # the card's per-class thresholds

    def __post_init__(self) -> None:
        self.key = self.key or self.name


@dataclass
class SceneRun:
    """One scene on one camera, with the models it reads and why it may not be running."""

    scene: Scene
    ctx: SceneContext
    model: ModelHandle | None  # what the frame goes to first: a detector, or a classifier of the frame
    pose: ModelHandle | None
    status: str  # "running", or what is missing
    classifier: ModelHandle | None = None  # a classifier card run on the people ``model`` finds
    extras: list[ModelHandle] = field(default_factory=list)  # detectors merged with ``model``'s answer
    crop: str | None = None  # the part a classifier card looks at (analyzers.crops)

    @property
    def first_key(self) -> str:
        """The key of the first-stage answer this scene reads (shared by the scenes that ask alike)."""
        return pipeline.first_key(self)


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
        self.context: CameraContext | None = None  # diagnosis, PTZ/unit gating, enhancement
        self._pending: queue.Queue[Pending | None] = queue.Queue(maxsize=self.IN_FLIGHT)
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        self._rules = threading.Thread(target=self._apply_rules, name=f"rules-{camera.id}", daemon=True)
        self._rules.start()

    @property
    def health(self) -> StreamHealth:
        return self.source.health

    def scene_status(self) -> dict[str, str]:
        # a running scene may still wait for something it reads at run time (an enrolment)
        status = {
            r.scene.key: (r.status == "running" and r.scene.waiting_for()) or r.status for r in self.runs
        }
        context = self.context  # PTZ or unit state may pause or qualify a scene
        return {k: context.status(k, v) for k, v in status.items()} if context is not None else status

    def start(self) -> None:
        if self.clips is not None and self.clip_buffer is not None:
            self.clips.register(self.camera.id, self.clip_buffer)
        self._thread.start()

    def alive(self) -> bool:
        """Whether the source thread still runs (a played GB channel's media session ended when not)."""
        return self._thread.is_alive()

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
        context = self.context
        if context is not None:
            context.offer(frame)
        due = [r for r in self.runs if r.model is not None and r.scene.due(frame.ts)]
        if context is not None:
            due = [r for r in due if context.runnable(r, frame.ts)]
        if not due:
            return
        for run in due:
            run.scene.last_ts = frame.ts  # claimed now, so the next frame is judged against it
        image = context.image(frame) if context is not None else frame.image
        futures = pipeline.submit(due, image)  # one inference per model per frame
        self._pending.put(Pending(frame, due, futures, time.perf_counter(), image))

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
        frame, context = item.frame, self.context
        image = item.image if item.image is not None else frame.image
        if context is not None:
            context.on_state_change(self.runs)
        for run, events in pipeline.judge(frame.ts, image, item.due, item.futures):
            for event in events:
                ctx = context.alarm_context(run, event) if context is not None else run.ctx
                if ctx is None:  # suppressed by the unit's run state (audited)
                    continue
                evidence = context.evidence(frame, image) if context is not None else frame.image
                alarm_id = self.recorder.record(event, evidence, ctx)
                if alarm_id is not None:
                    self.stats.alarms += 1
                    # Queued: written once the post-event seconds are in (no buffer or not wanted: no clip).
                    if self.clips is not None and self.clip_buffer is not None:
                        if self.recorder.wants_clip(event.scene):
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
    image: np.ndarray | None = None  # what the models saw (enhanced), when not the frame itself


def load_model(
    name: str,
    key: str,
    kind: str,
    path: Path,
    card: ModelCard,
    version_id: str,
    size: InputSize,
    label: str,
) -> ModelHandle:
    """Load one model with its inference worker (``kind``: detector, pose; a classifier card asked
    for as a detector becomes a classifier)."""
    input_label: str | None = None
    if kind == "pose":
        estimator = load_pose(card, path, threads=1)
        worker = InferenceWorker(key, pipeline.pose_batch(estimator), 1)
        provider = estimator.provider
    elif card.family == "classifier":  # asked for as a scene's model: a second stage
        kind = "classifier"
        classifier = ImageClassifier(card, path, threads=1)
        worker = InferenceWorker(key, pipeline.classifier_batch(classifier), 8)
        provider = classifier.provider
    else:
        detector = load_detector(card, path, threads=1, input_size=size)

        def detect(images: Sequence[np.ndarray], detector: Any = detector) -> list[Any]:
            return list(detector.detect(images, conf=DETECTION_FLOOR))

        worker = InferenceWorker(key, detect, detector.max_batch)
        provider = detector.provider
        input_label = label
    return ModelHandle(
        name,
        version_id,
        provider,
        kind,
        frozenset(card.classes),
        worker,
        card.crop,
        input_label,
        key,
        dict(card.thresholds),
    )


class Analytics:
    """Owns the model workers and camera runners of a running gateway."""

    def __init__(
        self, db: Database, storage_root: Path, recorder: AlarmRecorder, clips: ClipRecorder | None = None
    ) -> None:
        self.db = db
        self.storage_root = storage_root
        self.recorder = recorder
        self.clips = clips  # None: no alarm clips (and no packet buffers)
        # Keyed by model reference, plus "[size]" for a detector run at another input size than the
        # scene default ("auto") gives: e.g. "yolox_nano" and "yolox_nano[416x416]".
        self.models: dict[str, ModelHandle] = {}
        self._keys: dict[tuple[str, str], str] = {}  # (reference, asked input size) -> key in models
        self.runners: dict[str, CameraRunner] = {}
        self.plant: PlantContext | None = None  # video diagnosis, PTZ/unit gating, enhancement
        # Called (camera id, runner) from start_camera before the new runner reads a packet, e.g. so a
        # GB/T 28181 relay moves to the new runner's packet feed.
        self.runner_listeners: list[Callable[[str, CameraRunner], None]] = []
        self._lock = threading.Lock()

    def model(self, name: str, kind: str, input_size: SceneInputSize = "auto") -> ModelHandle:
        """Load a model once per (reference, input size); every scene on every camera that asks alike
        shares the handle (and its worker). ``input_size``: a scene's setting, for detectors only."""
        with self._lock:
            asked = (name, input_size if isinstance(input_size, str) else "x".join(map(str, input_size)))
            handle = self.models.get(self._keys.get(asked, ""))
            if handle is None:
                path, card, version_id = self._resolve(name)
                size = detector_input(card, input_size)
                label = size_label(card, size)
                key = name if label == size_label(card, detector_input(card, "auto")) else f"{name}[{label}]"
                handle = self.models.get(key)
                if handle is None:
                    handle = self._load(name, key, kind, path, card, version_id, size, label)
                    self.models[key] = handle
                self._keys[asked] = key
            if handle.kind != kind and not (kind == "detector" and handle.kind == "classifier"):
                raise ModelPackError(f"model {name!r} is a {handle.kind} model, not a {kind} model")
            return handle

    def _resolve(self, ref: str) -> tuple[Path, ModelCard, str]:
        """The model a reference names: (directory, card, version id)."""
        return active_model_dir(self.db, self.storage_root, ref)

    def _load(
        self,
        name: str,
        key: str,
        kind: str,
        path: Path,
        card: ModelCard,
        version_id: str,
        size: InputSize,
        label: str,
    ) -> ModelHandle:
        return load_model(name, key, kind, path, card, version_id, size, label)

    def scene_run(self, camera: CameraConfig, scene: Scene, ctx: SceneContext) -> SceneRun:
        if not scene.model_name:
            return SceneRun(scene, ctx, None, None, "model missing: name the model in the scene's `model`")
        try:
            # A version activated for this camera-scene (`vigil models activate --camera`) wins over
            # the model's active version; models are shared per reference and input size.
            model = self.model(
                self._pinned(ctx.camera_scene_id) or scene.model_name, "detector", scene.config.input_size
            )
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
        if model.kind == "classifier":
            return self._classifier_run(camera, scene, ctx, model, pose, status)
        extras = []
        for name in scene.extra_models:
            try:
                extras.append(self.model(name, "detector", scene.config.input_size))
            except (ModelPackError, ValueError) as exc:
                log.warning("camera %s scene %s: %s", camera.id, scene.key, exc)
                return SceneRun(scene, ctx, None, None, f"model missing: {exc}")
        for handle in (model, *extras):
            scene.use_card_thresholds(handle.thresholds)
        return SceneRun(scene, ctx, model, pose, status, extras=extras)

    def _classifier_run(
        self,
        camera: CameraConfig,
        scene: Scene,
        ctx: SceneContext,
        classifier: ModelHandle,
        pose: ModelHandle | None,
        status: str,
    ) -> SceneRun:
        """A classifier card: of the whole frame (flame, smoke, extinguisher windows) it is the first
        stage; of people's parts (helmet, workwear, smoking) the person model finds the people first."""
        crop = classifier.crop or scene.classifier_crop
        if crop is None:
            return SceneRun(
                scene,
                ctx,
                None,
                None,
                f"model {classifier.name!r} is a classifier and scene {scene.key!r} names no part to "
                "classify; use a detector, or a card with `crop`",
            )
        if crop in crops.PEOPLE_FREE:
            return SceneRun(scene, ctx, classifier, pose, status, crop=crop)
        try:
            people = self.model(scene.person_model, "detector", scene.config.input_size)
            if people.kind != "detector" or "person" not in people.classes:
                raise ModelPackError(f"model {people.name!r} is not a person detector")
        except (ModelPackError, ValueError) as exc:
            log.warning("camera %s scene %s: %s", camera.id, scene.key, exc)
            return SceneRun(scene, ctx, None, None, f"model missing: the person detector ({exc})")
        return SceneRun(scene, ctx, people, pose, status, classifier=classifier, crop=crop)

    def _pinned(self, camera_scene_id: int | None) -> str | None:
        if camera_scene_id is None:
            return None
        with self.db.session() as s:
            row = s.get(CameraScene, camera_scene_id)
            return row.model_version_id if row is not None else None

    def pop_runner(self, camera_id: str) -> CameraRunner | None:
        """Take a camera's runner out of the running set (the caller stops it)."""
        if self.plant is not None:
            self.plant.forget(camera_id)
        with self._lock:
            return self.runners.pop(camera_id, None)

    def scene_runs(
        self, camera: CameraConfig, scene_ids: dict[str, int], open_keys: set[str]
    ) -> list[SceneRun]:
        """A camera's enabled scenes with their models, latched where an alarm is still open."""
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
        return runs

    def start_camera(
        self,
        camera: CameraConfig,
        scene_ids: dict[str, int],
        open_keys: set[str],
        on_alarm: Callable[[str], None] | None = None,
        source_factory: SourceFactory | None = None,
    ) -> CameraRunner:
        """Build a camera's scenes (latched where an alarm is still open) and start its thread."""
        runs = self.scene_runs(camera, scene_ids, open_keys)
        capture = None
        if camera.capture_interval_s is not None:
            tags = camera.scenes[0].tags.model_dump(exclude_none=True) if camera.scenes else {}
            capture = FrameCapture(self.db, self.storage_root, camera.id, camera.capture_interval_s, tags)
        runner = CameraRunner(camera, runs, self.recorder, on_alarm, capture, self.clips, source_factory)
        if isinstance(runner.source, RtspSource):
            from adapters.rtsp.packet_feed import PacketFeed

            # Live access units for GB/T 28181 relays to superiors; the clip buffer stays the inner tap.
            runner.source.tap = PacketFeed(camera.id, runner.source.tap)
        old = self.pop_runner(camera.id)
        if old is not None:
            old.stop()
        if self.plant is not None:
            runner.context = self.plant.context_for(camera)
        self.runners[camera.id] = runner
        for listener in list(self.runner_listeners):
            try:
                listener(camera.id, runner)
            except Exception:  # a listener must not keep the camera from starting
                log.exception("camera %s: runner listener failed", camera.id)
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
        if self.plant is not None:
            self.plant.stop()
        if self.clips is not None:  # after the cameras: their last alarms' clips are written now
            self.clips.close()
        for handle in self.models.values():
            handle.worker.close()
