"""RtspSource against the real sample RTSP camera on loopback: codecs, camera reboot, stall, keyframes-only
decoding, garbage and non-video input, UDP transport."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from adapters import Frame, RtspSource
from adapters.rtsp.sample_camera import SampleRtspServer

CLIP_SECONDS = 3  # the server encodes only this much of vtest.avi (10 fps, 1 s GOP): fast startup


class Running:
    """An RtspSource running in its own thread, collecting what it hands out."""

    def __init__(self, source: RtspSource) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.source.run(self.frames.append)
        except BaseException as exc:  # the test fails on this: run() must never raise
            self.errors.append(exc)

    def wait(self, check: Callable[[], object], within_s: float, what: str) -> None:
        deadline = time.monotonic() + within_s
        while not check():
            if time.monotonic() > deadline:
                h = self.source.health
                raise AssertionError(f"timed out after {within_s} s waiting for {what}; health: {h}")
            time.sleep(0.05)


@contextmanager
def running(source: RtspSource) -> Iterator[Running]:
    r = Running(source)
    r.thread.start()
    try:
        yield r
    finally:
        source.stop()
        r.thread.join(15)
        assert not r.thread.is_alive(), "run() did not return after stop()"
        assert not r.errors, f"run() raised {r.errors!r}"
        assert source.health.state == "stopped"


@pytest.fixture(scope="module")
def h264(vtest: Path) -> Iterator[SampleRtspServer]:
    with SampleRtspServer({"cam": vtest}, max_seconds=CLIP_SECONDS) as server:
        yield server


@pytest.fixture
def own_camera(vtest: Path) -> Iterator[SampleRtspServer]:
    """A camera of the test's own, for tests that reboot or freeze it."""
    server = SampleRtspServer({"cam": vtest}, max_seconds=CLIP_SECONDS)
    with server:
        try:
            yield server
        finally:
            if server.pid is not None:
                os.kill(server.pid, signal.SIGCONT)  # never leave a frozen process behind


@pytest.mark.parametrize(("codec", "health_codec"), [("h264", "h264"), ("h265", "hevc")])
def test_h264_and_h265_decode_with_stream_timestamps(vtest: Path, codec: str, health_codec: str) -> None:
    with (
        SampleRtspServer({"cam": vtest}, codec=codec, max_seconds=CLIP_SECONDS) as server,
        running(RtspSource("c", server.url("cam"), sample_fps=5)) as r,
    ):
        # The GOP takes two keyframes with timestamps (the session's first packet may have none).
        r.wait(lambda: len(r.frames) >= 8 and r.source.health.gop_s is not None, 15, "8 frames and a GOP")
        h = r.source.health
        assert (h.state, h.codec, h.width, h.height, h.decode_mode) == (
            "online",
            health_codec,
            768,
            576,
            "all",
        )
        assert r.frames[0].image.shape == (576, 768, 3) and r.frames[0].image.dtype == np.uint8
        # 5 of 10 frames/s, stepped by the stream's own clock (across the clip's loop seam too).
        steps = [b.pts - a.pts for a, b in zip(r.frames[1:], r.frames[2:], strict=False)]
        assert all(abs(s - 0.2) < 0.02 for s in steps), steps
        assert h.gop_s == pytest.approx(1.0, abs=0.02)


def test_camera_reboot_goes_offline_and_recovers_without_a_new_source(own_camera: SampleRtspServer) -> None:
    source = RtspSource(
        "c", own_camera.url("cam"), sample_fps=2, open_timeout_s=3, stall_timeout_s=4, max_backoff_s=2
    )
    seen: list[tuple[str, str | None]] = []
    with running(source) as r:
        r.wait(lambda: source.health.state == "online", 10, "online")
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.append((source.health.state, source.health.last_error))
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        own_camera.restart(down_for=3)
        before = len(r.frames)
        r.wait(lambda: len(r.frames) >= before + 3, 20, "frames after the reboot")
        done.set()
        watcher.join()
    errors = {e for s, e in seen if s == "offline" and e}
    assert any("ended" in e or "broke" in e for e in errors), errors
    assert any("cannot open rtsp://127.0.0.1" in e for e in errors), errors  # refused while it was down
    assert source.health.reconnects >= 2 and source.health.last_error is None


def test_stalled_stream_is_detected_then_reconnects(own_camera: SampleRtspServer) -> None:
    stall_s = 2.0
    source = RtspSource("c", own_camera.url("cam"), sample_fps=2, open_timeout_s=3, stall_timeout_s=stall_s)
    pid = own_camera.pid
    assert pid is not None
    with running(source) as r:
        r.wait(lambda: len(r.frames) >= 2, 10, "frames")
        reconnects = source.health.reconnects
        # A frozen server keeps its TCP connections open and sends nothing: only a timeout can tell.
        os.kill(pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            r.wait(lambda: "stalled" in (source.health.last_error or ""), stall_s + 2, "a stall")
            detected = time.monotonic() - frozen
            assert source.health.state == "offline" and source.health.stalls == 1
            assert source.health.last_error is not None and source.health.last_error.endswith("s: stalled")
            # Not just flagged: the session was closed and a new one is being opened.
            r.wait(lambda: source.health.reconnects > reconnects, stall_s + 3, "a reconnect")
        finally:
            os.kill(pid, signal.SIGCONT)
        before = len(r.frames)
        r.wait(lambda: len(r.frames) >= before + 2, 15, "frames after SIGCONT")
        assert source.health.state == "online"
    assert stall_s - 0.5 <= detected <= stall_s + 1.5  # counted from the last frame, just before SIGSTOP


def encode_test_file(path: Path, seconds: int, fps: int, gop: int, size: tuple[int, int]) -> Path:
    """A moving synthetic pattern in H.264 (no B-frames, fixed GOP), encoded with PyAV's own libx264."""
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 0
        stream.codec_context.options = {"preset": "ultrafast", "sc_threshold": "0"}
        stream.codec_context.time_base = Fraction(1, fps)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
        for i in range(seconds * fps):
            img = np.roll(base, (2 * i, 4 * i), axis=(0, 1))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def h264_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_test_file(tmp_path_factory.mktemp("media") / "pattern.mp4", 12, 25, 25, (640, 360))


def cpu_for_stream_seconds(url: str, decode: str, seconds: float) -> tuple[float, list[Frame], RtspSource]:
    """Process CPU time to get through ``seconds`` of a file at 1 sample/s (files are not paced)."""
    source = RtspSource("c", url, sample_fps=1, decode=decode)
    t0 = time.process_time()
    with running(source) as r:
        r.wait(lambda: r.frames and r.frames[-1].pts >= seconds, 30, f"{seconds} s of stream")
        cpu = time.process_time() - t0
    return cpu, r.frames, source


def test_keyframes_mode_decodes_only_keyframes_for_less_cpu(h264_file: Path) -> None:
    cpu_all, frames_all, _ = cpu_for_stream_seconds(str(h264_file), "all", 10)
    cpu_key, frames_key, source = cpu_for_stream_seconds(str(h264_file), "keyframes", 10)
    assert all(f.keyframe for f in frames_key)
    assert [round(f.pts, 2) for f in frames_key[:11]] == [float(i) for i in range(11)]  # one per 1 s GOP
    assert source.health.gop_s == pytest.approx(1.0) and source.health.decode_mode == "keyframes"
    assert [round(f.pts, 2) for f in frames_all[:11]] == [float(i) for i in range(11)]  # same samples
    # Process CPU time, so other load on the machine does not count; 1 in 25 frames decoded.
    print(f"CPU for 10 s of 640x360 H.264: all {cpu_all:.3f} s, keyframes {cpu_key:.3f} s")
    assert cpu_key < 0.7 * cpu_all


@pytest.mark.parametrize(("sample_fps", "mode"), [(1.0, "keyframes"), (2.0, "all")])
def test_auto_mode_follows_the_measured_gop(h264: SampleRtspServer, sample_fps: float, mode: str) -> None:
    # A 1 s GOP suits 1 sample/s (one keyframe each), not 2/s.
    with running(RtspSource("c", h264.url("cam"), sample_fps=sample_fps, decode="auto")) as r:
        r.wait(lambda: r.source.health.gop_s is not None and len(r.frames) >= 4, 15, "a GOP and 4 frames")
        assert r.source.health.decode_mode == mode and r.source.health.gop_s == pytest.approx(1.0, abs=0.02)
        if mode == "keyframes":
            assert all(f.keyframe for f in r.frames[-2:])
            assert r.frames[-1].pts - r.frames[-2].pts == pytest.approx(1.0, abs=0.02)


@contextmanager
def garbage_rtsp_server() -> Iterator[str]:
    """Answers whatever it is sent with random bytes, then hangs up."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(os.urandom(8192))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"rtsp://user:secret@127.0.0.1:{sock.getsockname()[1]}/stream"
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_garbage_and_non_video_give_clear_errors_and_spare_other_cameras(
    h264: SampleRtspServer, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n" * 100, encoding="utf-8")
    with (
        garbage_rtsp_server() as garbage_url,
        running(RtspSource("good", h264.url("cam"), sample_fps=2)) as good,
        running(RtspSource("garbage", garbage_url, sample_fps=1, open_timeout_s=3)) as garbage,
        running(RtspSource("text", str(text), sample_fps=1)) as textfile,
    ):
        for bad in (garbage, textfile):
            bad.wait(lambda b=bad: b.source.health.last_error, 10, "an error")  # type: ignore[misc]
        good.wait(lambda: len(good.frames) >= 4, 10, "frames from the good camera")
        g = garbage.source.health
        assert g.state == "error" and g.frames == 0
        assert g.last_error is not None and g.last_error.startswith("cannot open rtsp://***@127.0.0.1:")
        assert "secret" not in g.last_error
        t = textfile.source.health
        assert t.state == "error" and t.last_error is not None
        assert t.last_error == f"{text} is not a video: FFmpeg reads it as text (tty, ansi)"
        assert good.source.health.state == "online" and good.source.health.last_error is None


def test_udp_transport(h264: SampleRtspServer) -> None:
    with running(RtspSource("c", h264.url("cam"), sample_fps=5, transport="udp", open_timeout_s=5)) as r:
        deadline = time.monotonic() + 10
        while len(r.frames) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(r.frames) < 5:
            pytest.skip(f"no RTP over UDP from the sample server here: {r.source.health.last_error}")
        assert r.source.health.codec == "h264" and r.source.health.width == 768
