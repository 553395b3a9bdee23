"""Per-camera CPU cost of analysis at 1 frame/s: person (intrusion) + helmet + smoking on one stream.

Not a test: it prints measured numbers. The real camera runner (inference workers, pre/post-processing,
tracking, pose, scene rules) is fed decoded frames of vtest.avi (768x576) at a simulated 1 frame/s;
the process CPU time over the run divided by the frames analysed is the CPU each camera costs per
second of video, whatever else the machine is doing (wall time is printed too). Decoding is not
included: keyframe-only decoding of a 1 s GOP costs about 2 ms a frame here (bench_decode.py).

Usage: python tests/benchmarks/bench_camera_cost.py [--frames N] [--size auto|card|WxH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters import Frame  # noqa: E402
from tests.benchmarks.bench_analyzers import PackModels, frames_of, runner  # noqa: E402

SCENES = {
    "person (intrusion, yolox_nano)": {"scene": "intrusion", "min_duration_s": 3},
    "helmet (ppe)": {"scene": "helmet", "min_duration_s": 3},
    "smoking (cigarette + MoveNet)": {"scene": "smoking", "min_duration_s": 3},
}


def cost(analytics: PackModels, frames: list, scenes: list[dict]) -> tuple[float, float]:
    """(CPU ms per analysed frame, wall ms per frame) of one camera running ``scenes``."""
    r = runner(analytics, "cam", scenes)
    r.analyse(Frame("cam", 0.0, frames[0], 0.0, True))  # warm-up: models loaded, first run done
    r.drain()
    cpu, wall = time.process_time(), time.perf_counter()
    for i, image in enumerate(frames):
        r.analyse(Frame("cam", 1_795_000_000.0 + i, image, float(i), True))  # 1 s apart
        r.drain()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert r.stats.errors == 0, r.stats.last_error
    r.stop()
    return 1000 * cpu / len(frames), 1000 * wall / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=os.environ.get("VIGIL_MODELS_DIR", str(ROOT.parent / "shared/models"))
    )
    media = os.environ.get("VIGIL_MEDIA_DIR", str(ROOT.parent / "shared/media"))
    parser.add_argument("--video", default=os.path.join(media, "vtest.avi"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="auto", help="the scenes' input_size (auto, card or WxH)")
    args = parser.parse_args()
    size: object = args.size if args.size in ("auto", "card") else [int(v) for v in args.size.split("x")]
    frames = frames_of(Path(args.video), args.frames)
    analytics = PackModels(Path(args.models))
    cores = os.cpu_count() or 1
    print(
        f"{cores} cores; {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} at 1 frame/s; "
        f"input_size {args.size}"
    )
    total: list[dict] = []
    for label, scene in SCENES.items():
        cfg = {**scene, "input_size": size}
        total.append(cfg)
        cpu_ms, wall_ms = cost(analytics, frames, [cfg])
        print(
            f"{label:34} {cpu_ms:7.1f} ms CPU per frame ({cpu_ms / 10:.1f} % of a core)  "
            f"wall {wall_ms:6.1f} ms"
        )
    cpu_ms, wall_ms = cost(analytics, frames, total)
    print(
        f"{'all three on one camera':34} {cpu_ms:7.1f} ms CPU per frame ({cpu_ms / 10:.1f} % of a core)  "
        f"wall {wall_ms:6.1f} ms"
    )
    print(f"cameras per box at 80 % of {cores} cores: {int(0.8 * cores * 1000 / cpu_ms)}")
    analytics.stop()


if __name__ == "__main__":
    main()
