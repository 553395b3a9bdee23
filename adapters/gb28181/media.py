"""GB/T 28181 media: receive PS over RTP (UDP, TCP passive, TCP active) and decode it into frames.

A session is opened from the INVITE the SIP layer sends (``open_receiver``): the socket is bound at
once so its port can go into the SDP offer, and an I/O thread starts filling a bounded queue of access
units. :class:`GbMediaSource` then behaves like ``RtspSource``: ``run(on_frame)`` blocks in the camera
thread, decodes with PyAV and hands sampled :class:`~adapters.frames.Frame` objects to the analyzers,
``health`` is a :class:`~adapters.frames.StreamHealth`, ``stop()`` ends it.

Pipeline: socket -> RFC 4571 framing (TCP) -> RTP parse -> SSRC check -> reorder buffer -> PS demux
-> access units -> PyAV decode. :class:`PsRtpSender` is the other direction, for the cascade relay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol, TypeVar, cast

import av
import av.error
from av.video.codeccontext import VideoCodecContext

from adapters.frames import Frame, StreamHealth
from adapters.gb28181.media_api import ReceiveRequest, SendRequest
from adapters.gb28181.ps import AccessUnit, PsDemuxer, PsMuxer, PsRtpPacketizer, is_keyframe
from adapters.gb28181.rtp import (
    ReorderBuffer,
    Rfc4571Reader,
    RtpError,
    RtpPacket,
    SsrcFilter,
    frame_rfc4571,
    seq_delta,
    ssrc_from_y,
)
from adapters.stream_clock import FpsMeter, GopMeter, auto_mode

log = logging.getLogger(__name__)

TRANSPORTS = ("udp", "tcp_passive", "tcp_active")
DECODE_MODES = ("all", "keyframes", "auto")
CODECS = {"h264": "h264", "hevc": "hevc"}
UDP_RCVBUF = 4 << 20
POLL_S = 0.05


_T = TypeVar("_T")


class MediaError(RuntimeError):
    """A media session could not be set up (bad transport, port in use, no peer to connect to)."""


@dataclass
class MediaStats:
    """Health counters of one receive session (a snapshot; see ``RtpReceiver.stats``)."""

    packets: int = 0  # RTP packets accepted (right SSRC, parsed)
    bytes: int = 0  # RTP bytes received, all of them
    malformed: int = 0
    ssrc_mismatches: int = 0
    lost: int = 0
    reordered: int = 0
    duplicates: int = 0
    late: int = 0
    access_units: int = 0
    keyframes: int = 0
    dropped_units: int = 0  # damaged by loss, over a cap, or the queue to the decoder was full
    ps_resyncs: int = 0
    ps_skipped_bytes: int = 0
    tcp_resyncs: int = 0
    connections: int = 0
    frames: int = 0  # decoded (filled in by GbMediaSource)
    decode_errors: int = 0


def normalize_transport(transport: str) -> str:
    """ "udp", "tcp_passive" or "tcp_active" (the SIP side spells them with a hyphen)."""
    name = transport.strip().lower().replace("-", "_")
    if name not in TRANSPORTS:
        raise MediaError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    return name


def _parse_ssrc(ssrc: int | str | None) -> int | None:
    if ssrc is None or ssrc == "":
        return None
    return ssrc if isinstance(ssrc, int) else ssrc_from_y(ssrc)


class RtpReceiver:
    """One RTP/PS receive session on its own I/O thread; finished access units go to ``on_unit``.

    ``transport``: "udp" (we bind and receive), "tcp_passive" (we listen, the device connects) or
    "tcp_active" (we connect to the device's port, given to ``connect`` once the SDP answer names it).
    TCP is RFC 4571 framed. ``ssrc`` is the ``y=`` value (int or its decimal string); ``enforce_ssrc``
    drops every other SSRC, otherwise the first packet's SSRC is learned when it differs.
    """

    def __init__(
        self,
        transport: str,
        on_unit: Callable[[AccessUnit], None],
        ssrc: int | str | None = None,
        *,
        enforce_ssrc: bool = False,
        host: str = "0.0.0.0",  # noqa: S104 - media comes from devices on other hosts
        port: int = 0,
        reorder_capacity: int = 256,
        reorder_wait_s: float = 0.1,
        max_access_unit: int = 4 << 20,
    ) -> None:
        transport = normalize_transport(transport)
        self.transport = transport
        self.on_unit = on_unit
        self.host, self.port = host, port
        self.ssrc = SsrcFilter(_parse_ssrc(ssrc), enforce_ssrc)
        self.reorder = ReorderBuffer(reorder_capacity, reorder_wait_s)
        self.demux = PsDemuxer(max_access_unit)
        self.framer = Rfc4571Reader()
        self._counts = MediaStats()
        self._last_seq: int | None = None
        self._sock: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._remote: tuple[str, int] | None = None
        self._remote_set = threading.Event()
        self._stop = threading.Event()
        self.ended = threading.Event()  # the TCP peer closed, or the session was closed
        self.last_packet_at: float | None = None
        self.end_reason: str | None = None
        self._thread: threading.Thread | None = None
        self.local_port = 0

    # --- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> int:
        """Bind (and listen, for TCP passive), start the I/O thread; returns the local port."""
        try:
            if self.transport == "udp":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            if self.transport == "tcp_passive":
                sock.listen(1)
            sock.settimeout(POLL_S)
        except OSError as exc:
            raise MediaError(
                f"cannot open {self.transport} media port {self.host}:{self.port}: {exc}"
            ) from exc
        self._sock = sock
        self.local_port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"rtp-{self.local_port}", daemon=True)
        self._thread.start()
        return self.local_port

    def connect(self, host: str, port: int) -> None:
        """TCP active: the device's media address from its SDP answer; the I/O thread connects to it."""
        if self.transport != "tcp_active":
            raise MediaError("connect() is for tcp_active sessions")
        self._remote = (host, port)
        self._remote_set.set()

    def close(self) -> None:
        self._stop.set()
        self._remote_set.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        for s in (self._conn, self._sock):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self.ended.set()

    @property
    def stats(self) -> MediaStats:
        c = self._counts
        r, d = self.reorder.stats, self.demux.stats
        return MediaStats(
            packets=c.packets,
            bytes=c.bytes,
            malformed=c.malformed,
            ssrc_mismatches=self.ssrc.mismatches,
            lost=r.lost,
            reordered=r.reordered,
            duplicates=r.duplicates,
            late=r.late,
            access_units=d.access_units,
            keyframes=d.keyframes,
            dropped_units=d.dropped_units + c.dropped_units,
            ps_resyncs=d.resyncs,
            ps_skipped_bytes=d.skipped_bytes,
            tcp_resyncs=self.framer.resyncs,
            connections=c.connections,
        )

    # --- I/O thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if self.transport == "udp":
                self._run_udp()
            elif self.transport == "tcp_passive":
                self._run_tcp_passive()
            else:
                self._run_tcp_active()
        except Exception as exc:  # noqa: BLE001 - a media thread must end cleanly, with a reason
            log.exception("media session on port %d failed", self.local_port)
            self.end_reason = f"media thread failed: {exc}"
        finally:
            if not self._stop.is_set():  # the peer ended the session: hand on what is complete
                self._release(self.reorder.flush())
                self._deliver(self.demux.flush())
            self.ended.set()

    def _run_udp(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                self._release(self.reorder.poll(time.monotonic()))
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            self._datagram(data)

    def _run_tcp_passive(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            log.info("media port %d: device connected from %s:%d", self.local_port, *peer)
            self._stream(conn)
            return

    def _run_tcp_active(self) -> None:
        assert self._sock is not None
        while not self._remote_set.wait(POLL_S):
            if self._stop.is_set():
                return
        if self._stop.is_set() or self._remote is None:
            return
        sock = self._sock
        sock.settimeout(5.0)
        try:
            sock.connect(self._remote)
        except OSError as exc:
            self.end_reason = f"cannot connect to {self._remote[0]}:{self._remote[1]}: {exc}"
            log.warning("media: %s", self.end_reason)
            return
        sock.settimeout(POLL_S)
        self._sock = None  # the connection is the socket now
        self._stream(sock)

    def _stream(self, conn: socket.socket) -> None:
        self._conn = conn
        self._counts.connections += 1
        conn.settimeout(POLL_S)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                self._release(self.reorder.poll(time.monotonic()))
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                self.end_reason = f"media connection broke: {exc}"
                return
            if not data:
                self.end_reason = "media connection closed by the peer"
                return
            for packet in self.framer.feed(data):
                self._datagram(packet)

    # --- packet path -------------------------------------------------------------------------------

    def _datagram(self, data: bytes) -> None:
        now = time.monotonic()
        self._counts.bytes += len(data)
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            self._counts.malformed += 1
            log.debug("media port %d: dropped packet: %s", self.local_port, exc.reason)
            return
        if not self.ssrc.accept(packet.ssrc):
            return
        self._counts.packets += 1
        self.last_packet_at = now
        self._release(self.reorder.push(packet, now))

    def _release(self, packets: list[RtpPacket]) -> None:
        for packet in packets:
            if self._last_seq is not None and seq_delta(packet.sequence, self._last_seq) != 1:
                self.demux.discontinuity()
            self._last_seq = packet.sequence
            self._deliver(self.demux.feed(packet.payload))

    def _deliver(self, units: list[AccessUnit]) -> None:
        for unit in units:
            self.on_unit(unit)


class GbMediaSource:
    """A GB/T 28181 channel as a frame source: same contract as ``RtspSource``.

    ``run(on_frame)`` blocks until ``stop()`` or until the media session ends (TCP peer closed); the
    SIP layer owns re-INVITEs. Decode modes: "all" decodes every frame and converts only sampled ones,
    "keyframes" decodes keyframes only, "auto" switches to keyframes while the GOP is short enough for
    ``sample_fps``. ``sample_fps`` 0 hands on every decoded frame.
    """

    def __init__(
        self,
        camera_id: str,
        transport: str,
        ssrc: int | str | None = None,
        *,
        sample_fps: float = 0.0,
        decode: str = "all",
        enforce_ssrc: bool = False,
        host: str = "0.0.0.0",  # noqa: S104
        port: int = 0,
        stall_timeout_s: float = 10.0,
        queue_size: int = 64,
        **receiver_options: int | float,
    ) -> None:
        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, not {decode!r}")
        self.camera_id = camera_id
        self.sample_fps = sample_fps
        self.decode = decode
        self.stall_timeout_s = stall_timeout_s
        self.health = StreamHealth()
        self.receiver = RtpReceiver(
            transport,
            self._on_unit,
            ssrc,
            enforce_ssrc=enforce_ssrc,
            host=host,
            port=port,
            **receiver_options,  # type: ignore[arg-type]
        )
        self._queue: collections.deque[AccessUnit] = collections.deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._need_key = False  # the queue overflowed: skip to the next keyframe
        self._queue_dropped = 0
        self._frames = 0
        self._decode_errors = 0
        self._started = time.monotonic()
        self._subscribers: list[Callable[[AccessUnit], None]] = []
        self._mode = "keyframes" if decode == "keyframes" else "all"  # what run() decodes now

    # --- the SIP side's handle ---------------------------------------------------------------------

    def open(self) -> int:
        return self.receiver.open()

    @property
    def local_port(self) -> int:
        return self.receiver.local_port

    @property
    def transport(self) -> str:
        return self.receiver.transport

    def connect(self, host: str, port: int) -> None:
        self.receiver.connect(host, port)

    def stop(self) -> None:
        self._stop.set()
        self.receiver.close()
        with self._cond:
            self._cond.notify_all()

    close = stop

    @property
    def stats(self) -> MediaStats:
        s = self.receiver.stats
        s.dropped_units += self._queue_dropped
        s.frames, s.decode_errors = self._frames, self._decode_errors
        return s

    def stats_dict(self) -> dict[str, int]:
        return asdict(self.stats)

    # --- I/O thread -> decoder ---------------------------------------------------------------------

    def subscribe(self, callback: Callable[[AccessUnit], None]) -> Callable[[], None]:
        """Also hand every access unit to ``callback`` (on the I/O thread), e.g. a cascade relay.

        Returns the function that cancels the subscription.
        """
        with self._cond:
            self._subscribers.append(callback)

        def cancel() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return cancel

    def expect_ssrc(self, ssrc: int | str | None) -> None:
        """The device answered with this ``y=``: expect it unless packets already fixed the SSRC."""
        value = _parse_ssrc(ssrc)
        f = self.receiver.ssrc
        if value is not None and not f.learned:
            f.expected = f.current = value

    def _on_unit(self, unit: AccessUnit) -> None:
        for callback in list(self._subscribers):
            try:
                callback(unit)
            except Exception:  # noqa: BLE001 - one bad subscriber must not stop the camera
                log.exception("camera %s: access-unit subscriber failed", self.camera_id)
        if self._mode == "keyframes" and not unit.keyframe:
            return  # never decoded: do not let it take a place in the queue
        with self._cond:
            if self._need_key and not unit.keyframe:
                self._queue_dropped += 1
                return
            self._need_key = False
            if len(self._queue) >= self._queue_size:
                # The decoder cannot keep up: drop what waits and restart at the next keyframe.
                self._queue_dropped += len(self._queue)
                self._queue.clear()
                if not unit.keyframe:
                    self._need_key = True
                    self._queue_dropped += 1
                    return
            self._queue.append(unit)
            self._cond.notify()

    def _next_unit(self) -> AccessUnit | None:
        with self._cond:
            while not self._queue:
                if self._stop.is_set() or self.receiver.ended.is_set():
                    return None
                self._cond.wait(0.25)
                self._check_stall()
            return self._queue.popleft()

    def _check_stall(self) -> None:
        h = self.health
        last = self.receiver.last_packet_at
        idle = time.monotonic() - (last if last is not None else self._started)
        if idle > self.stall_timeout_s and h.state not in ("offline", "error"):
            h.state = "offline" if h.frames else "error"
            h.last_error = f"no media for {idle:.0f} s"
            h.stalls += 1
            log.warning("camera %s: %s", self.camera_id, h.last_error)

    # --- decoder -----------------------------------------------------------------------------------

    def run(self, on_frame: Callable[[Frame], None]) -> None:
        """Decode until stopped or the media session ends."""
        if not self.receiver.local_port:
            self.open()
        self._started = time.monotonic()
        h = self.health
        mode = self._mode
        h.decode_mode = mode
        ctx: VideoCodecContext | None = None
        codec_name: str | None = None
        period = 1.0 / self.sample_fps if self.sample_fps > 0 else 0.0
        last_sampled: float | None = None
        last_pts: float | None = None
        fps_meter, gops = FpsMeter(), GopMeter()
        pts_base: int | None = None
        try:
            while not self._stop.is_set():
                unit = self._next_unit()
                if unit is None:
                    break
                if unit.codec != codec_name:
                    codec_name = unit.codec
                    ctx = cast(VideoCodecContext, av.CodecContext.create(CODECS[unit.codec], "r"))
                    ctx.thread_type = "SLICE"
                    h.codec = ctx.name
                assert ctx is not None
                # 33-bit 90 kHz timestamps, unwrapped into seconds since the session's first one.
                pts_s: float | None = None
                if unit.pts is not None:
                    if pts_base is None:
                        pts_base = unit.pts
                    pts_s = ((unit.pts - pts_base) % (1 << 33)) / 90000.0
                if unit.keyframe and pts_s is not None:
                    gop = gops.keyframe(pts_s)
                    if gop is not None:
                        h.gop_s = gop
                        if self.decode == "auto":
                            mode = h.decode_mode = self._mode = auto_mode(self.sample_fps, gop)
                if mode == "keyframes" and not unit.keyframe:
                    continue
                packet = av.Packet(unit.data)
                if unit.pts is not None and pts_base is not None:
                    packet.pts = (unit.pts - pts_base) % (1 << 33)
                try:
                    frames = ctx.decode(packet)
                except av.error.FFmpegError:
                    self._decode_errors += 1
                    continue
                for frame in frames:
                    if frame.pts is not None:
                        pts = frame.pts / 90000.0
                    else:
                        pts = last_pts + 1.0 / (h.fps or 25.0) if last_pts is not None else 0.0
                    if last_pts is not None and pts < last_pts - 1.0:
                        last_sampled = None
                    last_pts = pts
                    now = time.time()
                    self._frames += 1
                    h.state, h.width, h.height = "online", frame.width, frame.height
                    h.last_frame_at, h.last_error = now, None
                    h.frames += 1
                    if (fps := fps_meter.tick()) is not None:
                        h.fps = fps
                    if period and last_sampled is not None and pts - last_sampled < period * 0.75:
                        continue
                    last_sampled = pts
                    image = frame.to_ndarray(format="bgr24")
                    on_frame(Frame(self.camera_id, now, image, pts, bool(frame.key_frame)))
            if ctx is not None and not self._stop.is_set():
                # The session ended: the decoder may still hold a frame or two.
                with contextlib.suppress(av.error.FFmpegError):
                    for frame in ctx.decode(None):
                        self._frames += 1
                        h.frames += 1
                        pts = frame.pts / 90000.0 if frame.pts is not None else (last_pts or 0.0)
                        if period and last_sampled is not None and pts - last_sampled < period * 0.75:
                            continue
                        last_sampled = pts
                        image = frame.to_ndarray(format="bgr24")
                        on_frame(Frame(self.camera_id, time.time(), image, pts, bool(frame.key_frame)))
        finally:
            if self.receiver.ended.is_set() and not self._stop.is_set():
                h.state = "offline" if h.frames else "error"
                h.last_error = self.receiver.end_reason or "media session ended"
            else:
                h.state = "stopped"
            self.receiver.close()


def open_receiver(
    transport: str,
    ssrc: int | str | None,
    *,
    camera_id: str = "",
    host: str = "0.0.0.0",  # noqa: S104
    port: int = 0,
    enforce_ssrc: bool = False,
    sample_fps: float = 0.0,
    decode: str = "all",
    remote: tuple[str, int] | None = None,
    stall_timeout_s: float = 10.0,
    queue_size: int = 64,
) -> tuple[int, GbMediaSource]:
    """Open a receive session for an INVITE; returns (local media port for the SDP, the source).

    For "tcp_active" pass the device's address as ``remote`` or call ``source.connect(host, port)``
    once its SDP answer is in. Hand the source to a camera runner (``source.run(on_frame)`` in a thread)
    and call ``source.stop()`` on BYE. ``queue_size`` access units wait for the decoder; when it falls
    behind, the queue is emptied and decoding resumes at the next keyframe (counted in
    ``stats.dropped_units``).
    """
    source = GbMediaSource(
        camera_id,
        transport,
        ssrc,
        sample_fps=sample_fps,
        decode=decode,
        enforce_ssrc=enforce_ssrc,
        host=host,
        port=port,
        stall_timeout_s=stall_timeout_s,
        queue_size=queue_size,
    )
    local_port = source.open()
    if remote is not None:
        source.connect(*remote)
    return local_port, source


@dataclass
class SenderStats:
    frames: int = 0
    packets: int = 0
    bytes: int = 0
    dropped_frames: int = 0  # before the peer connected, or until the next keyframe after it did


class PsRtpSender:
    """Relays access units to a superior platform as PS over RTP with the superior's SSRC.

    "udp": send to ``remote``; "tcp_active": connect to ``remote`` (RFC 4571); "tcp_passive": listen on
    ``port`` and send once the superior connected. Frames before the peer is there, or before the first
    keyframe, are dropped (counted): the superior must start at a keyframe. ``send`` never blocks for
    long; a broken TCP connection ends the sender (``alive`` turns False).
    """

    def __init__(
        self,
        transport: str,
        ssrc: int | str,
        remote: tuple[str, int] | None = None,
        *,
        host: str = "0.0.0.0",  # noqa: S104
        port: int = 0,
        codec: str = "h264",
        payload_type: int = 96,
        max_payload: int = 1400,
        connect_timeout_s: float = 5.0,
    ) -> None:
        transport = normalize_transport(transport)
        if transport != "tcp_passive" and remote is None:
            raise MediaError(f"{transport} needs the superior's media address")
        parsed = _parse_ssrc(ssrc)
        assert parsed is not None
        self.transport = transport
        self.remote = remote
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self.codec = codec
        self.muxer = PsMuxer(codec)
        self.packetizer = PsRtpPacketizer(parsed, payload_type, max_payload)
        self.stats = SenderStats()
        self.local_port = 0
        self._sock: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._started_at_key = False
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._last_pts: int | None = None

    @property
    def alive(self) -> bool:
        return not self._closed.is_set()

    @property
    def connected(self) -> bool:
        return self.transport == "udp" or self._conn is not None

    def open(self) -> int:
        """Bind (and listen, for TCP passive); returns the local port for the SDP answer."""
        try:
            if self.transport == "udp":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            if self.transport == "tcp_passive":
                sock.listen(1)
                sock.settimeout(POLL_S)
        except OSError as exc:
            raise MediaError(f"cannot open {self.transport} sender: {exc}") from exc
        self._sock = sock
        self.local_port = sock.getsockname()[1]
        if self.transport == "tcp_passive":
            self._accept_thread = threading.Thread(
                target=self._accept, name=f"ps-send-{self.local_port}", daemon=True
            )
            self._accept_thread.start()
        return self.local_port

    def start(self) -> None:
        """After the superior's ACK. TCP active connects now (blocking, ``connect_timeout_s``)."""
        if not self.local_port:
            self.open()
        if self.transport != "tcp_active" or self._conn is not None:
            return
        assert self._sock is not None and self.remote is not None
        self._sock.settimeout(self.connect_timeout_s)
        try:
            self._sock.connect(self.remote)
        except OSError as exc:
            raise MediaError(f"cannot connect to {self.remote[0]}:{self.remote[1]}: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conn = self._sock

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(self.connect_timeout_s)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            log.info("cascade media: superior connected from %s:%d", *peer)
            with self._lock:
                self._conn = conn
            return

    def send(
        self, access_unit: bytes, pts: int, keyframe: bool | None = None, dts: int | None = None
    ) -> bool:
        """Send one Annex-B access unit (90 kHz ``pts``); False when it was dropped."""
        if self._closed.is_set() or self._sock is None:
            return False
        if keyframe is None:
            keyframe = is_keyframe(self.codec, access_unit)
        if not self.connected or (not self._started_at_key and not keyframe):
            self.stats.dropped_frames += 1
            return False
        self._started_at_key = True
        ps = self.muxer.mux(access_unit, pts, keyframe, dts)
        packets = self.packetizer.packetize(ps, pts)
        try:
            if self.transport == "udp":
                assert self.remote is not None
                for p in packets:
                    self._sock.sendto(p, self.remote)
            else:
                assert self._conn is not None
                self._conn.sendall(b"".join(frame_rfc4571(p) for p in packets))
        except OSError as exc:
            log.warning("cascade media: send failed: %s", exc)
            if self.transport != "udp":
                self.close()
            return False
        self.stats.frames += 1
        self.stats.packets += len(packets)
        self.stats.bytes += sum(len(p) for p in packets)
        return True

    def send_unit(self, unit: AccessUnit) -> bool:
        """Send an access unit from a demuxer or a camera; follows codec changes, fills missing PTS."""
        if unit.codec != self.codec:
            self.codec = unit.codec
            self.muxer = PsMuxer(unit.codec)
        pts = unit.pts
        if pts is None:
            pts = (self._last_pts + 3600) if self._last_pts is not None else 0
        self._last_pts = pts
        return self.send(unit.data, pts, unit.keyframe, unit.dts)

    def close(self) -> None:
        self._closed.set()
        for s in (self._conn, self._sock):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        if self._accept_thread is not None and self._accept_thread is not threading.current_thread():
            self._accept_thread.join(1.0)


# --- the seam the SIP side calls (adapters.gb28181.media_api) ---------------------------------------------


class UnitFeed(Protocol):
    """Where a relay gets a channel's access units: :class:`GbMediaSource` is one."""

    def subscribe(self, callback: Callable[[AccessUnit], None]) -> Callable[[], None]: ...


class FeedFollower:
    """One subscription that can move between feeds: a relay keeps its sender (SSRC, RTP sequence, TCP
    connection) while the camera behind it gets a new feed (its runner restarted). ``attach(feed)`` ends
    the subscription to the old feed and resumes on the new one at its next keyframe (a superior's
    decoder cannot join a GOP in the middle); ``attach(None)`` waits for a feed."""

    def __init__(self, name: str, callback: Callable[[AccessUnit], None]) -> None:
        self.name = name
        self.callback = callback
        self.feed: UnitFeed | None = None
        self.moves = 0  # feeds replaced by a newer one
        self.skipped = 0  # units of a new feed before its first keyframe
        self._cancel: Callable[[], None] | None = None
        self._generation = 0
        self._need_key = True
        self._closed = False
        self._lock = threading.Lock()

    def attach(self, feed: UnitFeed | None) -> None:
        with self._lock:
            if self._closed or feed is self.feed:
                return
            moved = self.feed is not None and feed is not None
            old, self._cancel = self._cancel, None
            self._generation += 1
            self.feed, self._need_key = feed, True
            if feed is not None:
                self._cancel = feed.subscribe(self._deliverer(self._generation))
            if moved:
                self.moves += 1
        if old is not None:  # outside the lock: it may wait for the old feed's delivery thread
            old()
        if moved:
            log.info("%s: relay moved to the camera's new feed; resuming at its next keyframe", self.name)

    def _deliverer(self, generation: int) -> Callable[[AccessUnit], None]:
        def deliver(unit: AccessUnit) -> None:
            # No lock here: attach() may be cancelling this very subscription and waiting for it.
            if generation != self._generation:
                return  # a unit of the feed just replaced
            if self._need_key:
                if not unit.keyframe:
                    self.skipped += 1
                    return
                self._need_key = False
            self.callback(unit)

        return deliver

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._generation += 1
            old, self._cancel, self.feed = self._cancel, None, None
        if old is not None:
            old()


class ReceiveSession:
    """A :class:`~adapters.gb28181.media_api.MediaReceiver`: one INVITE's receive side."""

    def __init__(self, request: ReceiveRequest, source: GbMediaSource) -> None:
        self.request = request
        self.source = source

    @property
    def local_port(self) -> int:
        return self.source.local_port

    async def start(self, remote_host: str, remote_port: int, ssrc: int | None) -> None:
        self.source.expect_ssrc(ssrc)
        if self.source.transport == "tcp_active":
            self.source.connect(remote_host, remote_port)

    async def close(self) -> None:
        await asyncio.to_thread(self.source.stop)


class RelaySession:
    """A :class:`~adapters.gb28181.media_api.MediaSender`: a channel relayed to a superior."""

    def __init__(self, request: SendRequest, sender: PsRtpSender, feed: UnitFeed) -> None:
        self.request = request
        self.sender = sender
        self.feed = feed
        self._cancel: Callable[[], None] | None = None

    @property
    def local_port(self) -> int:
        return self.sender.local_port

    def _on_unit(self, unit: AccessUnit) -> None:
        if self.sender.alive:
            self.sender.send_unit(unit)

    async def start(self) -> None:
        await asyncio.to_thread(self.sender.start)
        self._cancel = self.feed.subscribe(self._on_unit)

    async def close(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
        await asyncio.to_thread(self.sender.close)


class GbMediaFactory:
    """Implements ``MediaReceiverFactory`` and ``MediaRelayFactory`` for the SIP roles.

    ``on_source(request, source)`` receives each new :class:`GbMediaSource` (the gateway runs it like any
    camera: ``source.run(on_frame)`` in a thread). ``feeds(channel_id)`` returns the :class:`UnitFeed` of
    a channel shared upwards, or raises ``LookupError``.
    """

    def __init__(
        self,
        on_source: Callable[[ReceiveRequest, GbMediaSource], None] | None = None,
        feeds: Callable[[str], UnitFeed] | None = None,
        *,
        bind_host: str = "0.0.0.0",  # noqa: S104
        enforce_ssrc: bool = False,
        sample_fps: float = 0.0,
        decode: str = "all",
        stall_timeout_s: float = 10.0,
        port_range: tuple[int, int] | None = None,
    ) -> None:
        self.on_source = on_source
        self.feeds = feeds
        self.bind_host = bind_host
        self.port_range = port_range  # every media port (receive and relay) from here; None: any
        self._next_port = 0
        self.enforce_ssrc = enforce_ssrc
        self.sample_fps = sample_fps
        self.decode = decode
        self.stall_timeout_s = stall_timeout_s

    def _allocate(self, open_at: Callable[[int], _T]) -> _T:
        """``open_at(port)`` on the next free port of ``port_range`` (round robin), or on any port."""
        if self.port_range is None:
            return open_at(0)
        low, high = self.port_range
        count = high - low + 1
        for i in range(count):
            port = low + (self._next_port + i) % count
            try:
                opened = open_at(port)
            except MediaError:
                continue  # in use
            self._next_port = (self._next_port + i + 1) % count
            return opened
        raise MediaError(f"no free media port in {low}-{high} (gb28181.rtp_ports)")

    async def open_receiver(self, request: ReceiveRequest) -> ReceiveSession:
        _, source = self._allocate(
            lambda port: open_receiver(
                request.transport,
                request.ssrc,
                camera_id=request.channel_id,
                host=self.bind_host,
                port=port,
                enforce_ssrc=self.enforce_ssrc,
                sample_fps=self.sample_fps,
                decode=self.decode,
                stall_timeout_s=self.stall_timeout_s,
            )
        )
        if self.on_source is not None:
            self.on_source(request, source)
        return ReceiveSession(request, source)

    async def open_sender(self, request: SendRequest) -> RelaySession:
        if self.feeds is None:
            raise LookupError(f"no stream to relay for {request.channel_id}")
        feed = self.feeds(request.channel_id)

        def open_at(port: int) -> PsRtpSender:
            sender = PsRtpSender(
                request.transport,
                request.ssrc,
                (request.remote_host, request.remote_port),
                host=self.bind_host,
                port=port,
            )
            sender.open()
            return sender

        return RelaySession(request, self._allocate(open_at), feed)
