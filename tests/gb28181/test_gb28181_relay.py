"""An RTSP camera relayed to a GB/T 28181 superior (the cascade role answers INVITE for any shared
channel): SIPp plays the superior's signalling (INVITE with its y= SSRC, ACK, BYE), the test is its
media receiver (UDP, TCP with the superior listening, TCP with the superior connecting). The received PS
over RTP is demuxed with our ps.py and decoded with PyAV, and its H.264 NAL units are compared with the
camera's own packets (the clip buffer keeps them as demuxed): a remux, never a re-encode.

A relay follows its camera: when the camera is edited (PUT /api/cameras/{id}) its runner restarts with
a new packet feed, and the superior keeps receiving PS on the same RTP stream, from the new feed's first
keyframe on.

Also the packet feed itself: avcC (MP4-style) packets become Annex-B units with parameter sets at
keyframes, and a slow subscriber loses whole GOPs, counted, never a frame in the middle of one.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, cast

import av
import pytest

from adapters.gb28181.media import PsRtpSender, RelaySession
from adapters.gb28181.media_api import StreamUnavailable
from adapters.gb28181.ps import AccessUnit, PsDemuxer, nal_units
from adapters.gb28181.rtp import Rfc4571Reader, RtpPacket
from adapters.rtsp.packet_feed import FeedError, PacketFeed, parse_extradata
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from tests.conftest import wait_until, write_config
from tests.delivery.test_uplink_delivery import auth
from tests.gb28181.sipp import Sipp, free_port

pytestmark = pytest.mark.timeout(120)

DOMAIN = "3402000000"
OUR_ID = "34020000002000000009"
SHARED = "34020000001310000101"  # the id the superior assigned to camera gate-1
SSRC = 200000777  # y=0200000777 in superior_invite.xml
AUD = 9


class MediaSink:
    """The superior's media side. ``udp``: a UDP port; ``tcp-passive``: the superior listens and we
    connect; ``tcp-active``: the superior connects to the port of our SDP answer. RFC 4571 over TCP."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.packets: list[bytes] = []
        self.eof = threading.Event()
        self._stop = threading.Event()
        kind = socket.SOCK_DGRAM if mode == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        if mode == "udp":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        if mode == "tcp-passive":
            self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self._thread: threading.Thread | None = None

    def start(self, remote_port: int | None = None) -> None:
        self._thread = threading.Thread(target=self._run, args=(remote_port,), daemon=True)
        self._thread.start()

    def _run(self, remote_port: int | None) -> None:
        if self.mode == "udp":
            while not self._stop.is_set():
                try:
                    self.packets.append(self.sock.recv(65536))
                except TimeoutError:
                    continue
            return
        if self.mode == "tcp-passive":
            while True:
                try:
                    conn, _ = self.sock.accept()
                    break
                except TimeoutError:
                    if self._stop.is_set():
                        return
        else:
            assert remote_port is not None
            self.sock.settimeout(5)
            self.sock.connect(("127.0.0.1", remote_port))
            conn = self.sock
        conn.settimeout(0.1)
        reader = Rfc4571Reader()
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            if not data:
                self.eof.set()  # our sender closed the connection: the BYE ended the relay
                return
            self.packets.extend(reader.feed(data))

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()


def relay_gateway(tmp: Path, rtsp_url: str, sipp_port: int, cascade_port: int) -> Gateway:
    superior = {
        "name": "park",
        "server_id": "34020000002000000100",
        "server_domain": DOMAIN,
        "host": "127.0.0.1",
        "port": sipp_port,
        "local_id": OUR_ID,
        "local_domain": DOMAIN,
        "password_env": "VIGIL_TEST_GB_UPLINK_PW",
        "retry_s": 0.5,
        # superior_ooc.xml checks that our Catalog answer carries SumNum 3
        "channels": [
            {"camera": "gate-1", "id": SHARED},
            {"camera": "tank-farm", "id": "34020000001310000102"},
            {"camera": "reactor", "id": "34020000001310000103"},
        ],
    }
    camera = {"id": "gate-1", "name": "North gate", "url": rtsp_url}  # no scenes: decoded, relayed
    config = load_config(
        write_config(
            tmp,
            cameras=[camera],
            gb28181={
                "cascade": {"host": "127.0.0.1", "port": cascade_port, "tcp": False, "superiors": [superior]}
            },
        ),
        environ={},
    )
    gw = Gateway(config)
    upgrade(gw.db.engine)
    return gw


def demux(packets: list[bytes]) -> tuple[list[RtpPacket], list[AccessUnit]]:
    rtp = [RtpPacket.parse(p) for p in packets]
    demuxer = PsDemuxer()
    units: list[AccessUnit] = []
    for p in rtp:
        units += demuxer.feed(p.payload)
    return rtp, units + demuxer.flush()


def slices(data: bytes) -> list[bytes]:
    return [n for n in nal_units(data) if n[0] & 0x1F != AUD]


SETUP = {
    "udp": ("RTP/AVP", "recvonly"),
    "tcp-passive": ("TCP/RTP/AVP", "setup:passive"),
    "tcp-active": ("TCP/RTP/AVP", "setup:active"),
}


@pytest.mark.parametrize("media", ["udp", "tcp-passive", "tcp-active"])
async def test_rtsp_camera_is_relayed_to_superior(
    media: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, rtsp: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_UPLINK_PW", "uplink-pw")
    cascade_port = free_port()
    sink = MediaSink(media)
    proto, setup = SETUP[media]
    keys = {"channel": SHARED, "rtp_port": str(sink.port), "proto": proto, "setup": setup}
    sipp = Sipp(
        "superior_invite.xml",
        tmp_path,
        remote_port=cascade_port,
        ooc="superior_ooc.xml",
        timeout_s=60,
        extra=[a for k, v in keys.items() for a in ("-key", k, v)],
    )
    if media != "tcp-active":
        sink.start()
    await sipp.start()  # first: the gateway registers as soon as it starts; the INVITE waits a second
    gw = relay_gateway(tmp_path, rtsp.url("vtest"), sipp.port, cascade_port)
    client = await aiohttp_client(create_app(gw))
    try:
        feed = gw.gb28181.packet_feed("gate-1")  # attached when the camera started, before the SIP roles
        assert feed is not None
        runner = gw.analytics.runners["gate-1"]
        link = gw.gb28181.link("park")
        assert link is not None
        relay = await wait_until(
            lambda: next(iter(link.sessions.values()), None), 20, "the superior's INVITE"
        )
        assert relay.channel_id == SHARED and relay.answer.ssrc == "0200000777"
        if media == "tcp-active":  # the superior connects to the port of our answer
            sink.start(relay.answer.port)
        sender = cast(RelaySession, relay.sender).sender
        assert isinstance(sender, PsRtpSender)
        await wait_until(lambda: sender.stats.frames >= 25, 30, "25 relayed frames")
        # The test has seen enough: an INFO in the dialog tells the SIPp superior to hang up.
        info = relay.dialog.create_request(link.agent.endpoint, "INFO")
        assert (await link.agent.endpoint.request(info, relay.dialog.peer)).status == 200
        (await sipp.wait()).check()  # its 200 echoed y= with PS/90000; our 200 answered its BYE
        await wait_until(lambda: not link.sessions, 10, "the relay session ended by BYE")
        assert not sender.alive and feed.subscribers == 0
        sent = sender.stats.packets
        if media == "udp":
            await wait_until(lambda: len(sink.packets) >= sent, 10, "every sent RTP packet")
        else:
            await wait_until(sink.eof.is_set, 10, "our side closing the media connection after BYE")
        assert len(sink.packets) == sent and sender.stats.packets == sent  # nothing after BYE
        camera_packets = {p.pts: p.data for p in runner.clip_buffer.packets()} if runner.clip_buffer else {}
    finally:
        sink.close()
        await client.close()
        await sipp.stop()

    rtp, units = demux(sink.packets)
    assert {p.ssrc for p in rtp} == {SSRC} and {p.payload_type for p in rtp} == {96}
    assert units and units[0].keyframe and units[0].codec == "h264"
    ctx = av.CodecContext.create("h264", "r")
    frames = []
    for unit in units:
        frames += ctx.decode(av.Packet(unit.data))
    frames += ctx.decode(None)
    assert len(frames) >= len(units) - 1  # every relayed frame decodes (the last may stay in the decoder)
    assert {(f.width, f.height) for f in frames} == {(runner.health.width, runner.health.height)}
    # A remux: the relayed NAL units are the camera's, byte for byte, at the same timestamps.
    assert camera_packets, "the clip buffer holds the camera's demuxed packets"
    matched = [u for u in units if u.pts in camera_packets]
    assert len(matched) >= len(units) - 2  # the oldest may have left the clip buffer
    for unit in matched:
        assert slices(unit.data) == slices(camera_packets[unit.pts])


async def test_relay_follows_the_camera_when_its_runner_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, rtsp: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_UPLINK_PW", "uplink-pw")
    cascade_port = free_port()
    sink = MediaSink("udp")
    keys = {"channel": SHARED, "rtp_port": str(sink.port), "proto": "RTP/AVP", "setup": "recvonly"}
    sipp = Sipp(
        "superior_invite.xml",
        tmp_path,
        remote_port=cascade_port,
        ooc="superior_ooc.xml",
        timeout_s=60,
        extra=[a for k, v in keys.items() for a in ("-key", k, v)],
    )
    sink.start()
    await sipp.start()
    gw = relay_gateway(tmp_path, rtsp.url("vtest"), sipp.port, cascade_port)
    client = await aiohttp_client(create_app(gw))
    try:
        old_runner, old_feed = gw.analytics.runners["gate-1"], gw.gb28181.packet_feed("gate-1")
        assert old_feed is not None
        link = gw.gb28181.link("park")
        assert link is not None
        relay = await wait_until(
            lambda: next(iter(link.sessions.values()), None), 20, "the superior's INVITE"
        )
        sender = cast(RelaySession, relay.sender).sender
        await wait_until(lambda: sender.stats.frames >= 10, 30, "10 relayed frames")
        # The camera is edited (same URL): its runner restarts with a new packet feed.
        camera = {"id": "gate-1", "name": "North gate (edited)", "url": rtsp.url("vtest")}
        resp = await client.put("/api/cameras/gate-1", json=camera, headers=auth(gw))
        assert resp.status == 200, await resp.text()
        runner = gw.analytics.runners["gate-1"]
        feed = gw.gb28181.packet_feed("gate-1")
        assert runner is not old_runner and feed is not None and feed is not old_feed
        assert old_feed.subscribers == 0 and feed.subscribers == 1  # the relay moved
        (follower,) = gw.gb28181._followers["gate-1"]
        assert follower.feed is feed and follower.moves == 1
        moved_at = sender.stats.frames  # the old runner is stopped: what comes now is the new feed's
        await wait_until(
            lambda: sender.stats.frames >= moved_at + 25, 30, "25 frames of the new feed relayed"
        )
        assert sender.alive and feed.stats()["delivered"] >= 25
        info = relay.dialog.create_request(link.agent.endpoint, "INFO")
        assert (await link.agent.endpoint.request(info, relay.dialog.peer)).status == 200
        (await sipp.wait()).check()
        await wait_until(lambda: not link.sessions, 10, "the relay session ended by BYE")
        assert feed.subscribers == 0 and not gw.gb28181._followers["gate-1"]
        sent = sender.stats.packets
        await wait_until(lambda: len(sink.packets) >= sent, 10, "every sent RTP packet")
    finally:
        sink.close()
        await client.close()
        await sipp.stop()

    # One RTP stream (the superior's SSRC, no sequence gap) across the restart, and every frame decodes:
    # the new feed's part starts at a keyframe, with its parameter sets.
    rtp, units = demux(sink.packets)
    assert {p.ssrc for p in rtp} == {SSRC}
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in zip(rtp, rtp[1:], strict=False))
    ctx = av.CodecContext.create("h264", "r")
    frames = []
    for unit in units:
        frames += ctx.decode(av.Packet(unit.data))
    frames += ctx.decode(None)
    assert len(units) >= moved_at + 25 and len(frames) >= len(units) - 1


async def test_unshared_or_stopped_channel_has_no_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_UPLINK_PW", "uplink-pw")
    gw = relay_gateway(tmp_path, "rtsp://127.0.0.1:9/none", free_port(), free_port())
    client = await aiohttp_client(create_app(gw))
    try:
        with pytest.raises(LookupError, match="not shared"):
            gw.gb28181._feed("34020000001310000999")
        # shared but without a stream: StreamUnavailable (answered 480) saying why
        with pytest.raises(StreamUnavailable, match="reactor .* does not exist"):
            gw.gb28181._feed("34020000001310000103")
        feed = gw.gb28181._feed(SHARED)  # running, not connected yet: follows the runner's packet feed
        assert feed.current() is gw.gb28181.packet_feed("gate-1")
    finally:
        await client.close()


# --- the packet feed on its own ----------------------------------------------------------------------


def mp4_of(vtest: Path, out: Path, frames: int = 30) -> Path:
    """A short H.264 MP4: its packets are length-prefixed with avcC extradata (not Annex-B)."""
    with av.open(str(vtest)) as src, av.open(str(out), "w", format="mp4") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"g": "10", "bf": "0", "preset": "ultrafast"}
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            img = frame.reformat(width=320, height=240, format="yuv420p")
            img.pts = i
            for packet in stream.encode(img):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out


def test_avcc_packets_become_annexb_units_with_parameter_sets(vtest: Path, tmp_path: Path) -> None:
    path = mp4_of(vtest, tmp_path / "clip.mp4")
    feed = PacketFeed("cam")
    got: list[AccessUnit] = []
    cancel = feed.subscribe(got.append)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sets, size = parse_extradata("h264", stream.codec_context.extradata)
        assert size == 4 and [n[0] & 0x1F for n in sets] == [7, 8]
        feed.reset(stream)
        expected = []
        for packet in container.demux(stream):
            assert packet.size == 0 or not bytes(packet).startswith(b"\x00\x00\x00\x01")
            if packet.size and packet.pts is not None and stream.time_base is not None:
                expected.append(int(packet.pts * stream.time_base * 90000))
            feed.feed(packet, time.time())
    deadline = time.monotonic() + 10
    while len(got) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    cancel()
    assert len(got) == 30 and feed.stats()["delivered"] == 30 and feed.stats()["dropped"] == 0
    assert all(u.keyframe == (i % 10 == 0) for i, u in enumerate(got))
    assert [n[0] & 0x1F for n in nal_units(got[0].data)][:2] == [7, 8]  # SPS/PPS put in front
    # A decoder with no extradata at all decodes the units: they stand alone as a live stream.
    ctx = av.CodecContext.create("h264", "r")
    frames = [f for u in got for f in ctx.decode(av.Packet(u.data))] + list(ctx.decode(None))
    assert len(frames) == 30 and (frames[0].width, frames[0].height) == (320, 240)
    assert [u.pts for u in got] == expected and expected == sorted(expected)  # 90 kHz


def test_slow_subscriber_loses_whole_gops_counted() -> None:
    feed = PacketFeed("cam", queue_size=4)
    feed.configure("h264", None, None)
    gate = threading.Event()
    got: list[AccessUnit] = []

    def slow(unit: AccessUnit) -> None:
        gate.wait(5)
        got.append(unit)

    cancel = feed.subscribe(slow)
    idr, p = (
        b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x00\x01\x65\x88",
        b"\x00\x00\x00\x01\x41\x9a",
    )
    feed.publish(feed.unit(p, 0, 0, False))  # before any keyframe: waited for, not delivered
    for i in range(1, 21):  # keyframe every 5 units; the subscriber is stuck on the first
        key = i % 5 == 1
        feed.publish(feed.unit(idr if key else p, i * 3600, i * 3600, key))
    gate.set()
    deadline = time.monotonic() + 5
    while (
        feed.stats()["delivered"] + feed.stats()["dropped"] + feed.stats()["waited"] < 21
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    stats = feed.stats()
    cancel()
    assert stats["waited"] == 1 and stats["delivered"] + stats["dropped"] == 20 and stats["dropped"] > 0
    # What arrived is whole: every run starts at a keyframe and has no gap inside.
    for a, b in zip(got, got[1:], strict=False):
        assert b.keyframe or b.pts == a.pts + 3600  # type: ignore[operator]
    with pytest.raises(FeedError):
        feed.unit(b"\x00\x00\x00", 0, 0, False)
