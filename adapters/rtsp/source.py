"""RTSP (and file) ingest with PyAV: reconnect with backoff, stall detection, per-rate sampling.

Runs in its own thread; PyAV releases the GIL while it decodes, so many cameras share a process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import av.error
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from adapters.frames import Frame, StreamHealth
from adapters.redact import redact_text, redact_url

log = logging.getLogger(__name__)


class StreamError(RuntimeError):
    """The stream could not be opened, broke, stalled or ended; the source reconnects."""


class RtspSource:
    """Decodes a stream and hands sampled frames to ``on_frame`` until ``stop()``."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        sample_fps: float,
        transport: str = "tcp",
        open_timeout_s: float = 10.0,
        stall_timeout_s: float = 5.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.camera_id = camera_id
        self.url = url
        self.sample_fps = sample_fps
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_backoff_s = max_backoff_s
        self.health = StreamHealth()
        self._stop = threading.Event()

    @property
    def is_file(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_frame: Callable[[Frame], None]) -> None:
        """Stream until stopped, reconnecting after every failure with exponential backoff."""
        while not self._stop.is_set():
            retry = Retrying(
                retry=retry_if_exception_type(StreamError),
                wait=wait_exponential_jitter(initial=1.0, max=self.max_backoff_s, jitter=1.0),
                sleep=self._sleep,
                before_sleep=self._note_retry,
                reraise=True,
            )
            try:
                for attempt in retry:
                    with attempt:
                        if self._stop.is_set():
                            return
                        self._stream_once(on_frame)
            except StreamError:
                continue
        self.health.state = "stopped"

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # a stop request ends the backoff at once

    def _note_retry(self, state: object) -> None:
        self.health.reconnects += 1

    def _options(self) -> dict[str, str]:
        if self.is_file:
            return {}
        return (
            {"rtsp_transport": self.transport, "rtsp_flags": "prefer_tcp"}
            if self.transport == "tcp"
            else {"rtsp_transport": self.transport}
        )

    def _stream_once(self, on_frame: Callable[[Frame], None]) -> None:
        target = self.url.removeprefix("file://")
        if self.is_file and not Path(target).is_file():
            self._fail(f"video file not found: {target}")
        try:
            container = av.open(
                target, options=self._options(), timeout=(self.open_timeout_s, self.stall_timeout_s)
            )
        except (av.error.FFmpegError, OSError) as exc:
            self._fail(f"cannot open {redact_url(self.url)}: {redact_text(str(exc))}")
        got_frames = False
        try:
            if not container.streams.video:
                self._fail(f"{redact_url(self.url)} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            self.health.codec = stream.codec_context.name
            period = 1.0 / self.sample_fps
            last_sampled: float | None = None
            wall_start = time.time()
            first_pts: float | None = None
            window_start, window_frames = time.monotonic(), 0
            rate = float(stream.average_rate or 25)
            last_pts: float | None = None
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                # The first frame of an RTSP session often has no timestamp: step from the previous one.
                if frame.time is not None:
                    pts = float(frame.time)
                else:
                    pts = last_pts + 1.0 / rate if last_pts is not None else 0.0
                if last_pts is not None and pts < last_pts - 1.0:
                    last_sampled = None  # timestamps jumped back (camera reset): resample from here
                last_pts = pts
                if first_pts is None:
                    first_pts = pts
                now = time.time()
                got_frames = True
                h = self.health
                h.state, h.width, h.height, h.last_frame_at, h.last_error = (
                    "online",
                    frame.width,
                    frame.height,
                    now,
                    None,
                )
                h.frames += 1
                window_frames += 1
                elapsed = time.monotonic() - window_start
                if elapsed >= 2.0:
                    h.fps = round(window_frames / elapsed, 2)
                    window_start, window_frames = time.monotonic(), 0
                # Half a frame of slack keeps a 1 fps sample steady on a 10/25 fps stream.
                if last_sampled is not None and pts - last_sampled < period * 0.95:
                    continue
                last_sampled = pts
                ts = wall_start + (pts - first_pts) if self.is_file else now
                on_frame(Frame(self.camera_id, ts, frame.to_ndarray(format="bgr24"), pts, frame.key_frame))
        except av.error.FFmpegError as exc:
            self._fail(f"stream {redact_url(self.url)} broke: {redact_text(str(exc))}")
        finally:
            container.close()
        if self._stop.is_set():
            return
        # A live camera never ends; a file ends and is replayed (the backoff resets on success).
        self._fail(
            f"stream {redact_url(self.url)} ended" if got_frames else f"no frames from {redact_url(self.url)}"
        )

    def _fail(self, message: str) -> None:
        self.health.state = "offline" if self.health.frames else "error"
        self.health.last_error = message
        log.warning("camera %s: %s", self.camera_id, message)
        raise StreamError(message)
