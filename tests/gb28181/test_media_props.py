"""Property tests for the media parsers: random and mutated input raises only the documented errors
(RtpError from the RTP codec; nothing from the reorder buffer, TCP framer or PS demuxer) and every buffer
stays under its cap."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.gb28181.pcap import encode_h264
from adapters.gb28181.ps import MAX_PES, PsDemuxer, PsMuxer, PsRtpPacketizer
from adapters.gb28181.rtp import (
    MAX_RTP_PACKET,
    ReorderBuffer,
    Rfc4571Reader,
    RtpError,
    RtpPacket,
    frame_rfc4571,
    seq_delta,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Real(tuple[bytes, bytes, list[bytes]]):
    """(PS from our muxer, PS from FFmpeg's vob muxer, RTP packets of ours), with a short repr."""

    def __repr__(self) -> str:
        return f"Real(ps={len(self[0])} B, vob={len(self[1])} B, packets={len(self[2])})"


@pytest.fixture(scope="module")
def real_ps(vtest: Path) -> Real:
    """Real media for 12 frames of the sample video."""
    buf = io.BytesIO()
    frames = encode_h264(vtest, 12, 176, 144, gop=6, ps_out=buf)
    muxer, packetizer = PsMuxer(), PsRtpPacketizer(1234, first_sequence=65530)
    ours, packets = b"", []
    for f in frames:
        ps = muxer.mux(f.data, f.pts, f.keyframe)
        ours += ps
        packets += packetizer.packetize(ps, f.pts)
    return Real((ours, buf.getvalue(), packets))


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: overwrite, insert, delete or truncate."""
    b = bytearray(data)
    for kind, pos, value in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] = value
        elif kind == 1:
            b[i:i] = bytes([value]) * (1 + value % 7)
        elif kind == 2:
            del b[i : i + 1 + value % 64]
        else:
            del b[i:]
    return bytes(b)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=12
)


# --- RTP codec -------------------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=2000))
def test_rtp_parse_random_bytes(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except RtpError as exc:
        assert exc.reason
        return
    assert len(p.payload) <= len(data) - 12
    assert RtpPacket.parse(p.build()).payload == p.payload


@SETTINGS
@given(st.data(), EDITS)
def test_rtp_parse_mutated_real_packets(
    real_ps: tuple[bytes, bytes, list[bytes]], data: st.DataObject, edits: list[tuple[int, int, int]]
) -> None:  # noqa: E501
    packets = real_ps[2]
    original = packets[data.draw(st.integers(0, len(packets) - 1))]
    try:
        RtpPacket.parse(mutate(original, edits))
    except RtpError:
        pass


@SETTINGS
@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=1500),
    st.booleans(),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.one_of(
        st.none(),
        st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])),
    ),
    st.integers(0, 255),
)
def test_rtp_build_parse_round_trip(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    csrcs: list[int],
    ext: tuple[int, bytes] | None,
    padding: int,
) -> None:
    p = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs), ext, padding)
    q = RtpPacket.parse(p.build())
    assert q == p


# --- reorder buffer -------------------------------------------------------------------------------------


@SETTINGS
@given(
    st.integers(0, 0xFFFF),
    st.lists(st.tuples(st.integers(-40, 80), st.floats(0, 0.5)), max_size=300),
    st.integers(1, 32),
)
def test_reorder_buffer_bounded_ordered_and_accounted(
    start: int, steps: list[tuple[int, float]], capacity: int
) -> None:
    buf = ReorderBuffer(capacity=capacity, max_wait_s=0.2)
    now = 0.0
    released: list[int] = []
    base = start
    for offset, dt in steps:
        now += dt
        seq = (base + offset) & 0xFFFF
        if offset > 0 and offset % 7 == 0:
            base = seq  # the stream moves on
        released += [p.sequence for p in buf.push(RtpPacket(96, seq, 0, 1), now)]
        assert len(buf) <= capacity
        released += [p.sequence for p in buf.poll(now)]
    released += [p.sequence for p in buf.flush()]
    s = buf.stats
    assert len(buf) == 0
    # released in strictly increasing (wrapping) order, except across a reset
    assert s.released == len(released)
    if s.resets == 0:
        assert all(seq_delta(b, a) > 0 for a, b in zip(released, released[1:], strict=False))
    assert s.received == s.released + s.duplicates + s.late


# --- RFC 4571 framing ------------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=5000), st.lists(st.integers(1, 700), min_size=1, max_size=30))
def test_rfc4571_reader_random_bytes_bounded(data: bytes, cuts: list[int]) -> None:
    reader = Rfc4571Reader(max_packet=2000)
    pos = 0
    for c in cuts * 10:
        chunk = data[pos : pos + c]
        pos += c
        for packet in reader.feed(chunk):
            assert 12 <= len(packet) <= 2000
        assert reader.buffered <= 2000 + 4 + len(chunk)
        if pos >= len(data):
            break


@SETTINGS
@given(
    st.binary(max_size=64), st.binary(max_size=64), st.lists(st.integers(1, 3000), min_size=1, max_size=40)
)
# Found by hypothesis: this head makes a 20 KB "frame" whose end chains to another with SSRC 0 in the PS
# filler; with SSRC checks alone the reader locked onto SSRC 0.
@example(head=b"N\xa1\x80", middle=b"\x00\x00", cuts=[1])
def test_rfc4571_reader_recovers_after_garbage(
    real_ps: Real, head: bytes, middle: bytes, cuts: list[int]
) -> None:
    packets = real_ps[2]
    framed = [frame_rfc4571(p) for p in packets]
    # Garbage before the first packet (no SSRC known yet: confirmation may need up to one maximal frame
    # of further data, hence the repeats) and in the middle (SSRC known: back at the next packet).
    stream = head + b"".join(framed[:4]) + middle + b"".join(framed[4:]) + b"".join(framed) * 4
    reader = Rfc4571Reader()
    got: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(stream):
        c = cuts[i % len(cuts)]
        got += reader.feed(stream[pos : pos + c])
        pos += c
        i += 1
        assert reader.buffered <= MAX_RTP_PACKET + 4 + c
    assert got[-3 * len(packets) :] == packets * 3
    assert reader.ssrc == packets[0][8:12]


# --- PS demuxer ------------------------------------------------------------------------------------------


def _feed_all(demux: PsDemuxer, data: bytes, cuts: list[int]) -> int:
    units = 0
    pos = 0
    i = 0
    while pos < len(data):
        c = cuts[i % len(cuts)]
        for u in demux.feed(data[pos : pos + c]):
            assert u.codec in ("h264", "hevc") and u.data
            units += 1
        pos += c
        i += 1
        assert demux.buffered <= MAX_PES + demux.max_access_unit
        if i % 5 == 0:
            demux.discontinuity()
    units += len(demux.flush())
    return units


@SETTINGS
@given(st.binary(max_size=20000), st.lists(st.integers(1, 4000), min_size=1, max_size=10))
def test_ps_demuxer_random_bytes(data: bytes, cuts: list[int]) -> None:
    _feed_all(PsDemuxer(max_access_unit=64 << 10), data, cuts)


@SETTINGS
@given(st.data(), EDITS, st.lists(st.integers(1, 3000), min_size=1, max_size=10))
def test_ps_demuxer_mutated_real_ps(
    real_ps: tuple[bytes, bytes, list[bytes]],
    data: st.DataObject,
    edits: list[tuple[int, int, int]],
    cuts: list[int],
) -> None:
    source = real_ps[data.draw(st.integers(0, 1))]
    _feed_all(PsDemuxer(max_access_unit=64 << 10), mutate(source, edits), cuts)


@SETTINGS
@given(st.data(), st.lists(st.integers(1, 5000), min_size=1, max_size=10))
def test_ps_demuxer_split_anywhere_gives_the_same_frames(
    real_ps: tuple[bytes, bytes, list[bytes]], data: st.DataObject, cuts: list[int]
) -> None:
    source = real_ps[data.draw(st.integers(0, 1))]
    whole = PsDemuxer()
    expected = whole.feed(source) + whole.flush()
    split = PsDemuxer()
    got = []
    pos = 0
    i = 0
    while pos < len(source):
        got += split.feed(source[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
    got += split.flush()
    assert [(u.data, u.pts, u.keyframe) for u in got] == [(u.data, u.pts, u.keyframe) for u in expected]
    assert len(expected) == 12
