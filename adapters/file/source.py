"""A video file as a frame source: open it with PyAV, decode it once and yield sampled Frame records.

Unlike RtspSource (a live stream: its own thread, reconnects, wall-clock times), a file is read once, with
no pacing: each frame's ``ts`` is ``start`` + its video time (the first frame at ``start``) and ``pts`` its
stream time. ``offset_s`` starts that far into the video (a seek to the keyframe before, the frames
before the offset decoded but not yielded), ``max_seconds`` ends that far in. A file that is not a video
FFmpeg decodes (missing, text, audio only, no frame) raises FileSourceError.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import av
import av.error

from adapters.frames import Frame
from adapters.rtsp.source import TEXT_CODECS, TEXT_FORMATS

log = logging.getLogger(__name__)


class FileSourceError(RuntimeError):
    """The file is not a video FFmpeg can read and decode."""


def open_video(path: Path) -> av.container.InputContainer:
    """Open a file and check it holds a video stream FFmpeg decodes (not text, not audio only)."""
    if not path.is_file():
        raise FileSourceError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise FileSourceError(f"{path.name} is not a video FFmpeg can read: {exc}") from exc
    try:
        if not container.streams.video:
            raise FileSourceError(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        fmt, codec = container.format.name, stream.codec_context.name
        if fmt in TEXT_FORMATS or codec in TEXT_CODECS:
            raise FileSourceError(f"{path.name} is not a video: FFmpeg reads it as text ({fmt}, {codec})")
    except BaseException:
        container.close()
        raise
    return container


def total_frames(
    container: av.container.InputContainer, max_seconds: float | None = None, offset_s: float = 0.0
) -> int | None:
    """The frames the container says it holds (between ``offset_s`` and ``max_seconds``), or None."""
    stream = container.streams.video[0]
    rate = float(stream.average_rate or 0)
    total: int | None = stream.frames or None
    if total is None and rate:
        if stream.duration and stream.time_base:
            total = math.ceil(float(stream.duration * stream.time_base) * rate)
        elif container.duration:
            total = math.ceil(container.duration / av.time_base * rate)
    if max_seconds is not None and rate:
        limit = math.ceil(max_seconds * rate)
        total = min(total, limit) if total is not None else limit
    if offset_s > 0 and rate and total is not None:
        total = max(0, total - math.floor(offset_s * rate))
    return total


class FileSource:
    """One video file, decoded once into Frame records (``frames()``); close it (or use ``with``).

    After the iteration: ``decoded`` frames were decoded from ``offset_s`` on, they end ``end_s`` seconds
    into the video, and ``cancelled`` says the ``stop`` event ended it early."""

    def __init__(
        self,
        path: Path,
        camera_id: str,
        start: float = 0.0,
        sample_fps: float | None = None,
        offset_s: float = 0.0,
        max_seconds: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.camera_id = camera_id
        self.start = start
        self.sample_fps = sample_fps
        self.offset_s = offset_s
        self.max_seconds = max_seconds
        self.container = open_video(self.path)
        self.decoded = 0
        self.end_s = 0.0
        self.cancelled = False

    @property
    def total_frames(self) -> int | None:
        """The frames to expect between ``offset_s`` and ``max_seconds`` (from the container), or None."""
        return total_frames(self.container, self.max_seconds, self.offset_s)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def frames(
        self,
        due: Callable[[float], bool] | None = None,
        on_decoded: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[Frame]:
        """Decode every frame; yield the sampled ones (``sample_fps``) that ``due(ts)`` wants.

        Only the yielded frames are converted to images; ``on_decoded(n)`` follows every decoded frame
        from ``offset_s`` on (after its Frame was handled)."""
        container, path = self.container, self.path
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        codec = stream.codec_context
        rate = float(stream.average_rate or 25)
        period = 1.0 / self.sample_fps if self.sample_fps else 0.0
        slack = min(0.5 / rate, 0.25 * period)
        last_sampled: float | None = None
        first_pts: float | None = None
        last_pts: float | None = None
        offset = 0.0
        self.decoded, self.end_s, self.cancelled = 0, 0.0, False
        if self.offset_s > 0:
            # Video times count from the stream's start, not from the keyframe the seek lands on.
            tb = stream.time_base
            first_pts = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
            if tb:
                try:
                    container.seek(int((first_pts + self.offset_s) / tb), stream=stream, backward=True)
                except av.error.FFmpegError as exc:  # not seekable: decode from the start, skip to the offset
                    log.info("%s: cannot seek (%s); decoding from the start", path.name, exc)
        for packet in container.demux(stream):
            if stop is not None and stop.is_set():
                self.cancelled = True
                return
            try:
                decoded = codec.decode(packet)
            except av.error.InvalidDataError:
                continue  # one damaged packet
            except av.error.FFmpegError as exc:
                if self.decoded:
                    log.warning("%s: decoding stopped after %d frames: %s", path.name, self.decoded, exc)
                    break
                raise FileSourceError(f"{path.name} is not a video FFmpeg can decode: {exc}") from exc
            for frame in decoded:
                pts = float(frame.time) if frame.time is not None else (last_pts or 0.0) + 1.0 / rate
                if first_pts is None:
                    first_pts = pts
                last_pts = pts
                offset = pts - first_pts
                if self.max_seconds is not None and offset >= self.max_seconds:
                    self.end_s = offset
                    return
                if offset < self.offset_s - 1e-6:
                    continue  # before the range: decoded (the keyframe's successors need it), not yielded
                self.decoded += 1
                ts = self.start + offset
                sampled = not period or last_sampled is None or offset - last_sampled >= period - slack
                if sampled:
                    last_sampled = offset
                if sampled and (due is None or due(ts)):  # convert only the frames wanted
                    image = frame.to_ndarray(format="bgr24")
                    yield Frame(self.camera_id, ts, image, pts, frame.key_frame)
                if on_decoded is not None:
                    on_decoded(self.decoded)
        if not self.decoded:
            where = f" from {self.offset_s:g} s on" if self.offset_s > 0 else ""
            raise FileSourceError(f"no frames could be decoded from {path.name}{where}")
        self.end_s = offset + 1.0 / rate
