"""Benchmark of the analyzer path against the bare model: how much the path around the model costs.

Not a test: it prints measured numbers. `make bench` runs it.
- bare: onnxruntime session.run on ready-made input tensors (YOLOX-Nano, 416x416), nothing else;
- path: the gateway's CameraRunner with the real inference worker (pre-processing, decode, NMS),
  ByteTrack, zones and scene rules: 3 scenes on 1 stream, and 1 scene on 8 streams at once.
Frames are decoded up front so that both sides measure analysis, not video decoding.
"""

from __future__ import annotations

import argparse
import os
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
from gateway.analytics import Analytics, CameraRunner  # noqa: E402
from gateway.config import CameraConfig  # noqa: E402
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

    def model(self, name: str, kind: str) -> Any:
        import gateway.analytics as ga

        original = ga.active_model_dir
        card = read_card(ROOT / "config" / "models" / f"{name}.yaml", self.pack / name)
        ga.active_model_dir = lambda *_a: (self.pack / name, card, "bench")  # type: ignore[assignment]
        try:
            return super().model(name, kind)
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


def bare(pack: Path, frames: list[np.ndarray]) -> float:
    session = open_session(pack / "yolox_nano" / "yolox_nano.onnx")
    tensor = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    for _ in range(5):
        session.run(None, {"images": tensor})
    start = time.perf_counter()
    for _ in frames:
        session.run(None, {"images": tensor})
    return len(frames) / (time.perf_counter() - start)


def runner(analytics: PackModels, cam_id: str, scenes: list[dict[str, Any]]) -> CameraRunner:
    camera = CameraConfig.model_validate({"id": cam_id, "name": cam_id, "url": "bench://", "scenes": scenes})
    built = CameraRunner.__new__(CameraRunner)  # not started: the benchmark feeds frames itself
    from analyzers import Region, build_scene
    from gateway.alarms import SceneContext
    from gateway.analytics import CameraStats

    runs = []
    for cfg in camera.scenes:
        scene = build_scene(cam_id, cfg)
        ctx = SceneContext(None, {}, None, [Region(r.name, r.polygon) for r in cfg.regions])
        runs.append(analytics._scene_run(camera, scene, ctx))
    built.camera, built.runs, built.recorder, built.on_alarm = camera, runs, analytics.recorder, None
    built.stats = CameraStats()
    return built


def path(
    analytics: PackModels, frames: list[np.ndarray], streams: int, scenes: list[dict[str, Any]]
) -> float:
    runners = [runner(analytics, f"cam{i}", scenes) for i in range(streams)]
    for r in runners:  # warm-up
        r.analyse(Frame(r.camera.id, 0.0, frames[0], 0.0, True))
    barrier = threading.Barrier(streams + 1)

    def feed(r: CameraRunner) -> None:
        barrier.wait()
        for i, img in enumerate(frames):
            r.analyse(Frame(r.camera.id, 1_795_000_000.0 + i, img, float(i), True))

    threads = [threading.Thread(target=feed, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
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
    args = parser.parse_args()
    pack = Path(args.models)
    frames = frames_of(Path(args.video), args.frames)
    print(f"{os.cpu_count()} cores; {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}")
    analytics = PackModels(pack)
    bare_fps = bare(pack, frames)
    print(f"bare onnxruntime session, YOLOX-Nano 416:          {bare_fps:6.1f} frames/s")
    three = DEMO_SCENES + MORE_SCENES[:1]
    one_stream = path(analytics, frames, 1, three)
    print(
        f"analyzer path, 3 scenes on 1 stream:               {one_stream:6.1f} frames/s "
        f"({100 * one_stream / bare_fps:.0f} % of bare)"
    )
    eight = path(analytics, frames[: max(1, len(frames) // 4)], 8, DEMO_SCENES[:1])
    print(
        f"analyzer path, 1 scene on 8 streams (all streams): {eight:6.1f} frames/s "
        f"({100 * eight / bare_fps:.0f} % of bare)"
    )
    print(f"alarms raised on the way: {analytics.recorder.count}")  # type: ignore[attr-defined]
    analytics.stop()


if __name__ == "__main__":
    main()
