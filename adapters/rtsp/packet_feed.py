"""A camera's demuxed video packets as live Annex-B access units for several subscribers (the GB/T 28181
cascade relay: a superior INVITEs an RTSP camera and gets its H.264/H.265 remuxed as PS over RTP).

:class:`PacketFeed` is a :class:`~adapters.rtsp.source.PacketTap` that forwards every packet to an inner tap
(the alarm clip buffer) first, so one ``RtspSource.tap`` serves both. Conversion happens only while
someone subscribes. Each subscriber has its own bounded queue and delivery thread: a slow peer never
holds the camera thread; when its queue is full the unit is dropped, counted, and the subscriber waits for
the next keyframe (a frame missing mid-GOP would corrupt everything up to it). Every subscriber starts at
a keyframe.

PyAV over RTSP yields Annex-B; MP4/MKV-style sources yield length-prefixed NAL units with avcC/hvcC
extradata, which are converted here, and parameter sets are put in front of keyframes that lack them
(a superior's decoder joins at any keyframe).
"""

from __future__ import annotations

import collections
import logging
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from adapters.gb28181.ps import START, AccessUnit, nal_units

log = logging.getLogger(__name__)

CODECS = {"h264": "h264", "hevc": "hevc", "h265": "hevc"}
PARAMETER_SET_TYPES = {"h264": frozenset({7, 8}), "hevc": frozenset({32, 33, 34})}
AUD_TYPES = {"h264": 9, "hevc": 35}
DEFAULT_QUEUE = 64
MAX_UNIT = 8 << 20  # one access unit larger than this is not a video frame
CLOCK = 90000


class FeedError(ValueError):
    """Codec parameters or a packet the feed cannot turn into Annex-B access units."""


def nal_type(codec: str, nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def _length_prefixed(data: bytes, size: int) -> list[bytes]:
    """NAL units of an AVCC/HVCC sample (each prefixed by a ``size``-byte big-endian length)."""
    out, pos = [], 0
    while pos < len(data):
        if pos + size > len(data):
            raise FeedError(f"truncated NAL length at byte {pos}")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if length == 0 or pos + length > len(data):
            raise FeedError(f"NAL length {length} at byte {pos - size} runs past the packet")
        out.append(data[pos : pos + length])
        pos += length
    return out


def _read_sets(data: bytes, pos: int, count: int) -> tuple[list[bytes], int]:
    sets = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise FeedError("truncated parameter set length")
        (length,) = struct.unpack_from("!H", data, pos)
        pos += 2
        if pos + length > len(data):
            raise FeedError("truncated parameter set")
        sets.append(data[pos : pos + length])
        pos += length
    return sets, pos


def parse_extradata(codec: str, extradata: bytes | None) -> tuple[list[bytes], int]:
    """(parameter set NAL units, NAL length size; 0 = the packets are Annex-B) from a stream's extradata.

    avcC (ISO/IEC 14496-15 5.3.3.1) and hvcC (8.3.3.1) carry the length size and the parameter sets;
    Annex-B extradata (RTSP's sprop-parameter-sets) carries the parameter sets with start codes.
    """
    data = bytes(extradata or b"")
    if not data:
        return [], 0
    if data.startswith(START) or data.startswith(b"\x00" + START):
        return [n for n in nal_units(data) if nal_type(codec, n) in PARAMETER_SET_TYPES[codec]], 0
    if data[0] != 1:
        raise FeedError(f"unknown {codec} extradata (first byte {data[0]:#x})")
    if codec == "h264":
        if len(data) < 7:
            raise FeedError("avcC extradata too short")
        size = (data[4] & 0x03) + 1
        sps, pos = _read_sets(data, 6, data[5] & 0x1F)
        if pos >= len(data):
            raise FeedError("avcC extradata has no PPS count")
        pps, _ = _read_sets(data, pos + 1, data[pos])
        return sps + pps, size
    if len(data) < 23:
        raise FeedError("hvcC extradata too short")
    size = (data[21] & 0x03) + 1
    sets: list[bytes] = []
    pos = 23
    for _ in range(data[22]):
        if pos + 3 > len(data):
            raise FeedError("truncated hvcC array")
        (count,) = struct.unpack_from("!H", data, pos + 1)
        found, pos = _read_sets(data, pos + 3, count)
        sets += [n for n in found if n and nal_type(codec, n) in PARAMETER_SET_TYPES[codec]]
    return sets, size


def annexb(nals: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals)


@dataclass
class SubscriberStats:
    delivered: int = 0
    dropped: int = 0  # the queue was full (the subscriber is slow), or skipped until the next keyframe
    waited: int = 0  # units before the first keyframe, never sent
    errors: int = 0  # the callback raised


class _Subscriber:
    def __init__(self, feed: PacketFeed, callback: Callable[[AccessUnit], None], size: int) -> None:
        self.feed = feed
        self.callback = callback
        self.size = size
        self.stats = SubscriberStats()
        self.queue: collections.deque[AccessUnit] = collections.deque()
        self.cond = threading.Condition()
        self.need_key = True
        self.started = False
        self.closed = False
        self.thread = threading.Thread(target=self._run, name=f"feed-{feed.camera_id}", daemon=True)
        self.thread.start()

    def offer(self, unit: AccessUnit) -> None:
        """Camera thread: queue a unit, or count it dropped. Never blocks on the subscriber."""
        with self.cond:
            if self.need_key and not unit.keyframe:
                if self.started:
                    self.stats.dropped += 1
                else:
                    self.stats.waited += 1
                return
            if len(self.queue) >= self.size:
                # The queued units are useless without this one: drop them all, resume at a keyframe.
                self.stats.dropped += len(self.queue)
                self.queue.clear()
                if not unit.keyframe:
                    self.stats.dropped += 1
                    self.need_key = True
                    log.warning(
                        "camera %s: a relay fell behind; resuming at the next keyframe", self.feed.camera_id
                    )
                    return
            self.need_key = False
            self.started = True
            self.queue.append(unit)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.queue.clear()
            self.cond.notify()
        if self.thread is not threading.current_thread():
            self.thread.join(2.0)

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                unit = self.queue.popleft()
            try:
                self.callback(unit)
                self.stats.delivered += 1
            except Exception:  # one broken peer must not end the others' relays
                self.stats.errors += 1
                log.exception("camera %s: a relay subscriber failed", self.feed.camera_id)


class PacketFeed:
    """A ``PacketTap`` that fans a camera's packets out as access units (see the module docstring).

    ``subscribe(callback)`` returns the function that ends the subscription; the callback runs on the
    subscriber's own thread, in stream order.
    """

    def __init__(self, camera_id: str, inner: Any = None, queue_size: int = DEFAULT_QUEUE) -> None:
        self.camera_id = camera_id
        self.inner = inner  # the clip buffer (a PacketTap), fed first and whatever happens here
        self.queue_size = queue_size
        self.codec: str | None = None
        self.width = 0
        self.height = 0
        self.units = 0
        self.bad_packets = 0
        self._sets: list[bytes] = []
        self._length_size = 0
        self._time_base = Fraction(1, CLOCK)
        self._lock = threading.Lock()
        self._subs: list[_Subscriber] = []
        self.closed_stats = SubscriberStats()  # totals of ended subscriptions

    # --- PacketTap (the camera thread) -----------------------------------------------------------------

    def reset(self, stream: Any) -> None:
        """A new connection: codec, parameter sets and time base may have changed. The inner tap's
        failure (a codec MP4 cannot hold) leaves the relay working."""
        if self.inner is not None:
            try:
                self.inner.reset(stream)
            except Exception:
                log.exception(
                    "camera %s: clip buffer refused the stream; clips off until reconnected", self.camera_id
                )
        ctx = stream.codec_context
        self.configure(ctx.name, ctx.extradata, stream.time_base, ctx.width, ctx.height)

    def configure(
        self,
        codec_name: str,
        extradata: bytes | None,
        time_base: Fraction | None,
        width: int = 0,
        height: int = 0,
    ) -> None:
        codec = CODECS.get(codec_name)
        self.codec, self._sets, self._length_size = codec, [], 0
        self.width, self.height = width, height
        self._time_base = Fraction(time_base) if time_base else Fraction(1, CLOCK)
        if codec is None:
            log.info(
                "camera %s: %s cannot be relayed as GB/T 28181 PS (H.264/H.265 only)",
                self.camera_id,
                codec_name,
            )
            return
        try:
            self._sets, self._length_size = parse_extradata(codec, extradata)
        except FeedError as exc:
            log.warning("camera %s: %s; relying on in-band parameter sets", self.camera_id, exc)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:  # the new connection's timestamps and GOPs are unrelated to the old ones
            with sub.cond:
                sub.need_key = True

    def feed(self, packet: Any, wall: float) -> None:
        if self.inner is not None:
            try:
                self.inner.feed(packet, wall)
            except Exception:
                log.exception("camera %s: clip buffer failed; clips off until reconnected", self.camera_id)
                self.inner = None
        if not self._subs or self.codec is None or not packet.size:
            return
        try:
            unit = self.unit(bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe))
        except FeedError as exc:
            self.bad_packets += 1
            log.debug("camera %s: packet not relayed: %s", self.camera_id, exc)
            return
        self.publish(unit)

    # --- conversion --------------------------------------------------------------------------------

    def _clock(self, ts: int | None) -> int | None:
        return None if ts is None else int(ts * self._time_base * CLOCK) % (1 << 33)

    def unit(self, data: bytes, pts: int | None, dts: int | None, keyframe: bool) -> AccessUnit:
        """One demuxed packet -> an Annex-B access unit, parameter sets in front of a keyframe."""
        codec = self.codec
        if codec is None:
            raise FeedError("no codec configured")
        if len(data) > MAX_UNIT:
            raise FeedError(f"packet of {len(data)} bytes is larger than {MAX_UNIT}")
        if self._length_size and not data.startswith(START) and not data.startswith(b"\x00" + START):
            nals = _length_prefixed(data, self._length_size)
        else:
            nals = nal_units(data)
        if not nals:
            raise FeedError("packet holds no NAL unit")
        if keyframe and self._sets:
            have = {nal_type(codec, n) for n in nals}
            if not PARAMETER_SET_TYPES[codec] <= have:
                aud = [n for n in nals[:1] if nal_type(codec, n) == AUD_TYPES[codec]]
                nals = aud + self._sets + nals[len(aud) :]
        return AccessUnit(codec, annexb(nals), self._clock(pts), self._clock(dts), keyframe)

    def publish(self, unit: AccessUnit) -> None:
        self.units += 1
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.offer(unit)

    # --- subscribers (any thread) --------------------------------------------------------------------

    def subscribe(self, callback: Callable[[AccessUnit], None]) -> Callable[[], None]:
        sub = _Subscriber(self, callback, self.queue_size)
        with self._lock:
            self._subs.append(sub)

        def cancel() -> None:
            with self._lock:
                if sub not in self._subs:
                    return
                self._subs.remove(sub)
            sub.close()
            total = self.closed_stats
            total.delivered += sub.stats.delivered
            total.dropped += sub.stats.dropped
            total.waited += sub.stats.waited
            total.errors += sub.stats.errors

        return cancel

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def stats(self) -> dict[str, int]:
        """Counters over all subscriptions, ended ones included."""
        with self._lock:
            subs = list(self._subs)
        total = SubscriberStats(**vars(self.closed_stats))
        for sub in subs:
            total.delivered += sub.stats.delivered
            total.dropped += sub.stats.dropped
            total.waited += sub.stats.waited
            total.errors += sub.stats.errors
        return {"units": self.units, "bad_packets": self.bad_packets, "subscribers": len(subs), **vars(total)}

    def close(self) -> None:
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub.close()
