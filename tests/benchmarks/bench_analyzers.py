"""Benchmark of the analyzer path against the bare model: how much the path around the model costs.

Not a test: it prints measured numbers. `make bench` runs it.
- bare: onnxruntime session.run on ready-made input tensors (YOLOX-Nano, 416x416), nothing else;
- path: the gateway's CameraRunner with the real inference worker (pre-processing, decode, NMS),
  ByteTrack, zones and scene rules: 3 scenes on 1 stream, and 1 scene on 8 streams at once.
Frames are decoded up front so that both sides measure analysis, not video decoding; the feed cycles
through a working set of 8 decoded frames (10 MB), as in the gateway a frame is analysed right after
its decoder wrote it and is still in the CPU cache (200 distinct 768x576 frames are 265 MB, and reading
them cold from memory tripled the cost of pre-processing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from adapters import Frame  # noqa: E402
from analyzers.runtime import read_card  # noqa: E402
from analyzers.runtime.session import open_session  # noqa: E402
from gateway.cameras.analytics import Analytics, CameraRunner  # noqa: E402
from gateway.config.schema import CameraConfig  # noqa: E402
from tests.conftest import DEMO_SCENES, MORE_SCENES  # noqa: E402


class NullRecorder:
    """Alarms are counted, not stored: the benchmark measures analysis."""

    def __init__(self) -> None:
        self.count = 0

    def record(self, *_args: Any) -> str:
        self.count += 1
        return f"alarm-{self.count}"


class PackModels(Analytics):
    """Analytics that loads models straight from the pack folder instead of the database."""

    def __init__(self, pack: Path) -> None:
        super().__init__(db=None, storage_root=pack, recorder=NullRecorder())  # type: ignore[arg-type]
        self.pack = pack

    def model(self, name: str, kind: str, input_size: Any = "auto") -> Any:
        import gateway.cameras.analytics as ga

        original = ga.active_model_dir
        # the project's own models ship beside their cards; the pack's come from the pack folder
        folder = ROOT / "config" / "models" / name
        folder = folder if (folder / f"{name}.onnx").is_file() else self.pack / name
        card = read_card(ROOT / "config" / "models" / f"{name}.yaml", folder)
        ga.active_model_dir = lambda *_a: (folder, card, "bench")  # type: ignore[assignment]
        try:
            return super().model(name, kind, input_size)
        finally:
            ga.active_model_dir = original


def frames_of(video: Path, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                break
    return out


def bare(pack: Path, frames: list[np.ndarray], threads: int, parallel: int) -> float:
    """session.run on a ready tensor, nothing else: ``parallel`` runs at once on one session."""
    session = open_session(pack / "yolox_nano" / "yolox_nano.onnx", threads)
    tensor = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    for _ in range(5):
        session.run(None, {"images": tensor})
    per_thread = len(frames) // parallel

    def work() -> None:
        for _ in range(per_thread):
            session.run(None, {"images": tensor})

    threads_ = [threading.Thread(target=work) for _ in range(parallel)]
    start = time.perf_counter()
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    return per_thread * parallel / (time.perf_counter() - start)


def runner(analytics: PackModels, cam_id: str, scenes: list[dict[str, Any]]) -> CameraRunner:
    """A camera runner whose source is never started: the benchmark feeds it frames."""
    from analyzers import Region, build_scene
    from gateway.alarms.recorder import SceneContext

    camera = CameraConfig.model_validate(
        {"id": cam_id, "name": cam_id, "url": "file://bench", "scenes": scenes}
    )
    runs = []
    for cfg in camera.scenes:
        scene = build_scene(cam_id, cfg)
        ctx = SceneContext(None, {}, None, [Region(r.name, r.polygon) for r in cfg.regions])
        runs.append(analytics.scene_run(camera, scene, ctx))
    return CameraRunner(camera, runs, analytics.recorder)  # type: ignore[arg-type]


def path(
    analytics: PackModels, frames: list[np.ndarray], streams: int, scenes: list[dict[str, Any]]
) -> float:
    runners = [runner(analytics, f"cam{i}", scenes) for i in range(streams)]
    for r in runners:  # warm-up
        r.analyse(Frame(r.camera.id, 0.0, frames[0], 0.0, True))
        r.drain()
    barrier = threading.Barrier(streams + 1)

    def feed(r: CameraRunner) -> None:
        barrier.wait()
        for i, img in enumerate(frames):
            r.analyse(Frame(r.camera.id, 1_795_000_000.0 + i, img, float(i), True))
        r.drain()

    threads = [threading.Thread(target=feed, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for r in runners:
        r.stop()
    errors = sum(r.stats.errors for r in runners)
    assert errors == 0, f"{errors} frames failed"
    return streams * len(frames) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", default=os.environ.get("VIGIL_MODELS_DIR", str(ROOT.parent / "shared/models"))
    )
    media = os.environ.get("VIGIL_MEDIA_DIR", str(ROOT.parent / "shared/media"))
    parser.add_argument("--video", default=os.path.join(media, "vtest.avi"))
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pack = Path(args.models)
    decoded = frames_of(Path(args.video), 8)
    frames = [decoded[i % len(decoded)] for i in range(args.frames)]
    print(f"{os.cpu_count()} cores; {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}")
    analytics = PackModels(pack)
    cores = os.cpu_count() or 1
    three = DEMO_SCENES + MORE_SCENES[:1]
    # Rounds interleave the measurements, so a busy moment of the machine hits all of them alike.
    rounds: dict[str, list[float]] = {"default": [], "pool": [], "one": [], "eight": []}
    for _ in range(args.rounds):
        rounds["default"].append(bare(pack, frames, 0, 1))
        rounds["pool"].append(bare(pack, frames, 1, cores))
        rounds["one"].append(path(analytics, frames, 1, three))
        rounds["eight"].append(path(analytics, frames[: max(1, len(frames) // 4)], 8, DEMO_SCENES[:1]))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    bare_fps = max(med["default"], med["pool"])  # compare with the better of the two
    print(f"medians of {args.rounds} rounds:")
    print(f"bare session, all cores, one run at a time:        {med['default']:6.1f} frames/s")
    print(f"bare session, 1 thread, {cores} runs side by side:      {med['pool']:6.1f} frames/s")
    for key, label in (("one", "3 scenes on 1 stream"), ("eight", "1 scene on 8 streams")):
        print(
            f"analyzer path, {label}:{' ' * (22 - len(label))}{med[key]:6.1f} frames/s "
            f"({100 * med[key] / bare_fps:.0f} % of the better bare)"
        )
    print(f"alarms raised on the way: {analytics.recorder.count}")  # type: ignore[attr-defined]
    analytics.stop()


if __name__ == "__main__":
    main()
