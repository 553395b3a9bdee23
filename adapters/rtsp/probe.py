"""Test a stream address before it is saved: open it once, read a little, report what it is.

``probe_stream`` answers codec, size and frame rate (measured from the timestamps of the first second or
so of packets, the declared rate when they do not tell), or raises :class:`ProbeError` with a fault code
(adapters/rtsp/faults.py) and FFmpeg's detail without credentials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import av
import av.error

from adapters.redact import redact_text
from adapters.rtsp.faults import fault_of
from adapters.rtsp.source import TEXT_CODECS, TEXT_FORMATS

MEASURE_S = 1.5  # stream time read to measure the frame rate
MAX_PACKETS = 120


class ProbeError(Exception):
    """The stream could not be opened or is not video; ``code`` says why (a fault code)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class StreamInfo:
    codec: str  # FFmpeg's name: h264, hevc, mjpeg...
    width: int
    height: int
    fps: float | None
    elapsed_s: float  # how long the test took


def _options(url: str, transport: str) -> dict[str, str]:
    if not url.startswith(("rtsp://", "rtsps://")):
        return {}
    return {"rtsp_transport": transport, **({"rtsp_flags": "prefer_tcp"} if transport == "tcp" else {})}


def probe_stream(url: str, transport: str = "tcp", timeout_s: float = 8.0) -> StreamInfo:
    """Open ``url`` (blocking), check that it is video and measure it. Raises ProbeError."""
    started = time.monotonic()
    target = url.removeprefix("file://")
    try:
        container = av.open(target, options=_options(url, transport), timeout=(timeout_s, timeout_s / 2))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        code = fault_of(exc)
        if code == "not_video" and time.monotonic() - started >= 0.9 * timeout_s:
            code = "unreachable"  # FFmpeg gave up waiting for an answer, it did not read a wrong one
        raise ProbeError(code, redact_text(str(exc))) from exc
    try:
        return _measure(container, started)
    except av.error.FFmpegError as exc:
        raise ProbeError(fault_of(exc), redact_text(str(exc))) from exc
    finally:
        container.close()


def _measure(container: Any, started: float) -> StreamInfo:
    if not container.streams.video:
        raise ProbeError("not_video", "the stream has no video track")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if container.format.name in TEXT_FORMATS or ctx.name in TEXT_CODECS:
        raise ProbeError("not_video", f"FFmpeg reads it as text ({container.format.name}, {ctx.name})")
    tb = float(stream.time_base) if stream.time_base else 1 / 90000
    stamps: list[float] = []
    width, height = ctx.width, ctx.height
    for packet in container.demux(stream):
        if packet.size and packet.pts is not None:
            stamps.append(packet.pts * tb)
        if not width:  # no size in the stream's header: decode until a frame tells
            for frame in ctx.decode(packet):
                width, height = frame.width, frame.height
        if len(stamps) >= MAX_PACKETS or (stamps and max(stamps) - min(stamps) >= MEASURE_S):
            break
    if not stamps and not width:
        raise ProbeError("not_video", "no video frame arrived")
    fps: float | None = None
    if len(stamps) >= 3 and max(stamps) > min(stamps):
        fps = (len(stamps) - 1) / (max(stamps) - min(stamps))
    elif stream.average_rate:
        fps = float(stream.average_rate)
    return StreamInfo(ctx.name, width, height, round(fps, 2) if fps else None, time.monotonic() - started)
