"""Live view without transcoding: remux a camera's H.264 into fragmented MP4 for Media Source Extensions.

The camera's packets are never decoded: PyAV demuxes them and the mp4 muxer (``frag_keyframe``,
``empty_moov``, ``default_base_moof``) writes an init segment (ftyp + moov) and then one fragment
(moof + mdat) per GOP, starting at a keyframe. The browser appends them to a ``SourceBuffer`` created
with :attr:`FragmentedMp4Relay.mime`. H.265 is refused: browsers here cannot play it without transcoding.

:class:`FeedMuxer` and :class:`FeedViewer` do the same for a running camera without a connection of
their own: they take the access units the camera's one RTSP session already demuxes (its
:class:`~adapters.rtsp.packet_feed.PacketFeed`), so any number of viewers adds no session to the camera.
:class:`FragmentedMp4Relay` (its own connection) is left for cameras the gateway does not run.

Also :func:`grab_jpeg`: one decoded frame of a stream as JPEG (for a camera that is not running).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from fractions import Fraction
from typing import Any

import av
import av.error

from adapters.gb28181.ps import AccessUnit
from adapters.redact import redact_text, redact_url

log = logging.getLogger(__name__)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
H265_REASON = "H.265 cannot be played by browsers without transcoding; showing snapshots"
RELAYED_CODECS = frozenset({"h264"})
H265_CODECS = frozenset({"hevc", "h265"})


class LiveViewUnsupported(Exception):
    """The stream's codec cannot be relayed to a browser as is."""


class LiveViewError(RuntimeError):
    """The stream could not be opened or broke (the message has no credentials)."""


def avc_codec_string(extradata: bytes | None) -> str | None:
    """``avc1.PPCCLL`` (profile, constraint flags, level) from H.264 extradata, avcC or Annex-B."""
    if not extradata:
        return None
    if extradata[0] == 1 and len(extradata) >= 4:  # avcC: version 1, then profile, compat, level
        return "avc1." + extradata[1:4].hex().upper()
    i = 0
    while True:  # Annex-B: find the SPS (NAL type 7) after a start code
        i = extradata.find(b"\x00\x00\x01", i)
        if i < 0 or i + 6 > len(extradata):
            return None
        if extradata[i + 3] & 0x1F == 7:
            return "avc1." + extradata[i + 4 : i + 7].hex().upper()
        i += 3


def _avc_from_packet(data: bytes) -> str | None:
    """The codec string from an in-band SPS (for cameras that send SPS/PPS only in the stream)."""
    return avc_codec_string(data if data[:3] == b"\x00\x00\x01" else b"\x00" + data)


class _Sink:
    """A non-seekable in-memory writer: FFmpeg then flushes every muxed packet to it."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)


def split_boxes(buffer: bytearray) -> list[bytes]:
    """Take whole top-level MP4 boxes off the front of ``buffer`` (the rest stays for the next write)."""
    boxes: list[bytes] = []
    pos = 0
    while len(buffer) - pos >= 8:
        size = int.from_bytes(buffer[pos : pos + 4], "big")
        header = 8
        if size == 1:  # 64-bit size
            if len(buffer) - pos < 16:
                break
            size, header = int.from_bytes(buffer[pos + 8 : pos + 16], "big"), 16
        if size < header or len(buffer) - pos < size:
            break
        boxes.append(bytes(buffer[pos : pos + size]))
        pos += size
    del buffer[:pos]
    return boxes


def _options(url: str, transport: str) -> dict[str, str]:
    if "://" not in url or url.startswith("file://"):
        return {}
    if transport == "tcp":
        return {"rtsp_transport": "tcp", "rtsp_flags": "prefer_tcp"}
    return {"rtsp_transport": transport}


def _open(url: str, transport: str, open_timeout_s: float, read_timeout_s: float) -> Any:
    try:
        return av.open(
            url.removeprefix("file://"),
            options=_options(url, transport),
            timeout=(open_timeout_s, read_timeout_s),
        )
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise LiveViewError(f"cannot open {redact_url(url)}: {redact_text(str(exc))}") from exc


class FragmentedMp4Relay:
    """One viewer's remux of a camera stream into fMP4 segments (init segment first, then fragments).

    Synchronous use (in a worker thread): ``open()``, then iterate ``iter_segments()``, then ``close()``.
    Async use: ``await start()``, then ``async for segment in segments()``; the remux runs in a thread.
    """

    def __init__(
        self,
        url: str,
        transport: str = "tcp",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        queue_size: int = 32,
    ) -> None:
        self.url = url
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.queue_size = queue_size
        self.codec: str | None = None  # "avc1.4D401F"
        self.width = self.height = 0
        self._container: Any = None
        self._stop = threading.Event()

    @property
    def mime(self) -> str:
        return f'video/mp4; codecs="{self.codec or "avc1.42E01E"}"'

    def open(self) -> None:
        """Connect and check the codec (blocking). Raises LiveViewUnsupported or LiveViewError."""
        container = _open(self.url, self.transport, self.open_timeout_s, self.read_timeout_s)
        try:
            if not container.streams.video:
                raise LiveViewError(f"{redact_url(self.url)} has no video stream")
            stream = container.streams.video[0]
            name = stream.codec_context.name
            if name in H265_CODECS:
                raise LiveViewUnsupported(H265_REASON)
            if name not in RELAYED_CODECS:
                raise LiveViewUnsupported(f"{name} cannot be played by browsers without transcoding")
            self.codec = avc_codec_string(stream.codec_context.extradata)
            self.width, self.height = stream.codec_context.width, stream.codec_context.height
        except BaseException:
            container.close()
            raise
        self._container = container

    def close(self) -> None:
        """Stop the remux; call from the thread that iterates, or after ``segments()`` ended."""
        self._stop.set()
        container, self._container = self._container, None
        if container is not None:
            container.close()

    def stop(self) -> None:
        """Ask the remux to end at its next packet (from any thread)."""
        self._stop.set()

    def iter_segments(self) -> Iterator[bytes]:
        """The init segment (ftyp + moov), then one moof + mdat per GOP, until stopped or the stream ends."""
        if self._container is None:
            self.open()
        container = self._container
        in_stream = container.streams.video[0]
        sink = _Sink()
        # flush_packets: hand each fragment over at once instead of when FFmpeg's 32 KB buffer fills.
        out = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
        out_stream = out.add_stream_from_template(in_stream)
        pending: list[bytes] = []  # boxes of a fragment not yet complete (moof waiting for its mdat)
        init_sent = False
        base: int | None = None
        try:
            for packet in container.demux(in_stream):
                if self._stop.is_set():
                    return
                if packet.size == 0:
                    continue  # the empty flush packet at the end of the stream
                if base is None:
                    if not packet.is_keyframe or (packet.dts is None and packet.pts is None):
                        continue  # a fragmented file must start at a keyframe
                    if self.codec is None:
                        self.codec = _avc_from_packet(bytes(packet))
                    base = packet.dts if packet.dts is not None else packet.pts
                if packet.pts is None and packet.dts is None:
                    continue
                if packet.pts is not None:
                    packet.pts -= base
                if packet.dts is not None:
                    packet.dts -= base
                packet.stream = out_stream
                out.mux(packet)
                for box in split_boxes(sink.buffer):
                    kind = box[4:8]
                    if not init_sent:
                        pending.append(box)
                        if kind == b"moov":
                            init_sent = True
                            yield b"".join(pending)
                            pending = []
                    elif kind == b"mdat":
                        pending.append(box)
                        yield b"".join(pending)
                        pending = []
                    else:
                        pending.append(box)  # moof (or styp/sidx/prft) before its mdat
        except av.error.FFmpegError as exc:
            if not self._stop.is_set() and not isinstance(exc, av.error.ExitError):
                raise LiveViewError(f"stream {redact_url(self.url)} broke: {redact_text(str(exc))}") from exc
            if isinstance(exc, av.error.ExitError) and not self._stop.is_set():
                raise LiveViewError(f"stream {redact_url(self.url)} stalled") from exc
        finally:
            with contextlib.suppress(av.error.FFmpegError, ValueError):
                out.close()

    async def start(self) -> None:
        """``open()`` in a worker thread."""
        await asyncio.to_thread(self.open)

    async def segments(self) -> AsyncIterator[bytes]:
        """``iter_segments()`` run in a thread and fed through a bounded queue; closing this ends the thread.

        A viewer that falls ``queue_size`` segments behind blocks the remux (and so, eventually, the
        camera's TCP connection); the end of iteration (or an exception) closes the stream.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(self.queue_size)

        def put(item: bytes | BaseException | None) -> bool:
            while not self._stop.is_set():
                if loop.is_closed():
                    return False
                future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
                try:
                    future.result(timeout=1.0)
                    return True
                except TimeoutError:
                    future.cancel()  # the viewer is slow: look at the stop flag, then wait again
                except (RuntimeError, concurrent.futures.CancelledError):  # the loop stopped under us
                    return False
            return False

        def work() -> None:
            try:
                for segment in self.iter_segments():
                    if not put(segment):
                        return
                put(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                put(exc)
            finally:
                self.close()

        thread = threading.Thread(target=work, name="live-relay", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._stop.set()
            await asyncio.to_thread(thread.join, self.read_timeout_s * 2 + 1)


CLOCK = Fraction(1, 90000)  # the access units' time base
DEFAULT_STEP = 3600  # one frame at 25 fps in 90 kHz ticks, until two timestamps give the real step


class FeedMuxer:
    """Annex-B access units with 90 kHz timestamps (a ``PacketFeed``'s) -> fMP4: the init segment at the
    first keyframe, then one fragment (moof + mdat) per GOP. Blocking, cheap (no decode); one per viewer.

    The first units of an RTSP session often carry no timestamp: they get the previous one plus a frame.
    """

    def __init__(self) -> None:
        self.codec: str | None = None  # "avc1.4D401F"
        self.width = self.height = 0
        self._sink = _Sink()
        self._out: Any = None
        self._stream: Any = None
        self._pending: list[bytes] = []
        self._init_sent = False
        self._base: int | None = None  # 90 kHz timestamp of the output's zero
        self._last = -DEFAULT_STEP  # output time of the last unit
        self._step = DEFAULT_STEP

    @property
    def mime(self) -> str:
        return f'video/mp4; codecs="{self.codec or "avc1.42E01E"}"'

    def add(self, unit: AccessUnit) -> list[bytes]:
        """Mux one unit; returns the segments it completed (the init segment comes with the first)."""
        if unit.codec != "h264":
            raise LiveViewUnsupported(
                H265_REASON if unit.codec in H265_CODECS else f"{unit.codec} cannot be played by browsers"
            )
        if self._out is None:
            if not unit.keyframe:
                return []  # a fragmented file starts at a keyframe
            self._open(unit)
        dts = self._time(unit)
        packet = av.Packet(unit.data)
        packet.dts = dts
        packet.pts = dts + (unit.pts - unit.dts if unit.pts is not None and unit.dts is not None else 0)
        packet.is_keyframe = unit.keyframe
        packet.time_base = CLOCK
        packet.stream = self._stream
        try:
            self._out.mux(packet)
        except av.error.FFmpegError as exc:
            raise LiveViewError(f"could not remux the camera's stream: {exc}") from exc
        return self._segments()

    def _open(self, key: AccessUnit) -> None:
        # The codec parameters (size, SPS/PPS as extradata) from the keyframe itself, parsed by FFmpeg's
        # H.264 demuxer; the mp4 muxer then writes avcC and turns the Annex-B units into length-prefixed.
        try:
            probe = av.open(io.BytesIO(key.data), format="h264")
        except av.error.FFmpegError as exc:
            raise LiveViewError(f"the camera's keyframe could not be parsed: {exc}") from exc
        try:
            if not probe.streams.video:
                raise LiveViewError("the camera's keyframe holds no video")
            template = probe.streams.video[0]
            ctx = template.codec_context
            self.width, self.height = ctx.width, ctx.height
            self.codec = avc_codec_string(ctx.extradata) or _avc_from_packet(key.data)
            out = av.open(self._sink, "w", format="mp4", options={"movflags": MOVFLAGS, "flush_packets": "1"})
            self._stream = out.add_stream_from_template(template, opaque=True)
            self._stream.time_base = CLOCK
            self._out = out
        finally:
            probe.close()

    def _time(self, unit: AccessUnit) -> int:
        ts = unit.dts if unit.dts is not None else unit.pts
        if ts is None:
            out = self._last + self._step
        else:
            if self._base is None:
                self._base = ts - (self._last + self._step)
            out = ts - self._base
            if out <= self._last:  # the camera's clock went back (a reconnect): continue from here
                self._base = ts - (self._last + self._step)
                out = self._last + self._step
            elif self._last >= 0:
                self._step = out - self._last
        self._last = out
        return out

    def _segments(self) -> list[bytes]:
        done: list[bytes] = []
        for box in split_boxes(self._sink.buffer):
            kind = box[4:8]
            self._pending.append(box)
            if (not self._init_sent and kind == b"moov") or (self._init_sent and kind == b"mdat"):
                self._init_sent = True
                done.append(b"".join(self._pending))
                self._pending = []
        return done

    def close(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            with contextlib.suppress(av.error.FFmpegError, ValueError):
                out.close()


# Subscribes a callback to a camera's access units; returns the function that ends the subscription.
Subscribe = Callable[[Callable[[AccessUnit], None]], Callable[[], None]]


class FeedViewer:
    """One live viewer of a running camera: subscribes to its packet feed and yields fMP4 segments.

    The muxing runs on the feed's subscriber thread (the feed drops units for a viewer that falls behind
    and resumes it at a keyframe); segments reach the event loop through a bounded queue, and a viewer
    whose queue is full loses segments rather than holding anything up.
    """

    def __init__(self, subscribe: Subscribe, queue_size: int = 16) -> None:
        self._subscribe = subscribe
        self.queue_size = queue_size
        self.muxer = FeedMuxer()
        self.dropped = 0

    async def segments(self) -> AsyncGenerator[bytes, None]:
        """The init segment first, then fragments, until the caller stops iterating (or an error)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(self.queue_size)
        failed = threading.Event()

        def hand_over(item: bytes | BaseException) -> None:
            if queue.full() and not isinstance(item, BaseException):
                self.dropped += 1
                return
            queue.put_nowait(item)

        def on_unit(unit: AccessUnit) -> None:
            if failed.is_set():
                return
            try:
                segments: list[bytes | BaseException] = list(self.muxer.add(unit))
            except (LiveViewError, LiveViewUnsupported) as exc:
                failed.set()
                segments = [exc]
            for item in segments:
                with contextlib.suppress(RuntimeError):  # the loop closed under us
                    loop.call_soon_threadsafe(hand_over, item)

        cancel = self._subscribe(on_unit)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await asyncio.to_thread(cancel)  # joins the subscriber thread: no unit is muxed after this
            self.muxer.close()


def grab_jpeg(
    url: str,
    transport: str = "tcp",
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 5.0,
    quality: int = 85,
) -> bytes:
    """Decode the first keyframe of a stream (H.264 or H.265) and return it as JPEG (blocking)."""
    import cv2  # the analytics already depend on OpenCV

    container = _open(url, transport, open_timeout_s, read_timeout_s)
    try:
        if not container.streams.video:
            raise LiveViewError(f"{redact_url(url)} has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context
        started = False
        for packet in container.demux(stream):
            if not started and not packet.is_keyframe:
                continue
            started = True
            try:
                frames = codec.decode(packet)
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                ok, jpeg = cv2.imencode(
                    ".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, quality]
                )
                if not ok:
                    raise LiveViewError("could not encode the frame as JPEG")
                return bytes(jpeg.tobytes())
    except av.error.FFmpegError as exc:
        raise LiveViewError(f"no frame from {redact_url(url)}: {redact_text(str(exc))}") from exc
    finally:
        container.close()
    raise LiveViewError(f"no frame from {redact_url(url)}")
