"""RTP for GB/T 28181 media: packet codec (RFC 3550), reorder buffer, SSRC check, RFC 4571 TCP framing.

Everything here is pure and bounded: a malformed packet raises :class:`RtpError` with a reason, the
reorder buffer never holds more than ``capacity`` packets, and the TCP reader never buffers more than
one maximal frame plus one read.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

RTP_VERSION = 2
RTP_HEADER_LEN = 12
MAX_RTP_PACKET = 65535  # what a 2-byte RFC 4571 length can carry; UDP datagrams are smaller
SEQ_MOD = 1 << 16


class RtpError(ValueError):
    """A packet that is not valid RTP; ``reason`` says why (short, loggable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data); data length is a multiple of 4
    padding: int = 0  # padding bytes to append when building (0 = none)

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; raises :class:`RtpError` on anything malformed."""
        n = len(data)
        if n < RTP_HEADER_LEN:
            raise RtpError(f"short packet: {n} bytes")
        if n > MAX_RTP_PACKET:
            raise RtpError(f"packet too long: {n} bytes")
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise RtpError(f"bad version {version}")
        has_padding = bool(b0 & 0x20)
        has_ext = bool(b0 & 0x10)
        cc = b0 & 0x0F
        pos = RTP_HEADER_LEN + 4 * cc
        if pos > n:
            raise RtpError(f"CSRC list ({cc}) past the end")
        csrcs = struct.unpack_from(f"!{cc}I", data, RTP_HEADER_LEN) if cc else ()
        extension: tuple[int, bytes] | None = None
        if has_ext:
            if pos + 4 > n:
                raise RtpError("extension header past the end")
            profile, words = struct.unpack_from("!HH", data, pos)
            pos += 4
            if pos + 4 * words > n:
                raise RtpError(f"extension ({words} words) past the end")
            extension = (profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words
        end = n
        pad = 0
        if has_padding:
            pad = data[-1]
            if pad == 0:
                raise RtpError("padding count 0")
            if pos + pad > n:
                raise RtpError(f"padding ({pad}) longer than the payload")
            end = n - pad
        return cls(
            payload_type=b1 & 0x7F,
            sequence=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(b1 & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=pad,
        )

    def build(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} out of range")
        if len(self.csrcs) > 15:
            raise RtpError("more than 15 CSRCs")
        if not 0 <= self.padding <= 255:
            raise RtpError(f"padding {self.padding} out of range")
        b0 = RTP_VERSION << 6 | (0x20 if self.padding else 0) | (0x10 if self.extension else 0)
        b0 |= len(self.csrcs)
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            struct.pack(
                "!BBHII",
                b0,
                b1,
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
        ]
        parts.extend(struct.pack("!I", c & 0xFFFFFFFF) for c in self.csrcs)
        if self.extension is not None:
            profile, ext = self.extension
            if len(ext) % 4:
                raise RtpError("extension data is not a multiple of 4 bytes")
            parts.append(struct.pack("!HH", profile & 0xFFFF, len(ext) // 4))
            parts.append(ext)
        parts.append(self.payload)
        if self.padding:
            parts.append(b"\x00" * (self.padding - 1) + bytes([self.padding]))
        out = b"".join(parts)
        if len(out) > MAX_RTP_PACKET:
            raise RtpError(f"packet too long: {len(out)} bytes")
        return out


def seq_delta(a: int, b: int) -> int:
    """Signed distance from sequence number ``b`` to ``a`` modulo 2^16 (in -32768..32767)."""
    d = (a - b) & 0xFFFF
    return d - SEQ_MOD if d >= 0x8000 else d


@dataclass
class ReorderStats:
    received: int = 0  # packets pushed
    released: int = 0  # packets handed on, in order
    lost: int = 0  # sequence numbers skipped for good
    reordered: int = 0  # packets that arrived after a later one and were put back in place
    duplicates: int = 0
    late: int = 0  # arrived after their slot was given up (counted lost) and dropped
    resets: int = 0  # sequence jumps so large the buffer restarted
    overflows: int = 0  # gaps given up because the buffer was full


@dataclass
class _Slot:
    packet: RtpPacket
    arrived: float


class ReorderBuffer:
    """Puts RTP packets back in sequence order, with wraparound, a size cap and a maximum wait.

    ``push`` returns the packets that can be handed on now. A gap is waited for until either the buffer
    holds ``capacity`` packets or the oldest held packet waited ``max_wait_s``; then the missing
    sequence numbers count as lost and release continues. ``poll`` applies the wait rule without a new
    packet (call it when the socket is idle). Released packets are in order; a jump in their sequence
    numbers is where loss was given up.
    """

    def __init__(self, capacity: int = 256, max_wait_s: float = 0.2, reset_distance: int = 3000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_wait_s = max_wait_s
        self.reset_distance = reset_distance
        self.stats = ReorderStats()
        self._slots: dict[int, _Slot] = {}  # extended sequence number -> packet
        self._next: int | None = None  # extended sequence number to release next
        self._highest: int | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def _extend(self, seq: int) -> int:
        assert self._highest is not None
        return self._highest + seq_delta(seq, self._highest & 0xFFFF)

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket]:
        s = self.stats
        s.received += 1
        if self._next is None:
            self._next = self._highest = packet.sequence
        ext = self._extend(packet.sequence)
        assert self._highest is not None
        if abs(ext - self._highest) > self.reset_distance:
            # The sender restarted or jumped: hand on what we hold and start over from here.
            out = self._drain_all()
            s.resets += 1
            self._next = self._highest = packet.sequence
            ext = packet.sequence
            self._slots[ext] = _Slot(packet, now)
            return out + self._release(now)
        if ext < self._next:
            if ext in self._slots:
                s.duplicates += 1
            else:
                s.late += 1
            return self._release(now)
        if ext in self._slots:
            s.duplicates += 1
            return self._release(now)
        if ext < self._highest:
            s.reordered += 1
        else:
            self._highest = ext
        self._slots[ext] = _Slot(packet, now)
        return self._release(now)

    def poll(self, now: float) -> list[RtpPacket]:
        return self._release(now)

    def flush(self) -> list[RtpPacket]:
        return self._drain_all()

    def _drain_all(self) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        for ext in sorted(self._slots):
            assert self._next is not None
            if ext > self._next:
                self.stats.lost += ext - self._next
            out.append(self._slots[ext].packet)
            self._next = ext + 1
        self._slots.clear()
        self.stats.released += len(out)
        return out

    def _release(self, now: float) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        if self._next is None:
            return out  # nothing received yet
        while self._slots:
            slot = self._slots.pop(self._next, None)
            if slot is not None:
                out.append(slot.packet)
                self._next += 1
                continue
            oldest = min(self._slots)
            full = len(self._slots) >= self.capacity
            waited = now - min(sl.arrived for sl in self._slots.values()) >= self.max_wait_s
            if not (full or waited):
                break
            if full:
                self.stats.overflows += 1
            self.stats.lost += oldest - self._next
            self._next = oldest
        self.stats.released += len(out)
        return out


@dataclass
class SsrcFilter:
    """Accepts the session's SSRC only.

    ``expected`` is the SSRC from the SDP ``y=`` line (None: unknown). With ``enforce`` the expected
    SSRC is the only one accepted; without it, the first packet's SSRC is learned when it differs
    (devices that ignore ``y=`` are common). Once fixed, other SSRCs count as mismatches and are dropped.
    """

    expected: int | None = None
    enforce: bool = False
    mismatches: int = 0
    learned: bool = False
    current: int | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.current = self.expected

    def accept(self, ssrc: int) -> bool:
        if self.current is None or (not self.enforce and not self.learned and ssrc != self.current):
            if self.current is not None:
                log.info("RTP SSRC %d differs from the expected %d: learned it", ssrc, self.current)
            self.current = ssrc
            self.learned = True
            return True
        if ssrc == self.current:
            self.learned = True
            return True
        self.mismatches += 1
        return False


def ssrc_from_y(value: str) -> int:
    """The RTP SSRC for an SDP ``y=`` value: the 10 decimal digits read as an integer."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) > 10 or int(digits) > 0xFFFFFFFF:
        raise ValueError(f"not an SSRC: {value!r}")
    return int(digits)


# --- RFC 4571 framing over TCP ------------------------------------------------------------------------


def frame_rfc4571(packet: bytes) -> bytes:
    """Prefix one RTP packet with its 2-byte big-endian length (RFC 4571)."""
    if len(packet) > 0xFFFF:
        raise RtpError(f"packet too long for RFC 4571: {len(packet)} bytes")
    return struct.pack("!H", len(packet)) + packet


def _looks_rtp(data: bytes | bytearray, pos: int) -> bool:
    return (data[pos] & 0xC0) == 0x80 and (data[pos + 1] & 0x7F) not in range(72, 77)  # not RTCP 200-204


class Rfc4571Reader:
    """Splits a TCP byte stream into RTP packets (RFC 4571 length prefix; RTSP ``$`` framing tolerated).

    The buffer never grows past ``max_packet + 4`` bytes plus one ``feed``. Once two consecutive
    packets agree on an SSRC, only frames carrying it are accepted (garbage that happens to look like a
    length and an RTP header is rejected); before that, while searching, a frame counts only when the
    next frame starts right after it with the same SSRC and a sequence number a little ahead. Garbage is
    skipped byte by byte (``resyncs``, ``skipped``); after two maximal frames without the known SSRC it
    is forgotten and learned anew.
    """

    def __init__(self, max_packet: int = MAX_RTP_PACKET, min_packet: int = RTP_HEADER_LEN) -> None:
        self.max_packet = max_packet
        self.min_packet = min_packet
        self._buf = bytearray()
        self.resyncs = 0
        self.skipped = 0
        self._in_sync = False
        self.ssrc: bytes | None = None  # the 4 SSRC bytes of the stream, once two packets agreed
        self._last_ssrc: bytes | None = None
        self._lost_for = 0  # bytes skipped since sync was lost

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _header_at(self, buf: bytearray, pos: int) -> tuple[int, int] | None:
        """(header size, length) of a frame that may start at ``pos``; None if it cannot."""
        if buf[pos] == 0x24 and _looks_rtp(buf, pos + 4) and not _looks_rtp(buf, pos + 2):
            hdr, length = 4, buf[pos + 2] << 8 | buf[pos + 3]  # RTSP interleaved: '$' ch len
        else:
            hdr, length = 2, buf[pos] << 8 | buf[pos + 1]
        if self.min_packet <= length <= self.max_packet and _looks_rtp(buf, pos + hdr):
            return hdr, length
        return None

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        buf = self._buf
        pos = 0
        n = len(buf)
        while n - pos >= 6:
            found = self._header_at(buf, pos)
            valid = found is not None
            hdr, length = found if found is not None else (2, 0)
            end = pos + hdr + length
            if valid and self.ssrc is not None:
                if n - pos < hdr + 12:
                    break
                valid = buf[pos + hdr + 8 : pos + hdr + 12] == self.ssrc
            elif valid and not self._in_sync:
                # No SSRC yet: the next frame must start where this one says it ends, same SSRC.
                if n - end < 6:
                    break
                nxt = self._header_at(buf, end)
                if nxt is not None:
                    if n - end < nxt[0] + 12:
                        break
                    here, there = pos + hdr, end + nxt[0]
                    # Same SSRC and the next sequence number: runs of zeros or other filler in garbage
                    # agree on an SSRC easily, never on consecutive sequence numbers (TCP loses none).
                    step = seq_delta(buf[there + 2] << 8 | buf[there + 3], buf[here + 2] << 8 | buf[here + 3])
                    valid = buf[here + 8 : here + 12] == buf[there + 8 : there + 12] and 0 < step <= 16
                else:
                    valid = False
            if not valid:
                if self._in_sync:
                    self.resyncs += 1
                    self._in_sync = False
                    self._lost_for = 0
                pos += 1
                self.skipped += 1
                self._lost_for += 1
                if self.ssrc is not None and self._lost_for > 2 * (self.max_packet + 4):
                    self.ssrc = None  # the sender changed its SSRC: relearn it from the stream
                continue
            if n < end:
                break
            self._in_sync = True
            packet = bytes(buf[pos + hdr : end])
            ssrc = packet[8:12]
            if ssrc == self._last_ssrc:
                self.ssrc = ssrc
            self._last_ssrc = ssrc
            out.append(packet)
            pos = end
        del buf[:pos]
        return out
