"""Image enhancement: how much of a scene's F1 each step recovers on a darkened and on a hazed copy of a
shared valid split, and what each step costs per frame.

Not a test: it prints a markdown table. For each split a darkened copy (x0.2 brightness, sensor noise
sigma 2) and a hazed copy (I*t + A*(1-t), t 0.45, airlight 215) are written; the enhanced copies are the
degraded images run through ``analyzers.enhance.enhance`` (the function the camera runner applies
before inference). Every copy is scored by ``vigil eval --scene NAME --data DIR --end-to-end --json``
(the scene's own path); recovered = (F1 enhanced - F1 degraded) / (F1 original - F1 degraded).
Cost: CPU ms per 1280x720 frame of each step on vtest.avi frames.

Usage: python tests/benchmarks/bench_enhance.py [--only helmet] [--gain 0.2] [--haze-t 0.45] [--no-cost]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from analyzers.enhance import EnhanceSettings, enhance  # noqa: E402

DATA = Path(os.environ.get("VIGIL_DATA_DIR", ROOT.parent / "shared" / "data"))
MEDIA = Path(os.environ.get("VIGIL_MEDIA_DIR", ROOT.parent / "shared" / "media"))
# (scene, split, class reported) measured
CASES = [
    ("helmet", "hard_hat_sample", "helmet"),
    ("intrusion", "construction_site_safety", "person"),
]
STEPS: dict[str, list[list[str]]] = {
    "dark": [["lowlight"], ["clahe"], ["lowlight", "clahe"]],
    "haze": [["dehaze"], ["clahe"], ["dehaze", "clahe"]],
}


GAIN, HAZE_T = 0.2, 0.45  # --gain, --haze-t


def darken(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0, 2, image.shape)
    return np.clip(image.astype(np.float32) * GAIN + noise, 0, 255).astype(np.uint8)


def haze(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(image.astype(np.float32) * HAZE_T + 215 * (1 - HAZE_T), 0, 255).astype(np.uint8)


def copy_split(split: Path, out: Path, change: object) -> Path:
    """out/<name>/{data.yaml, valid/images, valid/labels} with every image passed through ``change``."""
    target = out / "valid"
    (target / "images").mkdir(parents=True)
    shutil.copytree(split / "valid" / "labels", target / "labels")
    shutil.copy(split / "data.yaml", out / "data.yaml")
    for path in sorted((split / "valid" / "images").iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        cv2.imwrite(str(target / "images" / path.name), change(image), [cv2.IMWRITE_JPEG_QUALITY, 95])  # type: ignore[operator]
    return target


def f1(scene: str, split: Path, cls: str) -> float:
    out = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "vigil"),
            "eval",
            "--scene",
            scene,
            "--end-to-end",
            "--data",
            str(split),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("{"))
    return float(json.loads(line)["classes"][cls]["f1"])


def costs() -> dict[str, float]:
    frames = []
    with av.open(str(MEDIA / "vtest.avi")) as c:
        for f in c.decode(video=0):
            frames.append(cv2.resize(f.to_ndarray(format="bgr24"), (1280, 720)))
            if len(frames) == 30:
                break
    out = {}
    for step in ("clahe", "lowlight", "dehaze"):
        settings = EnhanceSettings(steps=[step])
        dark = [(f * 0.2).astype(np.uint8) for f in frames]  # lowlight only works on dark frames
        started = time.process_time()
        for image in dark:
            enhance(image, settings)
        out[step] = (time.process_time() - started) / len(dark) * 1000
    return out


def main() -> None:
    global GAIN, HAZE_T
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="one scene of " + ", ".join(c[0] for c in CASES))
    p.add_argument(
        "--gain", type=float, default=GAIN, help=f"darkened copy: brightness factor (default {GAIN})"
    )
    p.add_argument(
        "--haze-t", type=float, default=HAZE_T, help=f"hazed copy: transmission (default {HAZE_T})"
    )
    p.add_argument("--no-cost", action="store_true", help="skip the cost per frame")
    args = p.parse_args()
    GAIN, HAZE_T = args.gain, args.haze_t
    print(f"darkened: x{GAIN} + noise sigma 2; hazed: transmission {HAZE_T}, airlight 215\n")
    rng = np.random.default_rng(17)
    if not args.no_cost:
        print("| step | CPU ms per 1280x720 frame |\n|---|---|")
        for step, ms in costs().items():
            print(f"| {step} | {ms:.1f} |")
        print()
    print("| scene (class) | split | copy | steps | F1 | recovered |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scene, name, cls in CASES:
            if args.only and scene != args.only:
                continue
            split = DATA / name
            base = f1(scene, split / "valid", cls)
            print(f"| {scene} ({cls}) | {name}/valid | original | - | {base:.3f} | |", flush=True)
            for kind, degrade in (("dark", darken), ("haze", haze)):
                degraded = copy_split(split, Path(tmp) / f"{name}-{kind}", lambda i, d=degrade: d(i, rng))
                low = f1(scene, degraded, cls)
                print(f"| {scene} ({cls}) | {name}/valid | {kind} | - | {low:.3f} | |", flush=True)
                for steps in STEPS[kind]:
                    settings = EnhanceSettings(steps=steps)
                    label = "+".join(steps)
                    fixed = copy_split(
                        Path(tmp) / f"{name}-{kind}",
                        Path(tmp) / f"{name}-{kind}-{label}",
                        lambda i, s=settings: enhance(i, s),
                    )
                    score = f1(scene, fixed, cls)
                    gap = base - low
                    recovered = f"{(score - low) / gap:+.0%}" if gap > 0.005 else "n/a (no loss)"
                    print(
                        f"| {scene} ({cls}) | {name}/valid | {kind} | {label} | {score:.3f} | {recovered} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
