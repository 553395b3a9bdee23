"""RTSP (and file) ingest with PyAV: reconnect with backoff, stall detection, per-rate sampling.

Runs in its own thread; PyAV releases the GIL while it decodes, so many cameras share a process.

Decode modes: "all" decodes every frame and converts only the sampled ones; "keyframes" demuxes every
packet but decodes only keyframes (about 1/8 of the CPU at a 1 s GOP); "auto" picks keyframes while the
measured GOP is short enough for the sampling rate, else all.

An optional packet tap (the alarm clip buffer) sees every demuxed video packet before any decode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, Protocol

import av
import av.error
from tenacity import Retrying, retry_if_exception, wait_exponential_jitter

from adapters.frames import Frame, StreamHealth
from adapters.redact import redact_text, redact_url
from adapters.stream_clock import FpsMeter, GopMeter, auto_mode

log = logging.getLogger(__name__)

DECODE_MODES = ("all", "keyframes", "auto")
# FFmpeg opens any text file as "video" (its tty demuxer renders ANSI art): no camera sends that.
TEXT_FORMATS = frozenset({"tty"})
TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})
# A session that delivered frames this long counts as healthy: its failure restarts the backoff.
HEALTHY_SESSION_S = 2.0


class StreamError(RuntimeError):
    """The stream could not be opened, broke, stalled or ended; the source reconnects."""

    def __init__(self, message: str, healthy: bool = False) -> None:
        super().__init__(message)
        self.healthy = healthy  # the session ran fine for a while before this


class PacketTap(Protocol):
    """Receives the encoded video packets of each connection, e.g. a ClipBuffer for alarm clips."""

    def reset(self, stream: av.video.stream.VideoStream) -> None:
        """A new connection starts: codec parameters and timestamps may differ from the last one."""

    def feed(self, packet: av.Packet, wall: float) -> None:
        """One demuxed packet and the epoch time it arrived; must be quick (the camera thread waits)."""


class _Session:
    """Per-connection state shared by the ingest thread and the watchdog."""

    def __init__(self) -> None:
        self.last_progress = time.monotonic()  # last decoded frame (or the open)
        self.first_frame_at: float | None = None
        self.stalled: str | None = None  # the stall message, once declared


class RtspSource:
    """Decodes a stream and hands sampled frames to ``on_frame`` until ``stop()``."""

    def __init__(
        self,
        camera_id: str,
        url: str,
        sample_fps: float,
        transport: str = "tcp",
        open_timeout_s: float = 10.0,
        stall_timeout_s: float = 5.0,
        max_backoff_s: float = 30.0,
        decode: str = "all",
        tap: PacketTap | None = None,
    ) -> None:
        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, not {decode!r}")
        self.camera_id = camera_id
        self.url = url
        self.sample_fps = sample_fps
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_backoff_s = max_backoff_s
        self.decode = decode
        self.tap = tap
        self.health = StreamHealth()
        self._stop = threading.Event()
        self._session: _Session | None = None
        self._stall_lock = threading.Lock()
        self._attempts = 0

    @property
    def is_file(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    def stop(self) -> None:
        self._stop.set()

    def run(self, on_frame: Callable[[Frame], None]) -> None:
        """Stream until stopped, reconnecting after every failure with exponential backoff."""
        done = threading.Event()
        watchdog = threading.Thread(
            target=self._watch, args=(done,), name=f"watchdog-{self.camera_id}", daemon=True
        )
        watchdog.start()
        try:
            while not self._stop.is_set():
                # A fresh Retrying per healthy session: a camera that ran for hours and then dropped
                # reconnects at once, not after the backoff its earlier failures had built up.
                retry = Retrying(
                    retry=retry_if_exception(lambda e: isinstance(e, StreamError) and not e.healthy),
                    wait=wait_exponential_jitter(initial=1.0, max=self.max_backoff_s, jitter=1.0),
                    sleep=self._sleep,
                    reraise=True,
                )
                try:
                    for attempt in retry:
                        with attempt:
                            if self._stop.is_set():
                                return
                            self._stream_once(on_frame)
                except StreamError:
                    continue
        finally:
            done.set()
            watchdog.join(1.0)
            self.health.state = "stopped"

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)  # a stop request ends the backoff at once

    def _options(self) -> dict[str, str]:
        if self.is_file:
            return {}
        return (
            {"rtsp_transport": self.transport, "rtsp_flags": "prefer_tcp"}
            if self.transport == "tcp"
            else {"rtsp_transport": self.transport}
        )

    # --- stall detection ---------------------------------------------------------------------------

    def _stall_limit(self) -> float:
        # Keyframes-only frames come once per GOP: never call a long but steady GOP a stall.
        gop = self.health.gop_s if self.health.decode_mode == "keyframes" else None
        return max(self.stall_timeout_s, 2 * gop + 1) if gop else self.stall_timeout_s

    def _check_stall(self, session: _Session, force: bool = False) -> str | None:
        """Declare the session stalled once no frame came for the limit (or ``force``: FFmpeg gave up)."""
        with self._stall_lock:  # the watchdog and the ingest thread may both get here
            idle = time.monotonic() - session.last_progress
            if session.stalled is None and (force or idle > self._stall_limit()):
                session.stalled = f"no frame for {idle:.0f} s: stalled"
                h = self.health
                h.state, h.last_error, h.stalls = "offline", session.stalled, h.stalls + 1
                log.warning("camera %s: %s", self.camera_id, session.stalled)
        return session.stalled

    def _watch(self, done: threading.Event) -> None:
        # Runs beside the ingest thread so that health says "stalled" on time even while a read blocks in
        # FFmpeg. It cannot safely close the container under a blocked read (use after free); the read is
        # ended by PyAV's read timeout (see _stream_once), and the ingest thread then reconnects.
        while not done.wait(0.25):
            session = self._session
            if session is not None:
                self._check_stall(session)

    # --- one connection ----------------------------------------------------------------------------

    def _stream_once(self, on_frame: Callable[[Frame], None]) -> None:
        if self._attempts:
            self.health.reconnects += 1
        self._attempts += 1
        target = self.url.removeprefix("file://")
        if self.is_file and not Path(target).is_file():
            self._fail(f"video file not found: {target}")
        try:
            # FFmpeg's RTSP demuxer gives up only after two read timeouts in a row (measured with a
            # SIGSTOPped server: 3 s -> 6 s), so half the stall timeout ends a silent read on time.
            container = av.open(
                target, options=self._options(), timeout=(self.open_timeout_s, self.stall_timeout_s / 2)
            )
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            self._fail(f"cannot open {redact_url(self.url)}: {redact_text(str(exc))}")
        session = _Session()
        self._session = session
        try:
            self._demux(container, session, on_frame)
        except av.error.FFmpegError as exc:
            # ExitError comes from the interrupt callback: PyAV's read timeout fired on a silent stream.
            if session.stalled is None and not isinstance(exc, av.error.ExitError):
                self._fail(f"stream {redact_url(self.url)} broke: {redact_text(str(exc))}", session)
            self._check_stall(session, force=True)
        finally:
            self._session = None
            container.close()
        if self._stop.is_set():
            return
        if stalled := self._check_stall(session):
            self._fail(stalled, session)
        # A live camera never ends; a file ends and is replayed.
        self._fail(
            f"stream {redact_url(self.url)} ended"
            if session.first_frame_at is not None
            else f"no frames from {redact_url(self.url)}",
            session,
        )

    def _demux(
        self, container: av.container.InputContainer, session: _Session, on_frame: Callable[[Frame], None]
    ) -> None:
        if not container.streams.video:
            self._fail(f"{redact_url(self.url)} has no video stream")
        stream = container.streams.video[0]
        fmt, name = container.format.name, stream.codec_context.name
        if fmt in TEXT_FORMATS or name in TEXT_CODECS:
            self._fail(f"{redact_url(self.url)} is not a video: FFmpeg reads it as text ({fmt}, {name})")
        stream.thread_type = "SLICE"
        codec = stream.codec_context
        h = self.health
        h.codec = codec.name
        h.gop_s = None
        tb = float(stream.time_base) if stream.time_base else 1 / 90000
        # "auto" decodes everything until it has seen a whole GOP.
        mode = "keyframes" if self.decode == "keyframes" else "all"
        h.decode_mode = mode
        period = 1.0 / self.sample_fps
        last_sampled: float | None = None
        wall_start = time.time()
        first_pts: float | None = None
        fps_meter, gops = FpsMeter(), GopMeter()
        rate = float(stream.average_rate or 25)
        slack = min(0.5 / rate, 0.25 * period)
        last_pts: float | None = None
        tap = self._reset_tap(stream)
        for packet in container.demux(stream):
            if self._stop.is_set():
                return
            if self._check_stall(session):
                return
            if tap is not None:
                try:
                    tap.feed(packet, time.time())
                except Exception:  # the evidence clip is lost, never the analysis
                    log.exception("camera %s: packet tap failed; off until reconnected", self.camera_id)
                    tap = None
            if packet.is_keyframe and packet.pts is not None:
                gop = gops.keyframe(packet.pts * tb)
                if gop is not None:
                    h.gop_s = gop
                    if self.decode == "auto":
                        # Switch only at a keyframe: the decoder then starts clean in either direction.
                        mode = h.decode_mode = auto_mode(self.sample_fps, gop)
            if mode == "keyframes" and not packet.is_keyframe and packet.size:
                continue  # the empty packet at the end flushes the decoder: keep it
            try:
                frames = codec.decode(packet)
            except av.error.InvalidDataError:
                continue  # one damaged packet; a stream that stays broken shows up as a stall
            for frame in frames:
                # The first frame of an RTSP session often has no timestamp: step from the previous one.
                if frame.time is not None:
                    pts = float(frame.time)
                else:
                    pts = last_pts + 1.0 / rate if last_pts is not None else 0.0
                if last_pts is not None and pts < last_pts - 1.0:
                    last_sampled = None  # timestamps jumped back (camera reset): resample from here
                last_pts = pts
                if first_pts is None:
                    first_pts = pts
                now = time.time()
                session.last_progress = time.monotonic()
                if session.first_frame_at is None:
                    session.first_frame_at = session.last_progress
                h.state, h.width, h.height, h.last_frame_at, h.last_error = (
                    "online",
                    frame.width,
                    frame.height,
                    now,
                    None,
                )
                h.frames += 1
                if (fps := fps_meter.tick()) is not None:
                    h.fps = fps
                # Half a frame of slack keeps a 1 fps sample steady on a 10/25 fps stream (more would
                # take frame 24 of 25 and drift to 1.04 samples/s).
                if last_sampled is not None and pts - last_sampled < period - slack:
                    continue
                last_sampled = pts
                ts = wall_start + (pts - first_pts) if self.is_file else now
                on_frame(Frame(self.camera_id, ts, frame.to_ndarray(format="bgr24"), pts, frame.key_frame))

    def _reset_tap(self, stream: av.video.stream.VideoStream) -> PacketTap | None:
        tap = self.tap
        if tap is None:
            return None
        try:
            tap.reset(stream)
        except Exception:
            log.exception("camera %s: packet tap refused the stream; off until reconnected", self.camera_id)
            return None
        return tap

    def _fail(self, message: str, session: _Session | None = None) -> NoReturn:
        healthy = (
            session is not None
            and session.first_frame_at is not None
            and time.monotonic() - session.first_frame_at >= HEALTHY_SESSION_S
        )
        self.health.state = "offline" if self.health.frames else "error"
        self.health.last_error = message
        log.warning("camera %s: %s", self.camera_id, message)
        raise StreamError(message, healthy=healthy)
