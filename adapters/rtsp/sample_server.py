"""Endless RTSP "camera" for tests, built on GStreamer's RTSP server.

Run it with Debian's system interpreter (``/usr/bin/python3``): PyGObject and the GstRtspServer typelib come
from apt (``python3-gst-1.0``, ``gir1.2-gst-rtsp-server-1.0``), not from pip, so this file imports only the
standard library and ``gi``.

Each ``--mount NAME=FILE`` is encoded ONCE at startup into an in-memory list of access units (AUs). The
mount is then served from a shared media factory (``appsrc ! h264parse ! rtph264pay``) whose appsrc replays
the AUs in an endless loop with ever increasing timestamps, so clients see a live camera that never ends.
Every keyframe carries its parameter sets (SPS/PPS[/VPS]), so late joiners can start decoding at the next
keyframe.

When every mount is ready and the server listens, one line ``READY rtsp://HOST:PORT`` goes to stdout.
Then every client connection that opens or closes writes ``CLIENTS OPENED CLOSED`` (totals since start)
and every RTSP session a client sets up writes ``SESSIONS N`` (the total): tests count with them how
many connections a gateway opens to one camera. ``--user NAME:PASSWORD`` requires HTTP Basic auth
(a wrong or missing password gets 401, like a real camera).

Exit codes: 0 after SIGTERM/SIGINT, 2 missing or undecodable media (or a bad argument), 3 GStreamer Python
bindings missing, 4 the server cannot listen on HOST:PORT.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_MEDIA = 2
EXIT_NO_GI = 3
EXIT_BIND = 4

DEBIAN_PACKAGES = (
    "python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad "
    "gstreamer1.0-plugins-ugly gstreamer1.0-libav"
)

try:
    import gi  # type: ignore[import-not-found, import-untyped, unused-ignore]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found, import-untyped, unused-ignore]
except (ImportError, ValueError) as exc:  # ValueError: typelib for the requested version is absent
    print(
        f"sample_server: cannot import GStreamer RTSP server bindings ({exc}).\n"
        f"Run this with Debian's /usr/bin/python3 and install: apt-get install {DEBIAN_PACKAGES}\n"
        "(or `make system-deps` in the vigil repository).",
        file=sys.stderr,
    )
    sys.exit(EXIT_NO_GI)


class MediaError(Exception):
    """The file is missing, cannot be decoded, or has no usable video."""


# Per codec: caps name, parser, payloader.
CODECS: dict[str, tuple[str, str, str]] = {
    "h264": ("video/x-h264", "h264parse", "rtph264pay"),
    "h265": ("video/x-h265", "h265parse", "rtph265pay"),
}
# x265 is about 10x slower than x264 here (vtest.avi: ~20 s at ultrafast, ~60 s at veryfast on 2 cores).
DEFAULT_PRESET = {"h264": "veryfast", "h265": "ultrafast"}
FALLBACK_FPS = 25.0
MOUNT_RE = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")


@dataclass
class Clip:
    """One mount's encoded access units, replayed forever."""

    name: str
    codec: str  # "h264" or "h265"
    caps: Any  # Gst.Caps for the appsrc (byte-stream, alignment=au)
    frame_duration: int  # ns
    buffers: list[Any] = field(default_factory=list)  # Gst.Buffer, one AU each, decode order
    pts_offsets: list[int] = field(default_factory=list)  # ns from the start of the clip
    cycle: int = 0  # ns, clip length; loop k is shifted by k * cycle
    monotonic_pts: bool = True  # False when a copied source has B-frames (PTS reordered)
    width: int = 0
    height: int = 0
    keyframes: int = 0
    gop: int | None = None  # None for "copy": whatever the source has


class LoopFeeder:
    """Pushes one clip into one appsrc endlessly; a fresh feeder per (re)created shared media."""

    def __init__(self, clip: Clip) -> None:
        self.clip = clip
        self.count = 0

    def on_need_data(self, appsrc: Any, _length: int) -> None:
        # One AU per call: appsrc emits need-data again as soon as its queue runs low, and the RTSP server's
        # sinks sync to the clock, so the stream is paced in real time by its timestamps.
        clip = self.clip
        n = len(clip.buffers)
        loop, idx = divmod(self.count, n)
        buf = clip.buffers[idx].copy()  # shallow copy: shares the encoded memory, own timestamps
        pts = loop * clip.cycle + clip.pts_offsets[idx]
        buf.pts = pts
        buf.dts = pts if clip.monotonic_pts else Gst.CLOCK_TIME_NONE
        buf.duration = clip.frame_duration
        if self.count:
            buf.unset_flags(Gst.BufferFlags.DISCONT)  # the loop seam is not a discontinuity in time
        self.count += 1
        appsrc.emit("push-buffer", buf)


def _framerate(caps: Any) -> tuple[int, int] | None:
    if caps is None or caps.get_size() == 0:
        return None
    ok, num, den = caps.get_structure(0).get_fraction("framerate")
    if ok and num > 0 and den > 0:
        return num, den
    return None


def _encode_tail(codec: str, gop: int, preset: str) -> str:
    caps_name, parser, _pay = CODECS[codec]
    if codec == "h264":
        # No scene-cut IDRs (keyframes exactly every GOP, like a camera); one slice per frame
        # (zerolatency alone turns on sliced threads: several slices per frame, unlike most cameras).
        enc = (
            f"x264enc name=enc tune=zerolatency speed-preset={preset} bframes=0 sliced-threads=false"
            f' option-string="scenecut=0" key-int-max={gop}'
        )
    else:
        # Closed GOPs (IDR, not CRA) so that every keyframe is a clean start for a late joiner.
        enc = (
            f"x265enc name=enc log-level=warning speed-preset={preset} key-int-max={gop}"
            ' option-string="bframes=0:scenecut=0:open-gop=0:rc-lookahead=0:repeat-headers=1"'
        )
    return (
        f"{enc} ! {parser} config-interval=-1"
        f" ! {caps_name},stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
    )


def probe_framerate(path: Path) -> float | None:
    """Preroll `decodebin` once to read the decoded frame rate (needed before the encoder is built:
    x264enc/x265enc ignore key-int-max changes once they are running)."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{_gst_quote(str(path))}" ! decodebin ! videoconvert ! fakesink name=sink'
    )
    try:
        pipeline.set_state(Gst.State.PAUSED)
        ret, _cur, _pending = pipeline.get_state(20 * Gst.SECOND)
        if ret == Gst.StateChangeReturn.FAILURE:
            raise MediaError(f"{path}: cannot decode: {_bus_error(pipeline.get_bus()) or 'preroll failed'}")
        if ret == Gst.StateChangeReturn.ASYNC:
            raise MediaError(f"{path}: cannot decode: no video frame within 20 s")
        rate = _framerate(pipeline.get_by_name("sink").get_static_pad("sink").get_current_caps())
        return rate[0] / rate[1] if rate else None
    finally:
        pipeline.set_state(Gst.State.NULL)


def _build_copy_pipeline(path: Path) -> tuple[Any, dict[str, Any]]:
    """filesrc ! parsebin; the H.264/H.265 pad is linked to parse ! appsink, anything else to fakesink.

    Returns the pipeline and a dict filled in from streaming threads: "codec", or "error".
    """
    pipeline = Gst.Pipeline.new("copy")
    src = Gst.ElementFactory.make("filesrc", None)
    pb = Gst.ElementFactory.make("parsebin", None)
    sink = Gst.ElementFactory.make("appsink", "sink")
    if src is None or pb is None or sink is None:
        raise MediaError(
            "GStreamer elements filesrc/parsebin/appsink are missing (gstreamer1.0-plugins-base)"
        )
    src.set_property("location", str(path))
    sink.set_property("sync", False)
    for el in (src, pb, sink):
        pipeline.add(el)
    src.link(pb)
    linked: dict[str, str] = {}

    def on_pad(_pb: Any, pad: Any) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name() if caps and caps.get_size() else "?"
        codec = next((c for c, spec in CODECS.items() if spec[0] == name), None)
        if codec is not None and "codec" not in linked:
            caps_name, parser_name, _pay = CODECS[codec]
            parser = Gst.ElementFactory.make(parser_name, None)
            filt = Gst.ElementFactory.make("capsfilter", None)
            parser.set_property("config-interval", -1)
            filt.set_property(
                "caps", Gst.Caps.from_string(f"{caps_name},stream-format=byte-stream,alignment=au")
            )
            for el in (parser, filt):
                pipeline.add(el)
            parser.link(filt)
            filt.link(sink)
            for el in (parser, filt):
                el.sync_state_with_parent()
            pad.link(parser.get_static_pad("sink"))
            linked["codec"] = codec
        else:
            if name.startswith("video/") and "codec" not in linked:
                linked["error"] = f"--codec copy needs H.264 or H.265 video in the file, found: {name}"
            fake = Gst.ElementFactory.make("fakesink", None)
            fake.set_property("async", False)
            fake.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_other_event)
            pipeline.add(fake)
            fake.sync_state_with_parent()
            pad.link(fake.get_static_pad("sink"))

    def on_other_event(_pad: Any, info: Any) -> Any:
        # parsebin does not signal no-more-pads; a non-video stream ending with no video linked means
        # the file has none. (The appsink then never sees EOS, so the pull loop watches "error".)
        if info.get_event().type == Gst.EventType.EOS and "codec" not in linked:
            linked.setdefault("error", "--codec copy needs H.264 or H.265 video in the file, found none")
        return Gst.PadProbeReturn.OK

    pb.connect("pad-added", on_pad)
    return pipeline, linked


def transcode(
    name: str, path: Path, codec: str, gop: int | None, preset: str | None, max_seconds: float
) -> Clip:
    """Encode (or, for codec "copy", just demux+parse) the file into a Clip held in memory."""
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    state: dict[str, Any] = {}
    if codec == "copy":
        pipeline, state = _build_copy_pipeline(path)
    else:
        if not gop:
            fps = probe_framerate(path)
            gop = max(1, round(fps or FALLBACK_FPS))
        state["gop"] = gop
        desc = f'filesrc location="{_gst_quote(str(path))}" ! decodebin ! videoconvert ! ' + _encode_tail(
            codec, gop, preset or DEFAULT_PRESET[codec]
        )
        try:
            pipeline = Gst.parse_launch(desc)
        except GLib.Error as exc:
            raise MediaError(
                f"cannot build the encode pipeline ({exc.message}); are the x264/x265 "
                "plugins installed (gstreamer1.0-plugins-ugly / -bad)?"
            ) from exc
        state["codec"] = codec
    sink = pipeline.get_by_name("sink")
    bus = pipeline.get_bus()
    clip: Clip | None = None
    limit_ns = int(max_seconds * Gst.SECOND) if max_seconds > 0 else None
    first_pts: int | None = None
    try:
        if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise MediaError(f"{path}: cannot start decoding: {_bus_error(bus) or 'state change failed'}")
        while True:
            sample = sink.emit("try-pull-sample", 100 * Gst.MSECOND)
            if sample is None:
                err = _bus_error(bus)
                if err:
                    raise MediaError(f"{path}: cannot decode: {err}")
                if "error" in state:
                    break
                if sink.get_property("eos"):
                    break
                continue
            buf = sample.get_buffer()
            if clip is None:
                if buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                    continue  # a copied stream may start mid-GOP: begin the loop at a keyframe
                caps = sample.get_caps()
                rate = _framerate(caps)
                if rate is None and buf.duration != Gst.CLOCK_TIME_NONE and buf.duration > 0:
                    dur = int(buf.duration)
                else:
                    num, den = rate or (int(FALLBACK_FPS), 1)
                    dur = Gst.util_uint64_scale_int(Gst.SECOND, den, num)
                s = caps.get_structure(0)
                clip = Clip(
                    name=name,
                    codec=state.get("codec", codec),
                    caps=caps,
                    frame_duration=dur,
                    width=s.get_int("width")[1],
                    height=s.get_int("height")[1],
                )
                first_pts = buf.pts if buf.pts != Gst.CLOCK_TIME_NONE else None
            idx = len(clip.buffers)
            if codec == "copy" and first_pts is not None and buf.pts != Gst.CLOCK_TIME_NONE:
                offset = max(0, int(buf.pts) - first_pts)  # keep the source's B-frame reordering
            else:
                offset = idx * clip.frame_duration  # we encoded without B-frames: PTS order == decode order
            if limit_ns is not None and offset >= limit_ns:
                break
            clip.buffers.append(buf)
            clip.pts_offsets.append(offset)
            if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                clip.keyframes += 1
    finally:
        pipeline.set_state(Gst.State.NULL)
    if "error" in state:
        raise MediaError(f"{path}: {state['error']}")
    if clip is None or not clip.buffers:
        raise MediaError(f"{path}: no video frames could be decoded")
    offs = clip.pts_offsets
    clip.monotonic_pts = all(a < b for a, b in zip(offs, offs[1:], strict=False))
    clip.cycle = max(offs) + clip.frame_duration
    clip.gop = state.get("gop")
    return clip


def _gst_quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _bus_error(bus: Any) -> str | None:
    msg = bus.pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return None
    err, debug = msg.parse_error()
    return f"{err.message} ({debug.splitlines()[0] if debug else msg.src.get_name()})"


AUTH_ROLE = "viewer"


class SessionCounter:
    """Counts client connections and RTSP sessions and reports each change on stdout."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # clients are served (and close) on the server's worker threads
        self.opened = 0
        self.closed = 0
        self.sessions = 0

    def on_client(self, _server: Any, client: Any) -> None:
        client.connect("closed", self.on_closed)
        client.connect("new-session", self.on_session)
        with self.lock:
            self.opened += 1
            self.write(f"CLIENTS {self.opened} {self.closed}")

    def on_closed(self, _client: Any) -> None:
        with self.lock:
            self.closed += 1
            self.write(f"CLIENTS {self.opened} {self.closed}")

    def on_session(self, _client: Any, _session: Any) -> None:
        with self.lock:
            self.sessions += 1
            self.write(f"SESSIONS {self.sessions}")

    @staticmethod
    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def basic_auth(user: str, password: str) -> Any:
    """An RTSPAuth that lets one user (HTTP Basic) see every mount."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", AUTH_ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    return auth


def make_factory(clip: Clip, protected: bool = False) -> Any:
    _caps_name, parser, pay = CODECS[clip.codec]
    factory = GstRtspServer.RTSPMediaFactory()
    # config-interval=-1 on parser and payloader: parameter sets in-band with every keyframe, so a client
    # that joins the shared media late can decode from the next keyframe.
    factory.set_launch(
        f"( appsrc name=src format=time is-live=false ! {parser} config-interval=-1"
        f" ! {pay} name=pay0 pt=96 config-interval=-1 )"
    )
    # Shared: one pipeline per mount no matter how many clients, like a real camera.
    factory.set_shared(True)

    def on_configure(_factory: Any, media: Any) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        appsrc.set_property("caps", clip.caps)
        # A media is (re)built when the first client arrives after the previous one left; restart at 0.
        feeder = LoopFeeder(clip)
        appsrc.connect("need-data", feeder.on_need_data)

    factory.connect("media-configure", on_configure)
    if protected:
        factory.add_role_from_structure(
            Gst.Structure.from_string(
                f"{AUTH_ROLE}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
        )
    return factory


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8554, help="TCP port; 0 = pick a free one (reported)")
    p.add_argument(
        "--mount",
        action="append",
        required=True,
        metavar="NAME=FILE",
        help="serve FILE at rtsp://HOST:PORT/NAME (repeatable)",
    )
    p.add_argument(
        "--gop",
        type=int,
        default=None,
        help="keyframe interval in frames (default: source frame rate, i.e. a 1 s GOP)",
    )
    p.add_argument(
        "--codec",
        choices=("h264", "h265", "copy"),
        default="h264",
        help="re-encode to H.264/H.265, or copy the file's H.264/H.265 as is (default h264)",
    )
    p.add_argument(
        "--preset", default=None, help="encoder speed preset (default veryfast for h264, ultrafast for h265)"
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=0.0,
        help="encode only the first N seconds of each file (0 = all); shortens startup",
    )
    p.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="quit when stdin reaches EOF, i.e. when the parent process that holds the pipe dies",
    )
    p.add_argument(
        "--user",
        default=None,
        metavar="NAME:PASSWORD",
        help="require HTTP Basic auth with this user (default: no authentication)",
    )
    args = p.parse_args(argv)
    if args.user is not None and ":" not in args.user:
        p.error("--user must be NAME:PASSWORD")
    if args.gop is not None and args.gop < 1:
        p.error("--gop must be >= 1")
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    mounts: list[tuple[str, Path]] = []
    for spec in args.mount:
        name, sep, file = spec.partition("=")
        name = name.strip("/")
        if not sep or not file or not MOUNT_RE.match(name):
            p.error(f"bad --mount {spec!r}: expected NAME=FILE with NAME like cam1 or site/cam1")
        if any(name == m for m, _ in mounts):
            p.error(f"duplicate mount name {name!r}")
        mounts.append((name, Path(file)))
    args.mounts = mounts
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    Gst.init(None)
    clips: list[Clip] = []
    try:
        for name, path in args.mounts:
            t0 = time.monotonic()
            clip = transcode(name, path, args.codec, args.gop, args.preset, args.max_seconds)
            fps = Gst.SECOND / clip.frame_duration
            size = sum(b.get_size() for b in clip.buffers)
            print(
                f"sample_server: /{name}: {path.name} -> {clip.codec} {clip.width}x{clip.height} "
                f"{fps:.2f} fps, {len(clip.buffers)} AUs ({clip.cycle / Gst.SECOND:.1f} s loop), "
                f"{clip.keyframes} keyframes, GOP {clip.gop or 'as source'}, "
                f"{size / 1e6:.1f} MB, prepared in {time.monotonic() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            clips.append(clip)
    except MediaError as exc:
        print(f"sample_server: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_MEDIA
    except KeyboardInterrupt:
        return 130

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    if args.user is not None:
        name, _, password = args.user.partition(":")
        server.set_auth(basic_auth(name, password))
    counter = SessionCounter()
    server.connect("client-connected", counter.on_client)
    mounts = server.get_mount_points()
    for clip in clips:
        mounts.add_factory(f"/{clip.name}", make_factory(clip, protected=args.user is not None))
    if server.attach(None) == 0:
        print(
            f"sample_server: error: cannot listen on {args.host}:{args.port} (port in use?)",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_BIND
    port = server.get_bound_port()

    loop = GLib.MainLoop()

    def on_signal(signame: str) -> bool:
        print(f"sample_server: {signame}, stopping", file=sys.stderr, flush=True)
        loop.quit()
        return GLib.SOURCE_REMOVE

    # GLib's own signal sources: Python-level handlers would not run while the loop sits in C.
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_signal, "SIGTERM")
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_signal, "SIGINT")
    if args.exit_with_stdin:
        # A test runner killed with SIGKILL cannot stop us; its end of our stdin pipe closing can.
        def on_stdin(fd: int, _cond: Any) -> bool:
            if not os.read(fd, 4096):
                print("sample_server: stdin closed, stopping", file=sys.stderr, flush=True)
                loop.quit()
                return GLib.SOURCE_REMOVE
            return GLib.SOURCE_CONTINUE

        cond = GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR
        GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, sys.stdin.fileno(), cond, on_stdin)
    url_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"READY rtsp://{url_host}:{port}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
