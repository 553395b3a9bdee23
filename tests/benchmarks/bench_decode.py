"""Benchmark: CPU cost of one 1080p H.264 stream per decode policy, against bare PyAV on the same file.

Not a test: it prints measured numbers. Run it with the venv's python. It encodes a camera-like test file
once (moving pattern plus noise, 25 fps, GOP 25, no B-frames, 4 Mbit/s) into the temp dir, then reads it
through RtspSource as a `file` source. A file is not paced, so the numbers are CPU per second of video:
"% of a core" is what one real-time 25 fps camera would cost (RTSP receive adds about 0.5 % per stream).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters import Frame, RtspSource  # noqa: E402


def cpu_time() -> float:
    t = os.times()  # every thread of the process, FFmpeg's own included
    return t.user + t.system


def make_file(path: Path, seconds: int, fps: int, gop: int) -> Path:
    """1080p H.264 from PyAV's libx264: a moving pattern with noise, so it does not compress to nothing."""
    if path.is_file():
        return path
    w, h = 1920, 1080
    tmp = path.with_suffix(".part.mp4")
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x % 256, y % 256, (x // 4 + y // 4) % 256], axis=-1).astype(np.uint8)
    noise = [rng.integers(0, 12, (h, w, 3), dtype=np.uint8) for _ in range(7)]
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        cc = stream.codec_context
        cc.gop_size, cc.max_b_frames, cc.bit_rate = gop, 0, 4_000_000
        cc.time_base = Fraction(1, fps)
        cc.options = {"preset": "veryfast", "sc_threshold": "0", "profile": "main"}
        for i in range(seconds * fps):
            img = np.roll(base, (3 * i, 8 * i), axis=(0, 1)) + noise[i % len(noise)]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    tmp.rename(path)
    return path


class Result:
    def __init__(self, decoded: int, delivered: int, cpu: float, wall: float, video_s: float) -> None:
        self.decoded, self.delivered, self.cpu, self.wall, self.video_s = (
            decoded,
            delivered,
            cpu,
            wall,
            video_s,
        )

    @property
    def core_pct(self) -> float:
        """Percent of one core that one real-time stream of this video needs."""
        return 100 * self.cpu / self.video_s


def bare_pyav(path: Path) -> Result:
    # The same threading as RtspSource (SLICE), so the ratio shows what the source itself adds.
    t0, w0 = cpu_time(), time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        n, last = 0, 0.0
        for frame in container.decode(stream):
            n += 1
            last = float(frame.time or 0.0)
        duration = last + 1 / float(stream.average_rate or 25)
    return Result(n, 0, cpu_time() - t0, time.perf_counter() - w0, duration)


def through_source(path: Path, sample_fps: float, decode: str, seconds: float) -> Result:
    """One pass of the file through RtspSource; it stops at the last sample of the first pass."""
    fps = float(av.open(str(path)).streams.video[0].average_rate or 25)
    source = RtspSource("bench", str(path), sample_fps=sample_fps, decode=decode)
    delivered: list[Frame] = []
    end = seconds - 1.0  # the last sample point (and keyframe) of a pass

    def on_frame(frame: Frame) -> None:
        delivered.append(frame)
        if frame.pts >= end - 0.5 / fps:
            source.stop()

    t0, w0 = cpu_time(), time.perf_counter()
    source.run(on_frame)
    cpu, wall = cpu_time() - t0, time.perf_counter() - w0
    return Result(source.health.frames, len(delivered), cpu, wall, end + 1 / fps)


def median_of(repeats: int, run: Callable[[], Result]) -> Result:
    results = [run() for _ in range(repeats)]
    return sorted(results, key=lambda r: r.core_pct)[len(results) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=20, help="length of the test file (default 20)")
    p.add_argument("--repeats", type=int, default=3, help="runs per mode; the median is shown (default 3)")
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "vigil-bench")
    args = p.parse_args()
    fps, gop = 25, 25
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path = make_file(args.dir / f"pattern-1080p{fps}-gop{gop}-{args.seconds}s.mp4", args.seconds, fps, gop)
    size_mb, ready_s = path.stat().st_size / 1e6, time.perf_counter() - started
    print(f"test file: {path} ({size_mb:.1f} MB, ready in {ready_s:.1f} s)")
    print(
        f"1080p{fps} H.264 Main, GOP {gop} (1 s), no B-frames, 4 Mbit/s; PyAV {av.__version__}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    print(
        "read as a `file` source through RtspSource (not paced; no RTSP); median of", args.repeats, "runs\n"
    )
    modes: list[tuple[str, Callable[[], Result]]] = [
        ("bare PyAV decode, every frame", lambda: bare_pyav(path)),
        ("RtspSource full rate + BGR", lambda: through_source(path, 1000.0, "all", args.seconds)),
        ("RtspSource 1 frame/s (decode all)", lambda: through_source(path, 1.0, "all", args.seconds)),
        ("RtspSource keyframes only", lambda: through_source(path, 1.0, "keyframes", args.seconds)),
    ]
    results = {name: median_of(args.repeats, run) for name, run in modes}
    bare = results[modes[0][0]]
    header = (
        f"{'mode':36} {'decoded':>7} {'to BGR':>6} {'CPU s':>6} {'fps/CPU-s':>9} {'% core':>7} {'x bare':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:36} {r.decoded:7d} {r.delivered:6d} {r.cpu:6.2f} {r.decoded / r.cpu:9.0f} "
            f"{r.core_pct:6.1f}% {r.core_pct / bare.core_pct:6.2f}"
        )
    one_fps, keys = results[modes[2][0]], results[modes[3][0]]
    print(
        f"\none core sustains about {100 / one_fps.core_pct:.0f} 1080p cameras at 1 frame/s "
        f"(decode all, convert 1/s), or {100 / keys.core_pct:.0f} with keyframes-only decoding "
        f"(1 s GOP: also 1 frame/s); decode only, before analysis and RTSP receive"
    )


if __name__ == "__main__":
    main()
