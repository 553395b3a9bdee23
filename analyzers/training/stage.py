"""Run a trained classifier the way it was trained, and turn its output into the detections scenes read.

A classifier card (family ``classifier``) is a second stage: the person detector finds people, this
module cuts the part the classifier was trained on (head, torso, upper body, or the whole frame), and
each crop becomes a ``Detection`` whose label is the classifier's best class (``no_helmet``,
``workwear``, ``smoking`` ...) and whose score is its probability. Scenes name the part in their
``classifier_crop`` attribute and read the classes by label, exactly as they read a detector's.
No torch here: this is runtime code (onnxruntime through ``ImageClassifier``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analyzers.detectors.classifier import ImageClassifier, crop_box
from analyzers.records import Detection, Pose
from analyzers.training.data import grid_boxes

Box = tuple[float, float, float, float]

# Part of a standing person's box (x1, y1, x2, y2 fractions) and how much the crop is grown about its
# centre (the same `expand` as the training crops of analyzers.training.tasks).
PARTS: dict[str, tuple[Box, float]] = {
    "head": ((0.2, 0.0, 0.8, 0.2), 1.5),
    "torso": ((0.1, 0.15, 0.9, 0.6), 1.2),
    "person": ((0.0, 0.0, 1.0, 0.6), 1.0),  # upper body: smoking
    "box": ((0.0, 0.0, 1.0, 1.0), 1.3),  # the detection itself (extinguisher region)
}
HEAD_POINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def part_box(person: Box, part: str, pose: Pose | None = None) -> Box:
    """The region of ``part`` for a person box; the head comes from face keypoints when a pose has
    them (a sitting or bending person's head is not at the top of the box)."""
    if part == "head" and pose is not None:
        points = [p for p in (pose.point(n) for n in HEAD_POINTS) if p is not None]
        if len(points) >= 2:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            side = max(max(xs) - min(xs), (person[2] - person[0]) * 0.25, 4.0) * 1.3
            cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2 - side * 0.15
            return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    (fx1, fy1, fx2, fy2), _ = PARTS[part]
    x1, y1, x2, y2 = person
    w, h = x2 - x1, y2 - y1
    if part == "head":  # a square around the top of the box
        side = min(w * (fx2 - fx1), h * 0.2)
        cx = x1 + w / 2
        return (cx - side / 2, y1, cx + side / 2, y1 + side)
    return (x1 + fx1 * w, y1 + fy1 * h, x1 + fx2 * w, y1 + fy2 * h)


def classify_regions(
    classifier: ImageClassifier,
    image: np.ndarray,
    boxes: Sequence[Box],
    expand: float = 1.0,
    min_score: float = 0.0,
) -> list[Detection]:
    """One detection per box: the classifier's best class over the grown crop (multi-label cards:
    one detection per class at or above ``min_score``, at least 0.5 by default)."""
    if not boxes:
        return []
    probs = classifier.classify([crop_box(image, b, expand) for b in boxes])
    sigmoid = classifier.activation == "sigmoid"
    result = []
    for box, row in zip(boxes, probs, strict=True):
        if not row.any():
            continue
        if sigmoid:
            for k, p in enumerate(row):
                if p >= max(min_score, 0.5):
                    result.append(Detection(tuple(box), float(p), k, classifier.labels[k]))  # type: ignore[arg-type]
        else:
            k = int(row.argmax())
            if row[k] >= min_score:
                result.append(Detection(tuple(box), float(row[k]), k, classifier.labels[k]))  # type: ignore[arg-type]
    return result


def classify_people(
    classifier: ImageClassifier,
    image: np.ndarray,
    people: Sequence[Detection],
    part: str,
    poses: Sequence[Pose] = (),
) -> list[Detection]:
    """The classifier over each person's ``part``; ``frame``: the whole image once, ``grid``: the 3x3
    overlapping patches of the frame (the patch flame/smoke model); neither needs people."""
    if part in ("frame", "grid"):
        h, w = image.shape[:2]
        boxes = [(0.0, 0.0, float(w), float(h))] if part == "frame" else grid_boxes(w, h)
        return classify_regions(classifier, image, boxes)
    from analyzers.scenes.targets import pose_for

    boxes = [part_box(p.box, part, pose_for(p, poses) if poses else None) for p in people]
    return classify_regions(classifier, image, boxes, PARTS[part][1])
