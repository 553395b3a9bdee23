"""Cost of judging by enrolment: the EfficientNet-Lite0 embedding per person crop at batch 1/8/32, and
the work-clothes scene's per-camera cost at 1 frame/s with 10 people in view.

Not a test: it prints measured numbers. The embedder runs as the gateway runs it (one session, one
thread: ``shared_embedder``); CPU ms are process CPU time, so they hold whatever else the machine is
doing (wall ms are printed too, and are what other load inflates). The scene is the real
``Workwear.update`` (tracking, torso crops, one embedding batch per frame, k-NN / centroid matching)
against an enrolment of two uniforms and a negative class (``--examples`` each) held in memory; the
person detector's own cost per frame (YOLOX-Nano at its card size) is measured beside it.

Usage: python tests/benchmarks/bench_enrolment.py [--frames N] [--examples N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers.enrolment import (  # noqa: E402
    Enrolled,
    Examples,
    calibrate,
    colour_descriptors,
    embedder_path,
    shared_embedder,
    use_source,
)
from analyzers.enrolment.embedding import Embedder  # noqa: E402
from analyzers.scenes import SceneConfig, build_scene  # noqa: E402
from tests.enrolment.synthetic import BLUE, GREEN, ORANGE, draw_worker, person, worker_examples  # noqa: E402

W, H = 1280, 720


class MemorySource:
    def __init__(self, enrolled: Enrolled, embedder: Embedder) -> None:
        self._enrolled, self._embedder = enrolled, embedder

    def enrolled(self, scene: str, camera_id: str) -> Enrolled | None:
        return self._enrolled

    def embedder(self) -> Embedder:
        return self._embedder


def per_crop(embedder: Embedder, batch: int, rounds: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per crop at ``batch`` crops per inference."""
    crops = worker_examples(BLUE, batch, seed=batch)
    embedder.batch = batch
    embedder.embed(crops)  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        embedder.embed(crops)
    n = rounds * batch
    return 1000 * (time.process_time() - cpu) / n, 1000 * (time.perf_counter() - wall) / n


def enrolment(embedder: Embedder, n: int) -> Enrolled:
    parts = []
    for name, colour, negative, seed in (
        ("blue", BLUE, False, 1),
        ("orange", ORANGE, False, 2),
        ("none", GREEN, True, 3),
    ):
        crops = worker_examples(colour, n, seed)
        parts.append(
            Examples(
                embedder.embed(crops), colour_descriptors(crops), (name,) * n, np.full(n, negative, bool)
            )
        )
    examples = Examples.join(parts)
    return Enrolled(examples, calibrate(examples))


def camera_cost(embedder: Embedder, enrolled: Enrolled, frames: int, people: int) -> tuple[float, float]:
    """(CPU ms, wall ms) of the work-clothes scene per frame with ``people`` workers in view."""
    rng = np.random.default_rng(0)
    scene = build_scene("cam", SceneConfig(scene="workwear"))
    pictures = []
    for f in range(frames + 1):
        image = rng.integers(70, 130, (H, W, 3), dtype=np.uint8)
        boxes = []
        for k in range(people):
            x = 20 + k * (W - 100) // people + f % 5
            box = (float(x), 200.0, float(x + 80), 440.0)
            draw_worker(image, box, (BLUE, ORANGE, GREEN)[k % 3], rng)
            boxes.append(person(box))
        pictures.append((image, boxes))
    old = use_source(MemorySource(enrolled, embedder))
    try:
        scene.update(0.0, pictures[0][1], W, H, image=pictures[0][0])  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for i, (image, boxes) in enumerate(pictures[1:]):
            scene.update(1_795_000_000.0 + i, boxes, W, H, image=image)
        return 1000 * (time.process_time() - cpu) / frames, 1000 * (time.perf_counter() - wall) / frames
    finally:
        use_source(old)


def detector_cost(models: Path, frames: int) -> tuple[float, float] | None:
    from analyzers.detectors import load_detector
    from analyzers.runtime import read_card

    card_path = ROOT / "config" / "models" / "yolox_nano.yaml"
    if not (models / "yolox_nano").is_dir() or not card_path.is_file():
        return None
    detector = load_detector(read_card(card_path, models / "yolox_nano"), models / "yolox_nano", threads=1)
    image = np.random.default_rng(1).integers(0, 255, (H, W, 3), dtype=np.uint8)
    detector.detect([image])
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(frames):
        detector.detect([image])
    return 1000 * (time.process_time() - cpu) / frames, 1000 * (time.perf_counter() - wall) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=os.environ.get("VIGIL_MODELS_DIR", str(ROOT.parent / "shared/models"))
    )
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--examples", type=int, default=50, help="examples per enrolled class")
    parser.add_argument("--people", type=int, default=10)
    args = parser.parse_args()
    embedder = shared_embedder(embedder_path(Path(args.models)))
    print(f"embedder {embedder.path.name} on {embedder.provider}, 1 thread (as the gateway runs it)")
    print(f"{'batch':>5}  {'CPU ms/crop':>11}  {'wall ms/crop':>12}")
    for batch in (1, 8, 32):
        cpu, wall = per_crop(embedder, batch, rounds=max(1, 64 // batch))
        print(f"{batch:>5}  {cpu:>11.1f}  {wall:>12.1f}")
    enrolled = enrolment(embedder, args.examples)
    embedder.batch = 32
    cpu, wall = camera_cost(embedder, enrolled, args.frames, args.people)
    cal = enrolled.calibration
    print(
        f"work-clothes scene, {args.people} people in view, enrolment of {len(enrolled.examples.classes)} "
        f"examples ({cal.method}): {cpu:.0f} CPU ms / {wall:.0f} wall ms per frame"
    )
    found = detector_cost(Path(args.models), args.frames)
    if found is not None:
        print(
            f"person detector (yolox_nano, card size) per frame: {found[0]:.0f} CPU ms / "
            f"{found[1]:.0f} wall ms"
        )
        total = cpu + found[0]
        print(
            f"per camera at 1 frame/s: {total:.0f} CPU ms per second of video = "
            f"{total / 10:.1f} % of one core"
        )


if __name__ == "__main__":
    main()
