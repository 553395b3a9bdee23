"""Run a trained classifier the way it was trained, and turn its output into the detections scenes read.

A classifier card (family ``classifier``) is a second stage: the person detector finds people, this
module cuts the part the classifier was trained on (head, torso, upper body, or the whole frame), and
each crop becomes a ``Detection`` whose label is the classifier's best class (``no_helmet``,
``workwear``, ``smoking`` ...) and whose score is its probability. Scenes name the part in their
``classifier_crop`` attribute and read the classes by label, exactly as they read a detector's.
No torch here: this is runtime code (onnxruntime through ``ImageClassifier``), shared by the camera
runners and by training (analyzers.training cuts its samples with these same functions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analyzers.detectors.classifier import ImageClassifier, crop_box
from analyzers.records import Detection, Pose

Box = tuple[float, float, float, float]

# Part of a standing person's box (x1, y1, x2, y2 fractions) and how much the crop is grown about its
# centre (the same `expand` as the training crops of analyzers.training.tasks).
PARTS: dict[str, tuple[Box, float]] = {
    "head": ((0.2, 0.0, 0.8, 0.2), 1.5),
    "torso": ((0.1, 0.15, 0.9, 0.6), 1.2),
    "person": ((0.0, 0.0, 1.0, 0.6), 1.0),  # upper body: smoking
    "box": ((0.0, 0.0, 1.0, 1.0), 1.3),  # the detection itself
    "scan": ((0.0, 0.0, 1.0, 1.0), 1.3),  # sliding windows (extinguisher region classifier)
}
PEOPLE_FREE = ("frame", "grid", "scan")  # parts cut from the frame alone, not from people
HEAD_POINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def grid_boxes(
    width: int, height: int, grid: int = 3, overlap: float = 0.25
) -> list[tuple[float, float, float, float]]:
    """``grid`` x ``grid`` overlapping patches covering the frame (the same at training and run time)."""
    pw, ph = width / (grid - (grid - 1) * overlap), height / (grid - (grid - 1) * overlap)
    sx, sy = pw * (1 - overlap), ph * (1 - overlap)
    return [(i * sx, j * sy, i * sx + pw, j * sy + ph) for j in range(grid) for i in range(grid)]


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


Job = tuple[np.ndarray, Sequence[Box], float]  # (image, boxes, expand): one frame's crops


def region_boxes(part: str, width: int, height: int) -> list[Box]:
    """The boxes of a part that needs no people: ``frame`` (the whole image), ``grid`` (3x3
    overlapping patches, the patch flame/smoke model) or ``scan`` (sliding windows, the region
    classifier of small objects such as extinguishers)."""
    if part == "frame":
        return [(0.0, 0.0, float(width), float(height))]
    if part == "grid":
        return grid_boxes(width, height)
    if part == "scan":
        return scan_boxes(width, height)
    raise ValueError(f"part {part!r} needs people; use part_box")


def scan_boxes(
    width: int, height: int, sides: Sequence[float] = (0.12, 0.2, 0.3), aspect: float = 0.5
) -> list[Box]:
    """Upright windows (width = ``aspect`` x height) of each side (a fraction of the frame height),
    overlapping by half: where a region classifier looks for a small standing object."""
    boxes: list[Box] = []
    for frac in sides:
        h = max(8.0, frac * height)
        w = min(float(width), h * aspect)
        xs = np.arange(0.0, max(width - w, 0.0) + 1e-6, w / 2)
        ys = np.arange(0.0, max(height - h, 0.0) + 1e-6, h / 2)
        boxes.extend((float(x), float(y), float(x + w), float(y + h)) for y in ys for x in xs)
    return boxes


def merge_boxes(dets: Sequence[Detection], overlap: float = 0.2) -> list[Detection]:
    """Windows of one label that overlap (intersection over the smaller box above ``overlap``,
    transitively) are one object: each group becomes its best-scoring window, so a count of the
    result counts objects, not the windows that saw them."""
    order = sorted(dets, key=lambda d: -d.score)
    parent = list(range(len(order)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(order):
        for j in range(i):
            b = order[j]
            if a.label != b.label:
                continue
            ix = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
            iy = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
            smaller = min(
                (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]), (b.box[2] - b.box[0]) * (b.box[3] - b.box[1])
            )
            if smaller > 0 and ix * iy / smaller > overlap:
                parent[find(i)] = find(j)
    kept: dict[int, Detection] = {}
    for i, d in enumerate(order):  # best first: the first of each group represents it
        kept.setdefault(find(i), d)
    return list(kept.values())


def _decide(classifier: ImageClassifier, box: Box, row: np.ndarray, min_score: float) -> list[Detection]:
    if not row.any():  # an empty crop
        return []
    if classifier.activation == "sigmoid":
        return [
            Detection(tuple(box), float(p), k, classifier.labels[k])  # type: ignore[arg-type]
            for k, p in enumerate(row)
            if p >= max(min_score, 0.5)
        ]
    k = int(row.argmax())
    if row[k] < min_score:
        return []
    return [Detection(tuple(box), float(row[k]), k, classifier.labels[k])]  # type: ignore[arg-type]


def classify_jobs(
    classifier: ImageClassifier, jobs: Sequence[Job], min_score: float = 0.0
) -> list[list[Detection]]:
    """Every crop of several frames in one batched pass (the inference worker's batch function):
    one list of detections per job, one detection per box (see ``classify_regions``)."""
    crops = [crop_box(image, b, expand) for image, boxes, expand in jobs for b in boxes]
    probs = classifier.classify(crops) if crops else np.zeros((0, 0), np.float32)
    out, k = [], 0
    for _, boxes, _ in jobs:
        dets = []
        for box in boxes:
            dets.extend(_decide(classifier, box, probs[k], min_score))
            k += 1
        out.append(dets)
    return out


def classify_regions(
    classifier: ImageClassifier,
    image: np.ndarray,
    boxes: Sequence[Box],
    expand: float = 1.0,
    min_score: float = 0.0,
) -> list[Detection]:
    """One detection per box: the classifier's best class over the grown crop (multi-label cards:
    one detection per class at or above ``min_score``, at least 0.5 by default)."""
    return classify_jobs(classifier, [(image, boxes, expand)], min_score)[0]


def crop_expand(part: str) -> float:
    """How much the runtime grows a part's box before cropping (as the training crops were cut)."""
    return PARTS[part][1] if part in PARTS else 1.0


def person_boxes(people: Sequence[Detection], part: str, poses: Sequence[Pose] = ()) -> list[Box]:
    """The ``part`` box of every person (the head from face keypoints where a pose has them)."""
    from analyzers.scenes.targets import pose_for

    return [part_box(p.box, part, pose_for(p, poses) if poses else None) for p in people]


def classify_people(
    classifier: ImageClassifier,
    image: np.ndarray,
    people: Sequence[Detection],
    part: str,
    poses: Sequence[Pose] = (),
) -> list[Detection]:
    """The classifier over each person's ``part``; ``frame``, ``grid`` and ``scan`` need no people
    (see ``region_boxes``; ``scan`` windows are merged into one detection per object)."""
    if part in PEOPLE_FREE:
        h, w = image.shape[:2]
        dets = classify_regions(classifier, image, region_boxes(part, w, h), crop_expand(part))
        return merge_boxes(dets) if part == "scan" else dets
    return classify_regions(classifier, image, person_boxes(people, part, poses), crop_expand(part))
