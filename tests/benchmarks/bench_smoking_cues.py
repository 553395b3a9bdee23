"""What each cue of the smoking scene adds, measured image by image on a labelled folder set.

Not a test: it prints measured numbers. Default data: smoker_mendeley/valid (folders smoking/ and
not_smoking/; the latter includes drinking, coughing and holding a phone, the hard negatives).
A frame counts as "smoking" for each rule:

- cigarette: the project's cigarette detector finds a cigarette at its card threshold (the scene's
  default model, filtered by ``Scene.relevant`` as the camera runner does);
- cigarette + pose: such a cigarette is within reach of a nose or wrist of a MoveNet pose (the
  scene's own "at the mouth / in the hand" cue, ``smoking.at_mouth_or_hand``);
- classifier: the project's smoking card says smoking (p >= 0.5) on the whole image (these photos
  are upper-body crops already, what the scene's person crop gives it);
- cigarette or classifier, and cigarette + pose or classifier: the combinations.

Usage: python tests/benchmarks/bench_smoking_cues.py [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers.detectors import ImageClassifier, load_detector  # noqa: E402
from analyzers.pose import load_pose  # noqa: E402
from analyzers.runtime import read_card  # noqa: E402
from analyzers.scenes import SceneConfig, build_scene  # noqa: E402
from analyzers.scenes.base import DETECTION_FLOOR  # noqa: E402
from analyzers.scenes.smoking import at_mouth_or_hand  # noqa: E402

MODELS = Path(os.environ.get("VIGIL_MODELS_DIR", ROOT.parent / "shared" / "models"))
DATA = Path(os.environ.get("VIGIL_DATA_DIR", ROOT.parent / "shared" / "data"))
CARDS = ROOT / "config" / "models"


def prf(pred: np.ndarray, truth: np.ndarray) -> str:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return f"P {p:.3f}  R {r:.3f}  F1 {f1:.3f}  (tp {tp}, fp {fp}, fn {fn})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA / "smoker_mendeley" / "valid")
    args = parser.parse_args()
    scene = build_scene("bench", SceneConfig(scene="smoking"))
    cig_card = read_card(CARDS / "cigarette.yaml", CARDS / "cigarette")
    detector = load_detector(cig_card, CARDS / "cigarette", input_size=scene.config.input_size)
    scene.use_card_thresholds(cig_card.thresholds)
    pose = load_pose(
        read_card(CARDS / "movenet_multipose.yaml", MODELS / "movenet_multipose"),
        MODELS / "movenet_multipose",
    )
    classifier = ImageClassifier(read_card(CARDS / "smoking.yaml", CARDS / "smoking"), CARDS / "smoking")
    smoking_id = classifier.card.classes.index("smoking")
    rows: list[tuple[bool, bool, bool, bool]] = []
    started = time.perf_counter()
    for label in ("smoking", "not_smoking"):
        for path in sorted((args.data / label).iterdir()):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            h, w = image.shape[:2]
            cigs = scene.relevant(detector.detect([image], conf=DETECTION_FLOOR)[0], w, h)
            poses = list(pose.estimate(image))
            probs = classifier.classify([image])[0]
            rows.append(
                (
                    label == "smoking",
                    bool(cigs),
                    any(at_mouth_or_hand(c.box, poses) for c in cigs),
                    float(probs[smoking_id]) >= 0.5,
                )
            )
    elapsed = time.perf_counter() - started
    truth, cig, cig_pose, cls = (np.array(col) for col in zip(*rows, strict=True))
    print(f"{len(rows)} images of {args.data} ({int(truth.sum())} smoking) in {elapsed:.1f} s on this CPU")
    print(f"cigarette                 {prf(cig, truth)}")
    print(f"cigarette + pose          {prf(cig_pose, truth)}")
    print(f"classifier                {prf(cls, truth)}")
    print(f"cigarette or classifier   {prf(cig | cls, truth)}")
    print(f"cig + pose or classifier  {prf(cig_pose | cls, truth)}")
    print(f"cigarette and classifier  {prf(cig & cls, truth)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
