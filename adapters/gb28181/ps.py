"""MPEG program stream (ISO/IEC 13818-1) as GB/T 28181 carries it: a streaming demuxer and a small muxer.

The demuxer takes the PS byte stream in whatever pieces RTP delivers it (pack headers, system headers,
program stream maps and PES packets may straddle packets) and emits whole video access units in Annex-B
form with their PTS, a keyframe flag and the codec. Audio (G.711, AAC, ...) and private streams are
skipped. Garbage between units is skipped up to the next start code; every buffer is capped, so a
malformed stream costs bounded memory and raises nothing: what it drops shows in :class:`PsStats`.

The muxer wraps H.264/H.265 access units into packs the way GB/T 28181 devices do: pack header,
then on keyframes a system header and a PSM, then the PES packets of the frame. :class:`PsRtpPacketizer`
cuts the result into RTP packets (payload type 96, 90 kHz, marker on a frame's last packet).
"""

from __future__ import annotations

import logging
import random
import struct
from dataclasses import dataclass, field

from adapters.gb28181.rtp import RtpPacket

log = logging.getLogger(__name__)

START = b"\x00\x00\x01"
PACK_START = 0xBA
SYSTEM_HEADER = 0xBB
PSM_ID = 0xBC
END_CODE = 0xB9
PADDING_ID = 0xBE

STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_H265 = 0x24
STREAM_TYPE_G711A = 0x90
STREAM_TYPE_G711U = 0x91
VIDEO_STREAM_TYPES = {STREAM_TYPE_H264: "h264", STREAM_TYPE_H265: "hevc"}
AUDIO_STREAM_TYPES = frozenset({0x03, 0x04, 0x0F, 0x11, STREAM_TYPE_G711A, STREAM_TYPE_G711U, 0x92, 0x93})
CODEC_STREAM_TYPES = {"h264": STREAM_TYPE_H264, "hevc": STREAM_TYPE_H265}

MAX_PES = 6 + 0xFFFF  # the largest PES (or system header, or PSM) with a length field
VIDEO_ID = 0xE0


class PsError(ValueError):
    """Raised only by the muxer for bad arguments; the demuxer never raises on input bytes."""


@dataclass(slots=True)
class AccessUnit:
    """One coded video frame, Annex-B, with 90 kHz timestamps."""

    codec: str  # "h264" or "hevc"
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    stream_id: int = VIDEO_ID


@dataclass
class PsStats:
    packs: int = 0
    system_headers: int = 0
    psms: int = 0
    video_pes: int = 0
    audio_pes: int = 0  # tolerated and skipped
    other_pes: int = 0  # private/padding/unknown streams, skipped
    access_units: int = 0
    keyframes: int = 0
    skipped_bytes: int = 0  # garbage skipped while resynchronising
    resyncs: int = 0
    bad_units: int = 0  # pack headers / PES headers that did not parse
    dropped_units: int = 0  # access units dropped: damaged by loss or over the size cap
    discontinuities: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        if reason not in self.errors and len(self.errors) >= 32:
            reason = "other"
        self.errors[reason] = self.errors.get(reason, 0) + 1


# --- Annex-B helpers ---------------------------------------------------------------------------------


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer, without start codes."""
    out: list[bytes] = []
    i = data.find(START)
    while i >= 0:
        start = i + 3
        j = data.find(START, start)
        end = j if j >= 0 else len(data)
        nal = data[start:end]
        if j >= 0 and nal.endswith(b"\x00"):
            nal = nal.rstrip(b"\x00")  # the zero of the next 4-byte start code (and trailing zeros)
        if nal:
            out.append(nal)
        i = j
    return out


def _nal_types(codec: str, data: bytes) -> list[int]:
    types = []
    for nal in nal_units(data):
        types.append((nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F)
    return types


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an access unit starts a GOP: IDR or SPS (H.264); IRAP or VPS (H.265)."""
    for t in _nal_types(codec, data):
        if codec == "hevc":
            if 16 <= t <= 21 or t == 32:
                return True
        elif t in (5, 7):
            return True
    return False


def sniff_codec(data: bytes) -> str | None:
    """Guess H.264 vs H.265 from parameter-set NAL headers (for streams without a PSM)."""
    for nal in nal_units(data):
        if len(nal) >= 2 and nal[0] in (0x40, 0x42, 0x44) and nal[1] == 0x01:
            return "hevc"
        if nal[0] & 0x9F in (0x07, 0x08) and nal[0] & 0x60:  # SPS/PPS with nal_ref_idc > 0
            return "h264"
    return None


# --- timestamps ----------------------------------------------------------------------------------------


def decode_ts(b: bytes | bytearray, pos: int) -> int:
    """A 33-bit PTS/DTS from its 5-byte PES form."""
    return (
        ((b[pos] >> 1) & 0x07) << 30
        | b[pos + 1] << 22
        | (b[pos + 2] >> 1) << 15
        | b[pos + 3] << 7
        | b[pos + 4] >> 1
    )


def encode_ts(prefix: int, ts: int) -> bytes:
    ts &= (1 << 33) - 1
    return bytes(
        (
            (prefix << 4) | ((ts >> 29) & 0x0E) | 1,
            (ts >> 22) & 0xFF,
            ((ts >> 14) & 0xFE) | 1,
            (ts >> 7) & 0xFF,
            ((ts << 1) & 0xFE) | 1,
        )
    )


def _pes_timestamps(b: bytes | bytearray, pos: int, end: int) -> tuple[int | None, int | None, int] | None:
    """Parse the optional PES header at ``pos`` (just after the length field).

    Returns (pts, dts, payload offset) or None if the header is malformed. MPEG-2 and MPEG-1 forms.
    """
    if pos >= end:
        return None, None, pos
    if b[pos] & 0xC0 == 0x80:  # MPEG-2
        if pos + 3 > end:
            return None
        flags, hlen = b[pos + 1] >> 6, b[pos + 2]
        payload = pos + 3 + hlen
        if payload > end:
            return None
        pts = dts = None
        if flags & 0x2:
            if hlen < 5:
                return None
            pts = decode_ts(b, pos + 3)
            if flags == 0x3:
                if hlen < 10:
                    return None
                dts = decode_ts(b, pos + 8)
        return pts, dts, payload
    # MPEG-1: stuffing, optional STD buffer, then timestamps.
    i = pos
    while i < end and b[i] == 0xFF and i - pos < 16:
        i += 1
    if i < end and b[i] & 0xC0 == 0x40:
        i += 2
    if i >= end:
        return None
    kind = b[i] >> 4
    if kind == 0x2 and i + 5 <= end:
        return decode_ts(b, i), None, i + 5
    if kind == 0x3 and i + 10 <= end:
        return decode_ts(b, i), decode_ts(b, i + 5), i + 10
    if b[i] == 0x0F:
        return None, None, i + 1
    return None


# --- demuxer -----------------------------------------------------------------------------------------


class PsDemuxer:
    """Streaming PS demuxer: ``feed`` bytes, get finished video access units.

    The video PES payloads are joined into one elementary stream and cut into pictures at NAL unit
    boundaries (a parameter set, SEI or delimiter after a slice, or a slice that starts a new picture),
    so it works both for GB devices (one frame per PES) and for muxers that pack several frames into a
    PES or split one across PES packets (FFmpeg's ``vob``). A PES timestamp goes to the first picture
    that starts in it. A picture comes out when the next one starts; ``flush`` returns the last one.
    After RTP loss call ``discontinuity``: the picture in progress is dropped and parsing restarts at the
    next pack header.
    """

    def __init__(self, max_access_unit: int = 4 << 20, skip_until_keyframe: bool = False) -> None:
        self.max_access_unit = max_access_unit
        self.skip_until_keyframe = skip_until_keyframe
        self.stats = PsStats()
        self.stream_types: dict[int, int] = {}  # PES stream id -> PSM stream type
        self._buf = bytearray()
        self._need_pack = False
        self._in_sync = True
        self._sniffed: str | None = None
        self._waiting_keyframe = skip_until_keyframe
        # elementary stream of the picture in progress (and the start of the next)
        self._es = bytearray()
        self._es_id = VIDEO_ID
        self._scan = 0  # ES offset up to which NAL headers were examined
        self._seen_vcl = False
        self._prefix_at: int | None = None  # where a picture's leading non-VCL NAL units begin
        self._marks: list[tuple[int, int | None, int | None]] = []  # (ES offset, pts, dts) per PES
        self._last_pts: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes held: the parse buffer plus the elementary stream in progress (both capped)."""
        return len(self._buf) + len(self._es)

    def discontinuity(self) -> None:
        """Packets were lost: drop the partial picture and resynchronise at the next pack header."""
        self.stats.discontinuities += 1
        if self._es:
            self.stats.dropped_units += 1
        self._reset_es()
        self._buf.clear()
        self._need_pack = True
        if self.skip_until_keyframe:
            self._waiting_keyframe = True

    def feed(self, data: bytes) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        self._buf += data
        consumed = self._parse(out)
        del self._buf[:consumed]
        if len(self._buf) > MAX_PES:  # only an unbounded (length 0) PES can get here
            self.stats.note("oversized PES")
            self.stats.skipped_bytes += len(self._buf)
            self._buf.clear()
            if self._es:
                self.stats.dropped_units += 1
            self._reset_es()
            self._need_pack = True
        return out

    def flush(self) -> list[AccessUnit]:
        """Emit the picture in progress (end of stream)."""
        out: list[AccessUnit] = []
        if self._es:
            self._emit(len(self._es), out)
        self._reset_es()
        return out

    def _reset_es(self) -> None:
        self._es.clear()
        self._scan = 0
        self._seen_vcl = False
        self._prefix_at = None
        self._marks.clear()

    # --- PS layer ----------------------------------------------------------------------------------

    def _resync(self, b: bytearray, pos: int) -> int:
        """Index of the next plausible start code at or after ``pos`` (or where to resume searching)."""
        i = pos
        while True:
            i = b.find(START, i)
            if i < 0:
                return max(pos, len(b) - 3)  # the last bytes may begin a start code
            if i + 3 >= len(b):
                return i
            sid = b[i + 3]
            if sid == PACK_START or (not self._need_pack and sid >= END_CODE):
                return i
            i += 1

    def _parse(self, out: list[AccessUnit]) -> int:
        b = self._buf
        n = len(b)
        pos = 0
        while n - pos >= 4:
            sid = b[pos + 3]
            if (
                b[pos] != 0
                or b[pos + 1] != 0
                or b[pos + 2] != 1
                or sid < END_CODE
                or (self._need_pack and sid != PACK_START)
            ):
                nxt = self._resync(b, pos)
                if self._in_sync:
                    self.stats.resyncs += 1
                    self._in_sync = False
                self.stats.skipped_bytes += nxt - pos
                pos = nxt
                if n - pos < 4 or b[pos : pos + 3] != START:
                    break
                continue
            if sid == PACK_START:
                size = self._pack_size(b, pos)
                if size is None:
                    break
                if size < 0:
                    self._bad("bad pack header")
                    pos += 1
                    continue
                self.stats.packs += 1
                self._need_pack = False
                self._in_sync = True
                pos += size
                continue
            if sid == END_CODE:
                pos += 4
                continue
            if n - pos < 6:
                break
            length = b[pos + 4] << 8 | b[pos + 5]
            if length == 0 and 0xE0 <= sid <= 0xEF:
                end = self._unbounded_end(b, pos)
                if end is None:
                    break
            else:
                end = pos + 6 + length
                if end > n:
                    break
            self._in_sync = True
            if sid == SYSTEM_HEADER:
                self.stats.system_headers += 1
            elif sid == PSM_ID:
                self._read_psm(b, pos, end)
            elif 0xE0 <= sid <= 0xEF:
                self._video_pes(b, pos, end, out)
            elif 0xC0 <= sid <= 0xDF:
                self.stats.audio_pes += 1
            else:
                self.stats.other_pes += 1
            pos = end
        return pos

    def _bad(self, reason: str) -> None:
        self.stats.bad_units += 1
        self.stats.note(reason)
        log.debug("PS: %s", reason)

    @staticmethod
    def _pack_size(b: bytearray, pos: int) -> int | None:
        """Size of the pack header at ``pos``; None: need more bytes; -1: malformed."""
        n = len(b)
        if n - pos < 5:
            return None
        kind = b[pos + 4]
        if kind >> 6 == 0x1:  # MPEG-2
            if n - pos < 14:
                return None
            return 14 + (b[pos + 13] & 0x07)
        if kind >> 4 == 0x2:  # MPEG-1
            return 12
        return -1

    @staticmethod
    def _unbounded_end(b: bytearray, pos: int) -> int | None:
        i = pos + 6
        while True:
            i = b.find(START, i)
            if i < 0 or i + 3 >= len(b):
                return None
            if b[i + 3] >= END_CODE:
                return i
            i += 1

    def _read_psm(self, b: bytearray, pos: int, end: int) -> None:
        # Lengths inside the PSM are advisory (some 2022 devices get them wrong): stay inside the unit.
        self.stats.psms += 1
        i = pos + 6 + 2
        if i + 2 > end:
            self._bad("short PSM")
            return
        info_len = b[i] << 8 | b[i + 1]
        i += 2 + info_len
        if i + 2 > end:
            self._bad("PSM info past the end")
            return
        map_len = b[i] << 8 | b[i + 1]
        i += 2
        stop = min(i + map_len, end - 4 if end - 4 >= i else end)
        types: dict[int, int] = {}
        while i + 4 <= stop and len(types) < 16:
            stype, sid, es_len = b[i], b[i + 1], b[i + 2] << 8 | b[i + 3]
            types[sid] = stype
            i += 4 + es_len
        if types:
            self.stream_types.update(types)
            if len(self.stream_types) > 64:  # a stream of bogus PSMs cannot grow the table
                self.stream_types = types

    def _video_pes(self, b: bytearray, pos: int, end: int, out: list[AccessUnit]) -> None:
        sid = b[pos + 3]
        stype = self.stream_types.get(sid)
        if stype is not None and stype in AUDIO_STREAM_TYPES:
            self.stats.audio_pes += 1
            return
        header = _pes_timestamps(b, pos + 6, end)
        if header is None:
            self._bad("bad PES header")
            if self._es:
                self.stats.dropped_units += 1
            self._reset_es()
            self._need_pack = True
            return
        self.stats.video_pes += 1
        pts, dts, payload_at = header
        if sid != self._es_id:
            out += self.flush()
            self._es_id = sid
        if payload_at >= end:
            return
        if pts is not None:
            self._marks.append((len(self._es), pts, dts))
            if len(self._marks) > 64:
                del self._marks[0]
        self._es += b[payload_at:end]
        self._cut(out)
        if len(self._es) > self.max_access_unit:
            self.stats.note("access unit over the size cap")
            self.stats.dropped_units += 1
            self._reset_es()
            self._need_pack = True

    # --- ES layer: cut pictures at NAL boundaries ------------------------------------------------------

    def _codec(self) -> str | None:
        stype = self.stream_types.get(self._es_id)
        if stype is not None:
            return VIDEO_STREAM_TYPES.get(stype)  # None: MPEG-4, SVAC, ... which we do not decode
        if self._sniffed is None:
            self._sniffed = sniff_codec(bytes(self._es[:4096]))
        return self._sniffed or "h264"

    def _cut(self, out: list[AccessUnit]) -> None:
        es = self._es
        codec = self._codec() or "h264"
        hevc = codec == "hevc"
        i = max(self._scan - 3, 0)
        while True:
            i = es.find(START, i)
            if i < 0:
                self._scan = max(len(es) - 3, 0)
                return
            head = i + 3
            if head + (2 if hevc else 1) >= len(es):
                self._scan = i
                return  # need the NAL header (and the first slice-header byte)
            begin = i - 1 if i > 0 and es[i - 1] == 0 else i
            byte = es[head]
            t = (byte >> 1) & 0x3F if hevc else byte & 0x1F
            if hevc and t < 32 or not hevc and 1 <= t <= 5:
                first = bool(es[head + (2 if hevc else 1)] & 0x80)
                if self._seen_vcl and (first or self._prefix_at is not None):
                    cut = self._prefix_at if self._prefix_at is not None else begin
                    self._emit(cut, out)
                    es = self._es
                    i = head - cut
                    self._prefix_at = None
                    self._seen_vcl = True
                    continue
                self._seen_vcl = True
                self._prefix_at = None
            elif self._seen_vcl and self._prefix_at is None:
                if t in (32, 33, 34, 35, 39) if hevc else t in (6, 7, 8, 9):
                    self._prefix_at = begin
            i = head

    def _emit(self, cut: int, out: list[AccessUnit]) -> None:
        data = bytes(self._es[:cut])
        del self._es[:cut]
        pts = dts = None
        keep: list[tuple[int, int | None, int | None]] = []
        for off, p, d in self._marks:
            if off <= 0:
                pts, dts = p, d  # a PES that began at or before this picture
            else:
                keep.append((off - cut, p, d))
        self._marks = keep
        if pts is not None and pts == self._last_pts:
            pts = dts = None  # a repeated timestamp on a later PES of the previous picture
        if pts is not None:
            self._last_pts = pts
        self._scan = max(self._scan - cut, 0)
        self._prefix_at = None if self._prefix_at is None else self._prefix_at - cut
        if not data.strip(b"\x00"):
            return
        codec = self._codec()
        if codec is None:
            self.stats.note("unsupported video stream type")
            self.stats.dropped_units += 1
            return
        key = is_keyframe(codec, data)
        if self._waiting_keyframe:
            if not key:
                self.stats.dropped_units += 1
                return
            self._waiting_keyframe = False
        self.stats.access_units += 1
        self.stats.keyframes += key
        out.append(AccessUnit(codec, data, pts, dts, key, self._es_id))


# --- muxer -------------------------------------------------------------------------------------------


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def pack_header(scr: int, mux_rate: int = 0x3FFFFF // 8) -> bytes:
    scr &= (1 << 33) - 1
    ext = 0
    return START + bytes(
        (
            PACK_START,
            0x44 | ((scr >> 27) & 0x38) | ((scr >> 28) & 0x03),
            (scr >> 20) & 0xFF,
            ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03),
            (scr >> 5) & 0xFF,
            ((scr << 3) & 0xF8) | 0x04 | ((ext >> 7) & 0x03),
            ((ext << 1) & 0xFE) | 0x01,
            (mux_rate >> 14) & 0xFF,
            (mux_rate >> 6) & 0xFF,
            ((mux_rate << 2) & 0xFC) | 0x03,
            0xF8,  # reserved, no stuffing
        )
    )


def system_header(stream_ids: tuple[int, ...] = (VIDEO_ID,), rate_bound: int = 0x3FFFFF // 8) -> bytes:
    body = bytes(
        (
            0x80 | ((rate_bound >> 15) & 0x7F),
            (rate_bound >> 7) & 0xFF,
            ((rate_bound << 1) & 0xFE) | 0x01,
            0x04 | 0x00,  # audio_bound 1, fixed 0, CSPS 0
            0xE1,  # audio lock, video lock, marker, video_bound 1
            0x7F,  # packet rate restriction 0, reserved
        )
    )
    for sid in stream_ids:
        if 0xE0 <= sid <= 0xEF:
            body += bytes((sid, 0xE0 | 0x00 | 0x04, 0x00))  # scale 1 (x1024), bound 1024 -> 1 MiB
        else:
            body += bytes((sid, 0xC0, 0x20))  # scale 0 (x128), bound 32 -> 4 KiB
    return START + bytes((SYSTEM_HEADER,)) + struct.pack("!H", len(body)) + body


def program_stream_map(entries: tuple[tuple[int, int], ...], version: int = 0) -> bytes:
    """A PSM listing (stream_type, stream_id) pairs, with its CRC."""
    es_map = b"".join(struct.pack("!BBH", stype, sid, 0) for stype, sid in entries)
    body = bytes((0x80 | 0x60 | (version & 0x1F), 0xFF)) + struct.pack("!H", 0)
    body += struct.pack("!H", len(es_map)) + es_map
    head = START + bytes((PSM_ID,)) + struct.pack("!H", len(body) + 4)
    crc = _crc32_mpeg(head + body)
    return head + body + struct.pack("!I", crc)


def pes_packets(
    stream_id: int, payload: bytes, pts: int | None, dts: int | None = None, max_payload: int = 65000
) -> list[bytes]:
    """Split ``payload`` into PES packets; the first carries the timestamps."""
    if not 0 < max_payload <= 0xFFFF - 13:
        raise PsError(f"max_payload {max_payload} out of range")
    out: list[bytes] = []
    first = True
    for i in range(0, max(len(payload), 1), max_payload):
        chunk = payload[i : i + max_payload]
        if first and pts is not None:
            if dts is not None and dts != pts:
                hdr = bytes((0x84, 0xC0, 10)) + encode_ts(0x3, pts) + encode_ts(0x1, dts)
            else:
                hdr = bytes((0x84, 0x80, 5)) + encode_ts(0x2, pts)
        else:
            hdr = bytes((0x84 if first else 0x80, 0x00, 0))
        first = False
        out.append(START + bytes((stream_id,)) + struct.pack("!H", len(hdr) + len(chunk)) + hdr + chunk)
    return out


class PsMuxer:
    """Wraps video access units (Annex-B) into GB-style PS packs; PSM and system header on keyframes."""

    def __init__(self, codec: str = "h264", stream_id: int = VIDEO_ID, max_pes_payload: int = 65000) -> None:
        if codec not in CODEC_STREAM_TYPES:
            raise PsError(f"codec must be one of {sorted(CODEC_STREAM_TYPES)}, not {codec!r}")
        self.codec = codec
        self.stream_id = stream_id
        self.max_pes_payload = max_pes_payload
        self._psm = program_stream_map(((CODEC_STREAM_TYPES[codec], stream_id),))
        self._sys = system_header((stream_id,))

    def mux(
        self, access_unit: bytes, pts: int, keyframe: bool | None = None, dts: int | None = None
    ) -> bytes:
        if keyframe is None:
            keyframe = is_keyframe(self.codec, access_unit)
        scr = dts if dts is not None else pts
        parts = [pack_header(max(scr - 3600, 0))]
        if keyframe:
            parts += [self._sys, self._psm]
        parts += pes_packets(self.stream_id, access_unit, pts, dts, self.max_pes_payload)
        return b"".join(parts)


class PsRtpPacketizer:
    """Cuts PS frames into RTP packets: PT 96, 90 kHz timestamps, marker on the frame's last packet."""

    def __init__(
        self, ssrc: int, payload_type: int = 96, max_payload: int = 1400, first_sequence: int | None = None
    ) -> None:
        if not 16 <= max_payload <= 65000:
            raise PsError(f"max_payload {max_payload} out of range")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.sequence = random.randrange(1 << 16) if first_sequence is None else first_sequence & 0xFFFF

    def packetize(self, ps: bytes, timestamp: int) -> list[bytes]:
        out: list[bytes] = []
        chunks = [ps[i : i + self.max_payload] for i in range(0, len(ps), self.max_payload)]
        for k, chunk in enumerate(chunks):
            pkt = RtpPacket(
                payload_type=self.payload_type,
                sequence=self.sequence,
                timestamp=timestamp,
                ssrc=self.ssrc,
                payload=chunk,
                marker=k == len(chunks) - 1,
            )
            out.append(pkt.build())
            self.sequence = (self.sequence + 1) & 0xFFFF
        return out
