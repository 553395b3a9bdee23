"""Frame capture for the sample library: every N seconds (by frame time) a camera frame is saved as a JPEG
and catalogued as a `Sample` with origin "capture".

``offer()`` runs on the camera's source thread for every sampled frame, so it only compares timestamps and
hands a due frame to the capture's own thread through a small bounded queue; when the disk or the
database is slow the queue fills and frames are dropped (and counted) rather than slowing the camera.
Encoding, the content-addressed write and the row's short transaction all happen on that thread, and a
failure there is counted, never raised into the camera.

The same image (same JPEG bytes: a frozen or test-pattern stream) is stored once and catalogued once: a
capture whose bytes are already in the library, from any origin, adds no row and counts as a duplicate,
so a stuck camera cannot flood the training set with copies of one picture.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters import Frame
from gateway.alarms.recorder import jpeg
from gateway.db import Database
from gateway.db.files import SampleStore
from gateway.db.schema import Sample
from gateway.ids import new_ulid

log = logging.getLogger(__name__)

JPEG_QUALITY = 90


class FrameCapture:
    """Saves one frame of a camera every ``interval_s`` seconds of frame time to the sample library."""

    QUEUE = 4

    def __init__(
        self,
        db: Database,
        store_root: Path,
        camera_id: str,
        interval_s: float,
        tags: dict[str, Any] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.db = db
        self.store = SampleStore(store_root)
        self.camera_id = camera_id
        self.interval_s = interval_s
        self.tags = dict(tags or {})
        # Frames are sampled by the source with some jitter in their timestamps: a frame this early is
        # still taken for its slot. Slots follow a fixed grid, so captures do not drift on a fast stream.
        self._slack = min(0.1 * interval_s, 0.5)
        self._next_due: float | None = None
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=self.QUEUE)
        self._closed = False
        self.captured = 0
        self.dropped = 0
        self.duplicates = 0
        self.errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{camera_id}", daemon=True)
        self._thread.start()

    def offer(self, frame: Frame) -> bool:
        """Take the frame if its slot is due (camera thread, never blocks); True when it was queued."""
        if self._closed:
            return False
        ts, due = frame.ts, self._next_due
        if due is not None and due - 2 * self.interval_s <= ts < due - self._slack:
            return False  # not due yet (a clock that went back more than an interval starts again)
        if due is not None and due - self._slack <= ts < due + self.interval_s:
            self._next_due = due + self.interval_s
        else:  # the first frame, or after a gap / a clock reset: the grid restarts at this frame
            self._next_due = ts + self.interval_s
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def drain(self) -> None:
        """Wait until every queued frame has been saved (or has failed)."""
        self._queue.join()

    def close(self, timeout: float = 10.0) -> None:
        """Save what is queued, then stop the thread."""
        self._closed = True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("camera %s: frame capture did not drain within %.0f s", self.camera_id, timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            try:
                if frame is None:
                    return
                self._save(frame)
                self.last_error = None
            except Exception as exc:  # a full disk or a broken database must not stop the camera
                if str(exc) != self.last_error:
                    log.warning("camera %s: saving a captured frame failed: %s", self.camera_id, exc)
                self.last_error = str(exc)
                self.errors += 1
            finally:
                self._queue.task_done()

    def _save(self, frame: Frame) -> None:
        height, width = frame.image.shape[:2]
        digest, rel, written = self.store.put(jpeg(frame.image, JPEG_QUALITY), "jpg")
        taken = dt.datetime.fromtimestamp(frame.ts, dt.UTC)
        try:
            with self.db.session() as s:
                if s.scalar(select(Sample.id).where(Sample.sha256 == digest).limit(1)) is not None:
                    self.duplicates += 1
                    return
                s.add(
                    Sample(
                        id=new_ulid(frame.ts),
                        sha256=digest,
                        path=rel,
                        width=width,
                        height=height,
                        origin="capture",
                        camera_id=self.camera_id,
                        tags=dict(self.tags),
                        labels=[],
                        created_at=taken,
                        updated_at=taken,
                    )
                )
        except BaseException:
            if written:  # no row will name the file: do not leave it behind
                self.store.remove(rel)
            raise
        self.captured += 1
