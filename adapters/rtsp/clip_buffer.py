"""A rolling buffer of a camera's encoded video packets, and MP4 clips cut from it without re-encoding.

Alarm evidence needs a few seconds of video before the event, so the packets are kept as they arrive
(before any decode, whatever the decode mode) and remuxed into MP4 only when an alarm asks for a clip:
remuxing costs almost nothing, while decoding and re-encoding a 1080p clip would cost seconds of CPU.
"""

from __future__ import annotations

import io
import statistics
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

DEFAULT_MAX_SECONDS = 20.0
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Browsers (Safari above all) play H.265 in MP4 only when tagged hvc1; FFmpeg's default is hev1.
MP4_TAGS = {"hevc": "hvc1"}


class ClipError(RuntimeError):
    """A clip could not be written: no video in the window, no codec parameters, or the muxer refused."""


@dataclass(frozen=True, slots=True)
class ClipPacket:
    """One encoded packet as demuxed: timestamps in the stream's time base, ``wall`` in epoch seconds."""

    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    wall: float
    duration: int | None = None


@dataclass(frozen=True)
class ClipParams:
    """What the muxer needs to write the stream again: codec, extradata (SPS/PPS/VPS), size, time base.

    ``template`` is a detached copy of the input stream's parameters (an output stream of a container
    that is never written), because PyAV creates a stream for copied packets only from a template stream,
    and the live input stream dies with its connection. Both copies keep the decoder's codec
    (``opaque=True``), so no encoder is ever looked up or opened.
    """

    codec: str
    width: int
    height: int
    time_base: Fraction
    extradata: bytes | None = None
    pix_fmt: str | None = None
    template: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_stream(cls, stream: av.video.stream.VideoStream) -> ClipParams:
        ctx = stream.codec_context
        holder = av.open(io.BytesIO(), "w", format="mp4")
        template = holder.add_stream_from_template(stream, opaque=True)
        return cls(
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            time_base=stream.time_base or Fraction(1, 90000),
            extradata=ctx.extradata,
            pix_fmt=ctx.pix_fmt,
            template=template,
        )


@dataclass
class _Gop:
    """Packets from one keyframe up to the next: the buffer is trimmed a whole GOP at a time."""

    packets: list[ClipPacket]
    size: int


class ClipBuffer:
    """Thread-safe rolling buffer of one stream's packets, bounded by seconds and bytes.

    It always starts at a keyframe, so any window cut from it decodes. ``max_seconds`` bounds the span
    between its oldest and newest packet (a single GOP longer than that is kept whole); ``max_bytes``
    bounds memory absolutely (a single GOP larger than that is dropped until the next keyframe).
    """

    def __init__(self, max_seconds: float = DEFAULT_MAX_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_seconds <= 0 or max_bytes <= 0:
            raise ValueError("a clip buffer needs positive max_seconds and max_bytes")
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._gops: deque[_Gop] = deque()
        self._size = 0
        self._params: ClipParams | None = None

    # --- the source side (camera thread) --------------------------------------------------------------

    def reset(self, stream: av.video.stream.VideoStream | None = None) -> None:
        """Start over for a new connection: the codec parameters (and timestamps) may have changed."""
        with self._lock:
            self._gops.clear()
            self._size = 0
            self._params = None
        if stream is not None:  # may raise (a codec MP4 cannot hold): the buffer then stays empty
            self._params = ClipParams.from_stream(stream)

    def feed(self, packet: av.Packet, wall: float) -> None:
        """Keep a copy of a demuxed packet (the demuxer's buffer is not ours to hold)."""
        if packet.size:  # the empty packet at the end of a stream only flushes decoders
            data = bytes(packet)
            self.add(ClipPacket(data, packet.pts, packet.dts, packet.is_keyframe, wall, packet.duration))

    def add(self, packet: ClipPacket) -> None:
        with self._lock:
            if packet.keyframe:
                self._gops.append(_Gop([packet], len(packet.data)))
            elif self._gops:
                gop = self._gops[-1]
                gop.packets.append(packet)
                gop.size += len(packet.data)
            else:
                return  # nothing decodes before the first keyframe
            self._size += len(packet.data)
            self._trim(packet.wall)

    def _trim(self, newest: float) -> None:
        while len(self._gops) > 1 and (
            self._size > self.max_bytes or newest - self._gops[0].packets[0].wall > self.max_seconds
        ):
            self._size -= self._gops.popleft().size
        if self._size > self.max_bytes:  # one GOP alone is too big: drop it, start again at a keyframe
            self._gops.clear()
            self._size = 0

    # --- the clip side (any thread) -------------------------------------------------------------------

    @property
    def params(self) -> ClipParams | None:
        return self._params

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def span_s(self) -> float:
        """Seconds between the oldest and newest packet held."""
        with self._lock:
            if not self._gops:
                return 0.0
            return self._gops[-1].packets[-1].wall - self._gops[0].packets[0].wall

    @property
    def newest_wall(self) -> float | None:
        with self._lock:
            return self._gops[-1].packets[-1].wall if self._gops else None

    def packets(self) -> list[ClipPacket]:
        with self._lock:
            return [p for gop in self._gops for p in gop.packets]

    def window(self, start_wall: float, end_wall: float) -> list[ClipPacket]:
        """Packets from the last keyframe at or before ``start_wall`` (else the oldest) to ``end_wall``.

        Empty when nothing was received after ``start_wall``: older video is not a clip of the event.
        """
        return self.clip(start_wall, end_wall)[1]

    def clip(self, start_wall: float, end_wall: float) -> tuple[ClipParams | None, list[ClipPacket]]:
        """The window and the codec parameters it was encoded with, taken together under the lock."""
        with self._lock:
            gops = list(self._gops)
            params = self._params
        if not gops or gops[-1].packets[-1].wall < start_wall:
            return params, []  # no video of that time (the stream broke before it)
        first = 0
        for i, gop in enumerate(gops):
            if gop.packets[0].wall <= start_wall:
                first = i
            else:
                break
        out: list[ClipPacket] = []
        for gop in gops[first:]:
            if gop.packets[0].wall > end_wall:
                break
            out.extend(p for p in gop.packets if p.wall <= end_wall)
        return params, out


def _timestamps(packets: Sequence[ClipPacket], time_base: Fraction) -> list[tuple[int, int, int]]:
    """(pts, dts, duration) per packet, rebased to start at 0, gaps filled, dts strictly increasing.

    An RTSP session's first packets often carry no timestamp, and a camera may reset its clock:
    the muxer refuses both, so they are stepped from their neighbours at the stream's frame duration.
    """
    marks = [p.dts for p in packets]
    steps = zip(marks, marks[1:], strict=False)
    positive = [b - a for a, b in steps if a is not None and b is not None and b > a]
    known = [p.duration for p in packets if p.duration]
    default = max(1, int(statistics.median(positive or known or [round(1 / (25 * time_base))])))
    given = [p.dts if p.dts is not None else p.pts for p in packets]
    # Leading packets without a timestamp: count back from the first one that has one.
    first = next((i for i, v in enumerate(given) if v is not None), len(given))
    anchor = next((v for v in given if v is not None), 0)
    result: list[tuple[int, int, int]] = []
    shift, prev = 0, None
    for i, (p, g) in enumerate(zip(packets, given, strict=True)):
        if i < first:
            dts = anchor - (first - i) * default
        elif g is None:
            dts = prev + default if prev is not None else 0
        else:
            dts = g + shift
        if prev is not None and dts <= prev:  # the clock jumped back (or stood still): carry on from here
            shift += prev + default - dts
            dts = prev + default
        pts = p.pts + shift if p.pts is not None and p.dts is not None else dts
        result.append((max(pts, dts), dts, p.duration or default))
        prev = dts
    base = result[0][1] if result else 0
    return [(pts - base, dts - base, dur) for pts, dts, dur in result]


def write_mp4(packets: Sequence[ClipPacket], params: ClipParams, path: str | Path) -> float:
    """Remux packets (starting at a keyframe) into a faststart MP4 at ``path``; returns its duration in s.

    No re-encode: the packets are copied as they are (Annex-B from RTSP is converted to length-prefixed
    NAL units by the muxer). Faststart puts the index first, so browsers start playing at once.
    """
    if not packets:
        raise ClipError("no video in the clip window")
    if params.template is None:
        raise ClipError("no codec parameters: the buffer was never attached to a stream")
    start = next((i for i, p in enumerate(packets) if p.keyframe), None)
    if start is None:
        raise ClipError("no keyframe in the clip window")
    packets = packets[start:]
    stamps = _timestamps(packets, params.time_base)
    try:
        with av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"}) as out:
            stream = out.add_stream_from_template(params.template, opaque=True)
            if tag := MP4_TAGS.get(params.codec):
                stream.codec_tag = tag
            for p, (pts, dts, dur) in zip(packets, stamps, strict=True):
                packet = av.Packet(p.data)
                packet.pts, packet.dts, packet.duration = pts, dts, dur
                packet.time_base = params.time_base
                packet.is_keyframe = p.keyframe
                packet.stream = stream
                out.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        raise ClipError(f"cannot write {params.codec} to MP4: {exc}") from exc
    last_pts, _, last_dur = max(stamps)
    return float((last_pts + last_dur) * params.time_base)
