"""Offline video analysis: a file through a camera's scenes and models, as fast as it decodes.

The frames go through a CameraRunner built like a live camera's (same scenes, same shared model workers),
but fed from a FileSource (adapters/file/source.py: the decoding) instead of its source thread: timestamps
are ``start`` + stream time, the file is read once (no looping, no pacing), and the alarms carry video
times (``occurred_at``/``raised_at``) and ``video_ts`` (seconds into the video). This is also the engine
of history replay (``offset_s`` and ``max_seconds`` cut the part of a video inside a time range; ``model``
runs a chosen model version).

Jobs (uploads, history replays) run one at a time on a worker thread, one registry per Gateway object;
gateway/videos/library.py stores them (and the videos) in the database, so they outlive a restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import av

from adapters.file import source as file_source
from adapters.file.source import FileSource, FileSourceError
from analyzers import Region, SceneConfig
from analyzers.scenes import build_scene
from gateway.alarms.recorder import AlarmRecorder, SceneContext, VideoOrigin
from gateway.cameras.analytics import Analytics, CameraRunner, SceneRun
from gateway.cameras.capture import FrameCapture
from gateway.cameras.registry import camera_config, upsert_camera
from gateway.config.schema import CameraConfig, GatewayConfig
from gateway.db import Database
from gateway.db.schema import Camera
from gateway.ids import new_ulid
from gateway.times import as_utc

log = logging.getLogger(__name__)


class Host(Protocol):
    """What offline video needs of the gateway (gateway/app.py): its configuration, database, camera
    analysis and alarm recorder."""

    config: GatewayConfig
    db: Database
    analytics: Analytics
    recorder: AlarmRecorder


Progress = Callable[[int, int | None], None]  # (frames decoded, total frames or None)


class VideoImportError(Exception):
    """The video cannot be analysed (not a video, no frames, unknown camera, no runnable scene)."""


class UnknownCameraError(VideoImportError):
    pass


class CancelledError(VideoImportError):
    pass


@dataclass
class VideoJobResult:
    job_id: str
    camera_id: str
    start: dt.datetime
    frames: int  # decoded
    analysed: int  # run through the scenes
    total: int | None  # expected frames, from the container
    duration_s: float  # video seconds covered
    elapsed_s: float
    alarm_ids: list[str]
    errors: int
    scene_status: dict[str, str]
    model_versions: dict[str, str] = field(default_factory=dict)  # scene -> the model version it read

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


def find_camera(gateway: Host, camera_id: str) -> CameraConfig | None:
    """The camera's configuration (configured or stored), or None; writes nothing."""
    for cam in gateway.config.cameras:
        if cam.id == camera_id:
            return cam
    with gateway.db.session() as s:
        row = s.get(Camera, camera_id)
        return camera_config(row) if row is not None else None


def resolve_camera(gateway: Host, camera_id: str) -> tuple[CameraConfig, dict[str, int]]:
    """The camera and its scene task ids; a configured camera not yet in the database is stored."""
    configured = next((c for c in gateway.config.cameras if c.id == camera_id), None)
    with gateway.db.session() as s:
        row = s.get(Camera, camera_id)
        if configured is not None:
            if row is None:
                return configured, upsert_camera(s, configured, origin="config")
            return configured, {t.scene: t.id for t in row.tasks}
        if row is None:
            raise UnknownCameraError(
                f"unknown camera {camera_id!r}: configure it or add it (POST /api/cameras) first"
            )
        return camera_config(row), {t.scene: t.id for t in row.tasks}


def open_video(path: Path) -> av.container.InputContainer:
    """Open a file and check it holds a video stream FFmpeg decodes (adapters/file/source.py)."""
    try:
        return file_source.open_video(path)
    except FileSourceError as exc:
        raise VideoImportError(str(exc)) from exc


def build_runs(
    gateway: Host,
    camera: CameraConfig,
    scene_ids: dict[str, int],
    video: VideoOrigin,
    pinned: bool = True,
) -> list[SceneRun]:
    """The camera's enabled scenes as Analytics.start_camera builds them, fresh (nothing latched).

    ``pinned=False``: the scenes' own ``model`` wins over a version pinned to the camera-scene (a model
    chosen for this analysis, e.g. a history replay with an older version)."""
    runs = []
    for cfg in camera.scenes:
        if not cfg.enabled:
            continue
        scene = build_scene(camera.id, cfg)
        ctx = SceneContext(
            camera_scene_id=scene_ids.get(cfg.scene),
            tags=cfg.tags.model_dump(exclude_none=True),
            scene_tag=cfg.scene_tag,
            regions=[Region(r.name, r.polygon) for r in cfg.regions],
            video=video,
        )
        if pinned:
            runs.append(gateway.analytics.scene_run(camera, scene, ctx))
            continue
        run = gateway.analytics.scene_run(camera, scene, replace(ctx, camera_scene_id=None))
        run.ctx = ctx  # the alarms still name their camera-scene
        runs.append(run)
    return runs


def analyse_video(
    gateway: Host,
    path: Path,
    camera_id: str,
    start: dt.datetime,
    scenes: list[SceneConfig] | None = None,
    progress: Progress | None = None,
    max_seconds: float | None = None,
    job_id: str | None = None,
    stop: threading.Event | None = None,
    capture_interval_s: float | None = None,
    offset_s: float = 0.0,
    model: str | None = None,
) -> VideoJobResult:
    """Analyse a video file once, as fast as it decodes; ``scenes`` replaces the camera's scenes.

    Frame times are ``start`` + stream time (the first frame at ``start``); ``max_seconds`` ends the
    analysis that far into the video, ``offset_s`` starts it that far in (a seek to the keyframe
    before, then the frames before the offset are decoded but not analysed). ``model`` (NAME,
    VERSION_ID or NAME@VERSION_ID) is read by every scene instead of its own or a pinned version.
    Raises VideoImportError (nothing stored) for a file that is not a video, an unknown camera or when
    no scene can run.
    """
    path = Path(path)
    job_id = job_id or new_ulid()
    started = time.perf_counter()
    try:
        source = FileSource(path, camera_id, as_utc(start).timestamp(), None, offset_s, max_seconds)
    except FileSourceError as exc:
        raise VideoImportError(str(exc)) from exc
    try:
        camera, scene_ids = resolve_camera(gateway, camera_id)
        if scenes is not None:
            camera = camera.model_copy(update={"scenes": list(scenes)})
        if model:
            camera = camera.model_copy(
                update={"scenes": [s.model_copy(update={"model": model}) for s in camera.scenes]}
            )
        start = as_utc(start)
        origin = VideoOrigin(job_id, start.timestamp())
        runs = build_runs(gateway, camera, scene_ids, origin, pinned=not model)
        if not any(r.model is not None for r in runs):
            why = "; ".join(f"{r.scene.key}: {r.status}" for r in runs) or "the camera has no enabled scene"
            raise VideoImportError(f"no scene can run on camera {camera_id}: {why}")
        alarm_ids: list[str] = []
        # Optionally one frame every N s of video to the sample library, stamped with its video time.
        capture = (
            FrameCapture(
                gateway.db,
                gateway.config.storage.root,
                camera.id,
                capture_interval_s,
                camera.scenes[0].tags.model_dump(exclude_none=True) if camera.scenes else {},
            )
            if capture_interval_s
            else None
        )
        runner = CameraRunner(camera, runs, gateway.recorder, on_alarm=alarm_ids.append, capture=capture)
        try:
            frames, end = _feed(source, runner, progress, stop)
            runner.drain()
        finally:
            runner.stop()
        if runner.stats.errors and not runner.stats.frames_analysed:
            raise VideoImportError(f"analysis failed: {runner.stats.last_error}")
        return VideoJobResult(
            job_id=job_id,
            camera_id=camera_id,
            start=start,
            frames=frames,
            analysed=runner.stats.frames_analysed,
            total=source.total_frames,
            duration_s=round(end - offset_s, 3),
            elapsed_s=time.perf_counter() - started,
            alarm_ids=alarm_ids,
            errors=runner.stats.errors,
            scene_status=runner.scene_status(),
            model_versions={r.scene.key: r.model.version_id for r in runs if r.model is not None},
        )
    finally:
        source.close()


def _feed(
    source: FileSource, runner: CameraRunner, progress: Progress | None, stop: threading.Event | None
) -> tuple[int, float]:
    """Hand the frames some scene is due to analyse to the runner's first stage.

    Returns the frames decoded from the source's offset on and where (seconds into the video) they end."""
    total = source.total_frames
    runs = [r for r in runner.runs if r.model is not None]

    def decoded(frames: int) -> None:
        if progress is not None:
            progress(frames, total)

    try:
        for frame in source.frames(lambda ts: any(r.scene.due(ts) for r in runs), decoded, stop):
            runner.analyse(frame)
    except FileSourceError as exc:
        raise VideoImportError(str(exc)) from exc
    if source.cancelled:
        raise CancelledError("cancelled")
    return source.decoded, source.end_s


# --- jobs ---------------------------------------------------------------------------------------------


@dataclass
class VideoJob:
    id: str
    camera_id: str
    path: Path | None
    start: dt.datetime
    scenes: list[SceneConfig] | None = None
    delete_after: bool = False  # a file outside the library is removed once analysed
    status: str = "queued"  # queued | running | done | failed | cancelled
    frames: int = 0
    total: int | None = None
    alarm_ids: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: VideoJobResult | None = None
    kind: str = "upload"  # upload | replay
    model: str | None = None  # NAME, VERSION_ID or NAME@VERSION_ID read instead of the scenes' own
    video_id: str | None = None  # the library video an upload job analyses
    created_by: str = ""
    # A replay runs this (over many videos) instead of one file's analysis; it updates frames/total.
    work: Callable[[VideoJob], None] | None = field(default=None, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def progress(self) -> float:
        if self.status == "done":
            return 1.0
        if not self.total:
            return 0.0
        return round(min(1.0, self.frames / self.total), 4)

    def as_json(self) -> dict[str, Any]:
        def iso(ts: float | None) -> str | None:
            return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat() if ts is not None else None

        return {
            "id": self.id,
            "kind": self.kind,
            "camera_id": self.camera_id,
            "video_id": self.video_id,
            "start": self.start.isoformat(),
            "status": self.status,
            "progress": self.progress,
            "frames": self.frames,
            "total_frames": self.total,
            "model": self.model,
            "alarms": list(self.alarm_ids),
            "error": self.error,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }


INTERRUPTED = "interrupted by a restart; submit the job again"
SAVE_EVERY_S = 2.0  # progress reaches the database this often (the API reads live jobs from memory)


class VideoJobs:
    """Offline analysis jobs of one gateway, run one at a time on a worker thread.

    The last KEEP jobs stay in memory; ``saved`` and ``load`` are the persistence hooks (no-ops here,
    gateway/videos/library.py stores the jobs in the database).
    """

    KEEP = 200

    def __init__(self, gateway: Host) -> None:
        self.gateway = gateway
        self._jobs: dict[str, VideoJob] = {}
        self._queue: queue.Queue[VideoJob] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def live(self, job_id: str) -> VideoJob | None:
        """The job as this process holds it in memory (None: not run here, or forgotten)."""
        return self._jobs.get(job_id)

    @property
    def stopping(self) -> bool:
        """The registry is shutting down (a job cancelled now failed; it was not cancelled by a user)."""
        return self._stop.is_set()

    def saved(self, job: VideoJob) -> None:
        """Called on every change of a job's state, and every SAVE_EVERY_S while it runs."""

    def load(self, job_id: str) -> VideoJob | None:
        """A job not (or no longer) in memory."""
        return None

    def submit(
        self,
        path: Path | None,
        camera_id: str,
        start: dt.datetime,
        scenes: list[SceneConfig] | None = None,
        delete_after: bool = False,
        **extra: Any,
    ) -> VideoJob:
        job = VideoJob(new_ulid(), camera_id, path, as_utc(start), scenes, delete_after, **extra)
        return self.enqueue(job)

    def enqueue(self, job: VideoJob) -> VideoJob:
        self.saved(job)
        with self._lock:
            self._jobs[job.id] = job
            for old in list(self._jobs)[: max(0, len(self._jobs) - self.KEEP)]:
                if self._jobs[old].status in ("done", "failed", "cancelled"):
                    del self._jobs[old]
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="video-jobs", daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> VideoJob | None:
        return self._jobs.get(job_id) or self.load(job_id)

    def cancel(self, job_id: str) -> VideoJob | None:
        """Ask a queued or running job of this process to end; None when it is not one."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status not in ("queued", "running"):
                return None
            job.cancel.set()
            queued = job.status == "queued"
            if queued:  # never started: cancelled at once (the worker skips it)
                job.status, job.finished_at = "cancelled", time.time()
        if queued:
            self.saved(job)
        return job

    def running(self) -> list[VideoJob]:
        return [j for j in list(self._jobs.values()) if j.status in ("queued", "running")]

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the running job to end, and wait (briefly) until it has."""
        self._stop.set()
        with self._lock:  # queued jobs fail now: the worker may never reach them
            waiting = [j for j in self._jobs.values() if j.status == "queued"]
            for job in waiting:
                job.status, job.error, job.finished_at = "failed", INTERRUPTED, time.time()
            for job in self._jobs.values():
                job.cancel.set()
        for job in waiting:
            try:
                self.saved(job)
            except Exception:
                log.exception("video job %s: could not store its state", job.id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(j.status == "running" for j in self._jobs.values()):
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._execute(job)
            finally:
                self._queue.task_done()

    def _execute(self, job: VideoJob) -> None:
        with self._lock:
            if job.status != "queued":  # failed before it could run (not a video), cancelled, stopped
                return
            job.status, job.started_at = "running", time.time()
        last_save = time.monotonic()

        def progress(done: int, total: int | None) -> None:
            nonlocal last_save
            job.frames, job.total = done, total
            if time.monotonic() - last_save >= SAVE_EVERY_S:
                last_save = time.monotonic()
                self.saved(job)

        try:
            if job.cancel.is_set():
                raise CancelledError("cancelled")
            self.saved(job)
            if job.work is not None:
                job.work(job)
            else:
                assert job.path is not None
                result = analyse_video(
                    self.gateway,
                    job.path,
                    job.camera_id,
                    job.start,
                    job.scenes,
                    progress=progress,
                    job_id=job.id,
                    stop=job.cancel,
                    model=job.model,
                )
                job.result, job.frames, job.alarm_ids = result, result.frames, result.alarm_ids
                job.total = job.total or result.frames
            job.status = "done"
        except CancelledError:
            # A shutdown fails the job (it may be submitted again); a person's cancel is a cancel.
            job.status, job.error = ("failed", INTERRUPTED) if self._stop.is_set() else ("cancelled", None)
        except VideoImportError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # a job must never take the worker down
            log.exception("video job %s failed", job.id)
            job.status, job.error = "failed", f"internal error: {exc}"
        finally:
            job.finished_at = time.time()
            if job.delete_after and job.path is not None:
                job.path.unlink(missing_ok=True)
            try:
                self.saved(job)
            except Exception:
                log.exception("video job %s: could not store its result", job.id)
        log.info("video job %s %s: %d frames, %d alarms", job.id, job.status, job.frames, len(job.alarm_ids))
