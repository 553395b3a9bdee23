"""GB/T 28181 media: PS over RTP on real loopback sockets (UDP, TCP passive, TCP active), loss and
reordering, SSRC enforce/learn, the cascade sender, and SIPp replaying a pcap of FFmpeg-made PS."""

from __future__ import annotations

import io
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.frames import Frame
from adapters.gb28181.media import (
    GbMediaFactory,
    GbMediaSource,
    MediaError,
    PsRtpSender,
    RtpReceiver,
    open_receiver,
)
from adapters.gb28181.media_api import ReceiveRequest, SendRequest
from adapters.gb28181.pcap import EncodedFrame, encode_h264, pack_scr, ps_to_rtp, split_packs, write_pcap
from adapters.gb28181.ps import (
    AccessUnit,
    PsDemuxer,
    PsMuxer,
    PsRtpPacketizer,
    pes_packets,
    program_stream_map,
)
from adapters.gb28181.rtp import (
    ReorderBuffer,
    Rfc4571Reader,
    RtpError,
    RtpPacket,
    SsrcFilter,
    frame_rfc4571,
    ssrc_from_y,
)

SCENARIOS = Path(__file__).parent / "scenarios"
N_FRAMES = 50
WIDTH, HEIGHT = 352, 288
SSRC = 200000415  # y=0200000415
WAIT_S = 30.0  # generous upper bound for "eventually"; nothing asserts on timing


@dataclass
class Clip:
    frames: list[EncodedFrame]
    vob: bytes  # the same H.264 muxed by FFmpeg's own PS (vob) muxer


@pytest.fixture(scope="module")
def clip(vtest: Path) -> Clip:
    buf = io.BytesIO()
    frames = encode_h264(vtest, N_FRAMES, WIDTH, HEIGHT, fps=25, gop=25, ps_out=buf)
    assert len(frames) == N_FRAMES
    return Clip(frames, buf.getvalue())


def our_ps_packets(clip: Clip, ssrc: int = SSRC, first_sequence: int = 65500) -> list[bytes]:
    """RTP packets made by our muxer and packetizer (sequence numbers wrap around 65535)."""
    muxer = PsMuxer("h264")
    packetizer = PsRtpPacketizer(ssrc, first_sequence=first_sequence)
    out: list[bytes] = []
    for f in clip.frames:
        out += packetizer.packetize(muxer.mux(f.data, f.pts, f.keyframe), f.pts)
    return out


def wait_for(cond: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class Collector:
    """Runs a source in a thread like the camera runner does and keeps what it delivers."""

    def __init__(self, source: GbMediaSource) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.thread = threading.Thread(target=source.run, args=(self.frames.append,), daemon=True)
        self.thread.start()

    def wait_frames(self, n: int) -> None:
        wait_for(lambda: len(self.frames) >= n)

    def wait_end(self) -> None:
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "the source did not end with its TCP session"

    def stop(self) -> None:
        self.source.stop()
        self.thread.join(WAIT_S)


def send_udp(port: int, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))


def check_frames(frames: list[Frame], camera_id: str) -> None:
    assert frames[0].keyframe
    for f in frames:
        assert f.camera_id == camera_id
        assert f.image.shape == (HEIGHT, WIDTH, 3)
    pts = [f.pts for f in frames]
    assert pts == sorted(pts)


# --- unit level ----------------------------------------------------------------------------------------


def test_rtp_round_trip_and_errors() -> None:
    p = RtpPacket(96, 65535, 3600, SSRC, b"abc", marker=True, csrcs=(1, 2), extension=(0xBEDE, b"1234"))
    p.padding = 4
    q = RtpPacket.parse(p.build())
    assert (q.sequence, q.timestamp, q.ssrc, q.payload, q.marker) == (65535, 3600, SSRC, b"abc", True)
    assert q.csrcs == (1, 2) and q.extension == (0xBEDE, b"1234")
    for bad, reason in [
        (b"\x80\x60", "short packet"),
        (b"\x40" + bytes(11), "bad version"),
        (b"\x8f" + bytes(11), "CSRC list"),
        (b"\x90" + bytes(11), "extension header"),
        (b"\xa0" + bytes(11) + b"\x00", "padding count 0"),
        (b"\xa0" + bytes(11) + b"\x09", "padding (9)"),
    ]:
        with pytest.raises(RtpError) as err:
            RtpPacket.parse(bad)
        assert reason in err.value.reason
    assert ssrc_from_y("0200000415") == SSRC
    with pytest.raises(ValueError):
        ssrc_from_y("99999999999")


def test_reorder_buffer_wraparound_loss_and_wait() -> None:
    buf = ReorderBuffer(capacity=4, max_wait_s=1.0)
    mk = lambda seq: RtpPacket(96, seq, 0, 1)  # noqa: E731
    out = []
    for seq in (65534, 0, 65535, 1):  # reordered across the wrap
        out += buf.push(mk(seq), 0.0)
    assert [p.sequence for p in out] == [65534, 65535, 0, 1]
    assert buf.stats.reordered == 1
    # 2 is lost: 3 waits, then is released once the wait expires
    assert buf.push(mk(3), 0.0) == []
    assert [p.sequence for p in buf.poll(1.5)] == [3]
    assert buf.stats.lost == 1
    assert buf.push(mk(2), 1.6) == [] and buf.stats.late == 1
    # the capacity bound forces progress without waiting
    for seq in (5, 6, 7, 8):
        out = buf.push(mk(seq), 2.0)
    assert [p.sequence for p in out] == [5, 6, 7, 8] and buf.stats.lost == 2 and len(buf) == 0


def test_ssrc_filter_enforce_and_learn() -> None:
    enforce = SsrcFilter(SSRC, enforce=True)
    assert not enforce.accept(7) and enforce.accept(SSRC) and enforce.mismatches == 1
    learn = SsrcFilter(SSRC, enforce=False)
    assert learn.accept(7) and learn.current == 7 and not learn.accept(SSRC) and learn.mismatches == 1
    unknown = SsrcFilter(None, enforce=True)
    assert unknown.accept(9) and not unknown.accept(SSRC)


def test_rfc4571_reader_split_garbage_and_interleaved() -> None:
    packets = [RtpPacket(96, i, i, SSRC, bytes([i]) * (20 + i)).build() for i in range(10)]
    stream = b"".join(frame_rfc4571(p) for p in packets[:5])
    stream += b"\xff\x13garbage!" + b"".join(frame_rfc4571(p) for p in packets[5:8])
    stream += b"$\x00" + len(packets[8]).to_bytes(2, "big") + packets[8] + frame_rfc4571(packets[9])
    reader = Rfc4571Reader()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += reader.feed(stream[i : i + 7])
    assert got == packets
    assert reader.resyncs == 1 and reader.skipped == 10


def test_demuxer_reads_ffmpeg_vob_and_our_ps(clip: Clip) -> None:
    for ps in (clip.vob, b"".join(PsMuxer().mux(f.data, f.pts, f.keyframe) for f in clip.frames)):
        demux = PsDemuxer()
        units: list[AccessUnit] = []
        for i in range(0, len(ps), 1400):
            units += demux.feed(ps[i : i + 1400])
        units += demux.flush()
        assert [u.data for u in units] == [f.data for f in clip.frames]
        assert [u.keyframe for u in units] == [f.keyframe for f in clip.frames]
        assert all(u.codec == "h264" for u in units)
        assert units[0].pts is not None


def test_demuxer_skips_g711_audio_garbage_and_hevc_psm(clip: Clip) -> None:
    psm = program_stream_map(((0x1B, 0xE0), (0x90, 0xC0)))
    muxer = PsMuxer()
    ps = b""
    for k, f in enumerate(clip.frames[:10]):
        pack = muxer.mux(f.data, f.pts, f.keyframe)
        if f.keyframe:  # our PSM with an audio entry in place of the muxer's
            pack = pack.replace(muxer._psm, psm)
        ps += pack + b"".join(pes_packets(0xC0, b"\xd5" * 320, f.pts))
        if k == 3:
            ps += b"\x00\x00\x01\x47junk that is not PS" * 3  # e.g. raw audio ES in the stream
    demux = PsDemuxer()
    units = demux.feed(ps) + demux.flush()
    assert [u.data for u in units] == [f.data for f in clip.frames[:10]]
    assert demux.stats.audio_pes == 10 and demux.stats.resyncs == 1
    assert demux.stream_types == {0xE0: 0x1B, 0xC0: 0x90}
    # H.265 PSM type 0x24 names the codec
    hevc = PsDemuxer()
    hevc.feed(program_stream_map(((0x24, 0xE0),)))
    assert hevc._codec() == "hevc"


def test_pcap_file_layout(clip: Clip, tmp_path: Path) -> None:
    packets = ps_to_rtp(clip.vob, SSRC)
    assert len(split_packs(clip.vob)) > 1 and pack_scr(split_packs(clip.vob)[0]) is not None
    path = tmp_path / "x.pcap"
    assert write_pcap(path, packets) == len(packets)
    data = path.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1")
    first_len = int.from_bytes(data[24 + 8 : 24 + 12], "little")
    assert first_len == 14 + 20 + 8 + len(packets[0])
    assert data[24 + 16 + 14 + 20 + 8 :][: len(packets[0])] == packets[0]


# --- loopback sessions ----------------------------------------------------------------------------------


def test_udp_round_trip_decodes_every_frame(clip: Clip) -> None:
    port, source = open_receiver("udp", "0200000415", camera_id="cam-udp", enforce_ssrc=True)
    assert port > 0
    run = Collector(source)
    sender = PsRtpSender("udp", SSRC, ("127.0.0.1", port))
    sender.open()
    sender.start()
    for f in clip.frames:
        assert sender.send(f.data, f.pts, f.keyframe)
    sender.close()
    # UDP has no end: the last frame is complete only when a next one starts, so N-1 arrive.
    run.wait_frames(N_FRAMES - 1)
    run.stop()
    assert len(run.frames) == N_FRAMES - 1
    check_frames(run.frames, "cam-udp")
    stats = source.stats
    assert stats.packets == sender.stats.packets and stats.lost == 0 and stats.ssrc_mismatches == 0
    assert stats.frames == N_FRAMES - 1 and source.health.codec == "h264"
    assert source.health.state == "stopped"


def test_tcp_passive_round_trip(clip: Clip) -> None:
    port, source = open_receiver("tcp-passive", SSRC, camera_id="cam-tcp-p")
    run = Collector(source)
    sender = PsRtpSender("tcp-active", SSRC, ("127.0.0.1", port))
    sender.open()
    sender.start()
    for f in clip.frames:
        assert sender.send(f.data, f.pts, f.keyframe)
    sender.close()
    run.wait_end()  # the device hung up: the source flushes and ends
    assert len(run.frames) == N_FRAMES
    check_frames(run.frames, "cam-tcp-p")
    assert source.stats.connections == 1 and source.stats.tcp_resyncs == 0
    assert source.health.last_error == "media connection closed by the peer"


def test_tcp_active_round_trip_keyframes_only(clip: Clip) -> None:
    sender = PsRtpSender("tcp_passive", SSRC)
    sport = sender.open()
    port, source = open_receiver(
        "tcp_active", SSRC, camera_id="cam-tcp-a", decode="keyframes", remote=("127.0.0.1", sport)
    )
    run = Collector(source)
    assert wait_for(lambda: sender.connected)
    for f in clip.frames:
        assert sender.send(f.data, f.pts, f.keyframe)
    sender.close()
    run.wait_end()
    keyframes = sum(f.keyframe for f in clip.frames)
    assert len(run.frames) == keyframes == 2
    assert all(f.keyframe for f in run.frames)
    assert source.health.decode_mode == "keyframes" and source.health.gop_s == 1.0


def test_reordered_and_lossy_udp_still_decodes(clip: Clip) -> None:
    rng = random.Random(28181)
    packets = our_ps_packets(clip)
    kept = [p for i, p in enumerate(packets) if i < 3 or rng.random() >= 0.02]
    dropped = len(packets) - len(kept)
    assert dropped > 0
    shuffled: list[bytes] = []
    for i in range(0, len(kept), 6):  # shuffle within windows of 6 packets
        window = kept[i : i + 6]
        rng.shuffle(window)
        shuffled += window
    port, source = open_receiver("udp", SSRC, camera_id="cam-lossy")
    run = Collector(source)
    send_udp(port, shuffled)
    assert wait_for(lambda: source.stats.packets == len(kept))
    # give up the gaps (the reorder wait) and let the decoder drain what came out
    assert wait_for(lambda: len(source.receiver.reorder) == 0)
    done = source.stats.access_units
    wait_for(lambda: source.stats.frames + source.stats.decode_errors >= done - 1)
    run.stop()
    stats = source.stats
    assert 0 < len(run.frames) < N_FRAMES
    assert stats.reordered > 0 and 0 < stats.lost <= dropped and stats.dropped_units > 0
    for f in run.frames:
        assert f.image.shape == (HEIGHT, WIDTH, 3)


def test_ssrc_mismatch_dropped_when_enforced_learned_when_not(clip: Clip) -> None:
    wrong = our_ps_packets(clip, ssrc=12345)
    port, enforced = open_receiver("udp", SSRC, camera_id="enforced", enforce_ssrc=True)
    send_udp(port, wrong)
    assert wait_for(lambda: enforced.receiver.stats.bytes == sum(map(len, wrong)))
    assert enforced.stats.ssrc_mismatches == len(wrong) and enforced.stats.packets == 0
    assert enforced.stats.access_units == 0
    enforced.stop()

    port, learning = open_receiver("udp", SSRC, camera_id="learning", enforce_ssrc=False)
    run = Collector(learning)
    send_udp(port, wrong)
    run.wait_frames(N_FRAMES - 1)
    run.stop()
    assert len(run.frames) == N_FRAMES - 1
    assert learning.receiver.ssrc.current == 12345 and learning.stats.ssrc_mismatches == 0


def test_malformed_datagrams_are_counted_not_fatal(clip: Clip) -> None:
    port, source = open_receiver("udp", SSRC, camera_id="junk")
    run = Collector(source)
    junk = [b"", b"\x00" * 5, b"\x40" * 40, b"\x8f" + bytes(20)]
    good = our_ps_packets(clip)
    send_udp(port, [d for d in junk if d] + good)
    run.wait_frames(N_FRAMES - 1)
    run.stop()
    assert source.stats.malformed == 3 and len(run.frames) == N_FRAMES - 1


def test_open_errors() -> None:
    with pytest.raises(MediaError):
        open_receiver("sctp", SSRC)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        with pytest.raises(MediaError, match="cannot open"):
            open_receiver("udp", SSRC, host="127.0.0.1", port=busy.getsockname()[1])
    with pytest.raises(MediaError):
        PsRtpSender("udp", SSRC)  # no superior address
    receiver = RtpReceiver("udp", lambda u: None)
    with pytest.raises(MediaError):
        receiver.connect("127.0.0.1", 1)


async def test_factory_seam_receive_and_relay(clip: Clip) -> None:
    """The SIP side's view: open a receiver for an INVITE, relay that channel to a superior over TCP."""
    sources: list[GbMediaSource] = []

    def feeds(channel: str) -> GbMediaSource:
        for s in sources:
            if s.camera_id == channel:
                return s
        raise LookupError(channel)

    factory = GbMediaFactory(
        on_source=lambda req, src: sources.append(src), feeds=feeds, bind_host="127.0.0.1"
    )
    session = await factory.open_receiver(
        ReceiveRequest("34020000001320000001", "34020000001310000001", "udp", SSRC, "127.0.0.1")
    )
    await session.start("127.0.0.1", 9, SSRC)
    # the superior listens (we are tcp-active towards it) and decodes what we relay
    up_port, superior = open_receiver("tcp-passive", 20000001, camera_id="superior", enforce_ssrc=True)
    up = Collector(superior)
    relay = await factory.open_sender(
        SendRequest("city", "34020000001310000001", "tcp-active", 20000001, "127.0.0.1", up_port, "127.0.0.1")
    )
    assert relay.local_port > 0
    await relay.start()
    down = Collector(sources[0])
    send_udp(session.local_port, our_ps_packets(clip))
    down.wait_frames(N_FRAMES - 1)
    up.wait_frames(N_FRAMES - 2)  # one frame held at each hop
    await relay.close()
    up.wait_end()
    await session.close()
    down.thread.join(WAIT_S)
    assert len(up.frames) == N_FRAMES - 1  # the superior's session ended: its last frame is flushed
    check_frames(up.frames, "superior")
    assert superior.stats.ssrc_mismatches == 0
    with pytest.raises(LookupError):
        await factory.open_sender(SendRequest("city", "nope", "udp", 1, "127.0.0.1", 9, "127.0.0.1"))


# --- SIPp as an independent device ----------------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sip(method: str, port: int, sipp_port: int, cseq: int, body: str = "", to_tag: str = "") -> bytes:
    headers = [
        f"{method} sip:34020000001310000001@127.0.0.1:{sipp_port} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-media-{cseq}-{method}",
        "From: <sip:34020000002000000001@3402000000>;tag=platform1",
        f"To: <sip:34020000001310000001@3402000000>{to_tag}",
        "Call-ID: media-test-1@127.0.0.1",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:34020000002000000001@127.0.0.1:{port}>",
        "Max-Forwards: 70",
        f"Subject: 34020000001310000001:0200000415,34020000002000000001:{0}",
    ]
    if body:
        headers.append("Content-Type: APPLICATION/SDP")
    headers.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def test_sipp_device_plays_pcap_of_ffmpeg_ps(clip: Clip, tmp_path: Path) -> None:
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail("sipp not found: install the Debian package sip-tester")
    # PS made by FFmpeg's vob muxer (not ours), packetised into RTP with the SSRC we offer.
    write_pcap(tmp_path / "media_ps.pcap", ps_to_rtp(clip.vob, SSRC))
    port, source = open_receiver(
        "udp", "0200000415", camera_id="sipp-cam", host="127.0.0.1", enforce_ssrc=True
    )
    run = Collector(source)
    sipp_port, media_port = _free_udp_port(), _free_udp_port()
    proc = subprocess.Popen(
        [sipp, "-sf", str(SCENARIOS / "media_device_uas.xml"), "-i", "127.0.0.1", "-p", str(sipp_port)]
        + ["-mi", "127.0.0.1", "-mp", str(media_port), "-m", "1", "-nostdin", "-timeout", "60s"]
        + ["-trace_err", "-trace_logs"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sig = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sig.bind(("127.0.0.1", 0))
    sig.settimeout(1.0)
    me = sig.getsockname()[1]
    try:
        sdp = (
            "v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=video {port} RTP/AVP 96 98 97\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n"
            "a=rtpmap:98 H264/90000\r\na=rtpmap:97 MPEG4/90000\r\ny=0200000415\r\n"
        )
        answer = b""
        for _ in range(30):  # SIPp may still be starting: retransmit the INVITE like a UAC would
            sig.sendto(_sip("INVITE", me, sipp_port, 1, sdp), ("127.0.0.1", sipp_port))
            try:
                answer = sig.recv(65536)
            except TimeoutError:
                continue
            if answer.startswith(b"SIP/2.0 200"):
                break
        assert answer.startswith(b"SIP/2.0 200"), answer[:200]
        assert b"y=0200000415" in answer
        to_line = next(x for x in answer.decode().split("\r\n") if x.lower().startswith("to:"))
        tag = to_line[to_line.index(";tag=") :]
        sig.sendto(_sip("ACK", me, sipp_port, 1, to_tag=tag), ("127.0.0.1", sipp_port))
        run.wait_frames(N_FRAMES - 1)
        sig.sendto(_sip("BYE", me, sipp_port, 2, to_tag=tag), ("127.0.0.1", sipp_port))
        bye_ok = sig.recv(65536)
        assert bye_ok.startswith(b"SIP/2.0 200")
        assert proc.wait(30) == 0, proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    finally:
        sig.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        run.stop()
    assert len(run.frames) == N_FRAMES - 1
    check_frames(run.frames, "sipp-cam")
    assert source.stats.ssrc_mismatches == 0 and source.stats.lost == 0
