"""Benchmark of the first slice: how many frames per second it analyses on this machine.

Not a test: it prints measured numbers. Run `make bench` (or this file with the venv's python).
Stages: PyAV decode of vtest.avi (768x576), YOLOX-Nano inference (onnxruntime), zones + scenes,
and the whole chain with every frame analysed (the capacity available to 1 fps cameras).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers import SceneConfig, build_scene  # noqa: E402
from analyzers.detectors.yolox import YoloxDetector  # noqa: E402
from analyzers.runtime import read_card  # noqa: E402
from tests.conftest import DEMO_SCENES  # noqa: E402


def detector(models: Path, threads: int) -> YoloxDetector:
    card = read_card(ROOT / "config" / "models" / "yolox_nano.yaml", models / "yolox_nano")
    return YoloxDetector(card, models / "yolox_nano", threads=threads)


def cpu_time() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--models", default=os.environ.get("VIGIL_MODELS_DIR", str(ROOT.parent / "shared/models"))
    )
    parser.add_argument(
        "--video",
        default=os.path.join(
            os.environ.get("VIGIL_MEDIA_DIR", str(ROOT.parent / "shared/media")), "vtest.avi"
        ),
    )
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--stream-fps", type=float, default=10.0, help="frame rate of a live camera")
    args = parser.parse_args()
    models, video = Path(args.models), Path(args.video)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"onnxruntime {ort.__version__} {ort.get_available_providers()}; PyAV {av.__version__}"
    )

    frames: list[np.ndarray] = []
    t0, c0 = time.perf_counter(), cpu_time()
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == args.frames:
                break
    wall, cpu = time.perf_counter() - t0, cpu_time() - c0
    decode_per_cpu = len(frames) / cpu
    print(
        f"decode + BGR ({frames[0].shape[1]}x{frames[0].shape[0]}): {len(frames) / wall:7.1f} frames/s "
        f"({len(frames) / cpu:.1f} per CPU-second)"
    )

    for threads in (1, 0):
        det = detector(models, threads)
        det.detect(frames[:3])  # warm-up
        t0, c0 = time.perf_counter(), cpu_time()
        for img in frames:
            det.detect([img], conf=0.25)
        wall, cpu = time.perf_counter() - t0, cpu_time() - c0
        label = "1 thread" if threads == 1 else "all cores"
        print(
            f"YOLOX-Nano 416 inference, {label:9}: {len(frames) / wall:7.1f} frames/s "
            f"({1000 * wall / len(frames):.1f} ms/frame, {len(frames) / cpu:.1f} per CPU-second)"
        )

    det = detector(models, 0)
    scenes = [build_scene("bench", SceneConfig.model_validate(s)) for s in DEMO_SCENES]
    t0, c0 = time.perf_counter(), cpu_time()
    events = 0
    n = 0
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == args.frames:
                break
            img = frame.to_ndarray(format="bgr24")
            dets = det.detect([img], conf=0.25)[0]
            for scene in scenes:
                events += len(scene.update(1_700_000_000.0 + i / 10, dets, img.shape[1], img.shape[0]))
            n += 1
    wall, cpu = time.perf_counter() - t0, cpu_time() - c0
    print(
        f"whole slice (decode + inference + zones + 2 scenes), every frame: {n / wall:7.1f} frames/s "
        f"({n / cpu:.1f} per CPU-second); {events} events"
    )
    # A live camera decodes every frame but analyses one a second: derive what a camera costs.
    stream_fps = args.stream_fps
    per_camera_cpu = 1.0 / (n / cpu) + (stream_fps - 1) / decode_per_cpu
    cores = os.cpu_count() or 1
    print(
        f"=> a {stream_fps:g} fps camera analysed at 1 frame/s costs {100 * per_camera_cpu:.1f} % of a core "
        f"(derived from the lines above): about {int(cores / per_camera_cpu)} such cameras fit {cores} cores"
    )


if __name__ == "__main__":
    main()
