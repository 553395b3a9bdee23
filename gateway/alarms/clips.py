"""Alarm video clips: the seconds around an alarm, cut from the camera's packet buffer, stored as evidence.

A clip can only be written once its post-event seconds have been received, so a request is queued and a
single worker thread writes it later: camera threads never wait for a muxer or the disk. The MP4 is
stored content-addressed beside the alarm pictures and gets its own Evidence row, in its own transaction
(the alarm itself was committed long before, and must never wait for or depend on its clip).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from adapters.rtsp.clip_buffer import ClipBuffer, ClipError, write_mp4
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Evidence, utcnow

log = logging.getLogger(__name__)

# Packets reach the buffer a little after the wall time they describe: wait this much past the window.
ARRIVAL_SLACK_S = 1.0
# Requests waiting for their post-event seconds; more than this (an alarm storm) are dropped and counted.
MAX_PENDING = 256


@dataclass
class ClipStats:
    written: int = 0
    failed: int = 0
    skipped_disabled: int = 0
    dropped: int = 0  # too many requests waiting
    last_error: str | None = None


@dataclass(order=True)
class _Job:
    due: float  # monotonic time at which the window is complete
    seq: int
    alarm_id: str
    camera_id: str
    start_wall: float
    end_wall: float
    buffer: ClipBuffer


class ClipRecorder:
    """Writes a clip of [t - pre_s, t + post_s] for each alarm; one per gateway, thread-safe.

    ``enabled`` is the switch for the disk-quota policy: while off, requests are counted and skipped.
    Cameras register their buffers; the buffer is bound at request time, so a camera that restarts
    meanwhile still gets the clip from the video it had.
    """

    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        retention_days: int,
        pre_s: float = 5.0,
        post_s: float = 5.0,
        enabled: bool = True,
    ) -> None:
        if pre_s < 0 or post_s < 0:
            raise ValueError("clip pre_s and post_s must not be negative")
        self.db = db
        self.store = store
        self.retention = dt.timedelta(days=retention_days)
        self.pre_s = pre_s
        self.post_s = post_s
        self.enabled = enabled
        self.stats = ClipStats()
        self._buffers: dict[str, ClipBuffer] = {}
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def buffer_seconds(self) -> float:
        """How much video a camera's buffer must hold: the window plus a long GOP and arrival slack."""
        return max(20.0, self.pre_s + self.post_s + 10.0)

    # --- cameras --------------------------------------------------------------------------------------

    def new_buffer(self) -> ClipBuffer:
        return ClipBuffer(max_seconds=self.buffer_seconds)

    def register(self, camera_id: str, buffer: ClipBuffer) -> None:
        with self._cond:
            self._buffers[camera_id] = buffer

    def unregister(self, camera_id: str, buffer: ClipBuffer) -> None:
        """Forget a camera's buffer, unless a restarted runner has registered a newer one."""
        with self._cond:
            if self._buffers.get(camera_id) is buffer:
                del self._buffers[camera_id]

    # --- requests (camera threads) --------------------------------------------------------------------

    def request(self, alarm_id: str, camera_id: str, event_wall_time: float) -> bool:
        """Schedule the clip of an alarm; returns at once. False when it will not be written."""
        with self._cond:
            if not self.enabled:
                self.stats.skipped_disabled += 1
                return False
            buffer = self._buffers.get(camera_id)
            if buffer is None or self._closing:
                why = "shutting down" if self._closing else "no video buffer for the camera"
                self.stats.failed += 1
                self.stats.last_error = f"alarm {alarm_id}: {why}"
                log.warning("clip for alarm %s on camera %s not written: %s", alarm_id, camera_id, why)
                return False
            if len(self._jobs) >= MAX_PENDING:
                self.stats.dropped += 1
                log.warning("clip for alarm %s on camera %s dropped: too many waiting", alarm_id, camera_id)
                return False
            # The remaining post-event seconds, measured on the monotonic clock (wall clocks get stepped).
            wait = max(0.0, event_wall_time + self.post_s - time.time()) + ARRIVAL_SLACK_S
            job = _Job(
                time.monotonic() + wait,
                next(self._seq),
                alarm_id,
                camera_id,
                event_wall_time - self.pre_s,
                event_wall_time + self.post_s,
                buffer,
            )
            heapq.heappush(self._jobs, job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="clip-writer", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs)

    def close(self, timeout: float = 30.0) -> None:
        """Write the waiting clips now, with the video there is, and stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def store_clip(self, alarm_id: str, data: bytes) -> None:
        """Keep an MP4 clip as the alarm's evidence (also for clips cut on an analysis node)."""
        digest, rel, _ = self.store.put(data, "mp4")
        now = utcnow()
        with self.db.session() as s:
            s.add(
                Evidence(
                    alarm_id=alarm_id,
                    kind="clip",
                    sha256=digest,
                    path=rel,
                    media_type="video/mp4",
                    size=len(data),
                    created_at=now,
                    retain_until=now + self.retention,
                )
            )

    # --- the worker -----------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._jobs:
                        if self._closing:
                            return
                        self._cond.wait()
                        continue
                    wait = self._jobs[0].due - time.monotonic()
                    if wait <= 0 or self._closing:
                        job = heapq.heappop(self._jobs)
                        break
                    self._cond.wait(wait)
            self._write(job)

    def _write(self, job: _Job) -> None:
        try:
            params, packets = job.buffer.clip(job.start_wall, job.end_wall)
            if params is None:
                raise ClipError("the camera stream never opened")
            with tempfile.TemporaryDirectory(dir=self.store.root, prefix=".clip-") as tmp:
                path = Path(tmp) / "clip.mp4"
                duration = write_mp4(packets, params, path)
                data = path.read_bytes()
            self.store_clip(job.alarm_id, data)
        except Exception as exc:  # a lost clip is logged and counted; the alarm stands without it
            with self._cond:
                self.stats.failed += 1
                self.stats.last_error = f"alarm {job.alarm_id}: {exc}"
            log.warning(
                "clip for alarm %s on camera %s failed: %s",
                job.alarm_id,
                job.camera_id,
                exc,
                exc_info=not isinstance(exc, ClipError),  # a bug, not just missing video: keep the trace
            )
            return
        with self._cond:
            self.stats.written += 1
        log.info("clip for alarm %s on camera %s: %.1f s", job.alarm_id, job.camera_id, duration)
