"""Detector evaluation on YOLO-format labelled data: reading, matching and per-class metrics.

Matching (object level), per image and per class:
  predictions are taken in descending score order (ties keep their input order); each is matched to
  the unmatched ground truth of the same class with the highest IoU, and is a true positive when that
  IoU is at least the threshold (0.5 by default). A prediction that matches nothing, including a
  second prediction on an object already matched, is a false positive; every ground truth left
  unmatched is a false negative (a miss).

Image level, per class: an image is positive when it has at least one ground truth of the class and
predicted positive when it has at least one prediction of it, whatever the boxes.

Empty denominators: a ratio whose denominator is 0 is 1.0 when the class is absent from both the
ground truth and the predictions (nothing to find and nothing claimed: no mistake was made), and 0.0
otherwise. So precision with no predictions is 0.0 when there were ground truths to find, and recall
with no ground truth is 0.0 when the model predicted the class anyway. F1 is 2PR / (P + R), and 0.0
when P + R is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from analyzers.records import Detection

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Normalised coordinates may overshoot 0..1 by rounding; anything beyond is pixel labels by mistake.
COORD_TOLERANCE = 0.01


class EvalError(ValueError):
    """The data or the options cannot be evaluated; the message says what to fix."""


# --- dataset ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelBox:
    """One YOLO label line: class index and a normalised centre box."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    def to_pixels(self, width: int, height: int) -> Box:
        """The box in pixels of an image of that size, clipped to the image."""
        x1 = min(max((self.cx - self.w / 2) * width, 0.0), float(width))
        y1 = min(max((self.cy - self.h / 2) * height, 0.0), float(height))
        x2 = min(max((self.cx + self.w / 2) * width, 0.0), float(width))
        y2 = min(max((self.cy + self.h / 2) * height, 0.0), float(height))
        return (x1, y1, x2, y2)


@dataclass(frozen=True, slots=True)
class Truth:
    """A ground-truth object in pixels, named by its class."""

    label: str
    box: Box


@dataclass(frozen=True, slots=True)
class LabelledImage:
    image: Path
    labels: tuple[LabelBox, ...]  # empty when the image has no label file: it shows no object

    def truths(self, names: Sequence[str], width: int, height: int) -> list[Truth]:
        return [Truth(names[b.class_id], b.to_pixels(width, height)) for b in self.labels]


@dataclass(frozen=True)
class YoloDataset:
    root: Path
    names: list[str]
    images: list[LabelledImage]

    @property
    def object_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.names, 0)
        for item in self.images:
            for b in item.labels:
                counts[self.names[b.class_id]] += 1
        return counts


def read_names(data_yaml: Path) -> list[str]:
    """Class names from a data.yaml ``names`` list, or a ``{index: name}`` mapping."""
    try:
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise EvalError(f"{data_yaml}: cannot read it: {exc}") from exc
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not names:
        raise EvalError(f"{data_yaml}: needs `names`, a list of class names in class-index order")
    return [str(n) for n in names]


def parse_label_file(path: Path, class_count: int) -> list[LabelBox]:
    """Read ``class cx cy w h`` lines; blank lines are skipped, anything else malformed is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: cannot read the label file: {exc}") from exc
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) != 5:
            hint = " (polygon labels are not supported)" if len(fields) > 5 else ""
            raise EvalError(f"{where}: expected 5 values `class cx cy w h`, found {len(fields)}{hint}")
        try:
            class_id = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise EvalError(f"{where}: not a class index and four numbers: {line.strip()!r}") from None
        if not 0 <= class_id < class_count:
            raise EvalError(f"{where}: class {class_id} is out of range; data.yaml has {class_count} names")
        values = (cx, cy, w, h)
        if not all(math.isfinite(v) and -COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE for v in values):
            raise EvalError(f"{where}: coordinates must be normalised to 0..1: {line.strip()!r}")
        if w <= 0 or h <= 0:
            raise EvalError(f"{where}: the box has no area: {line.strip()!r}")
        boxes.append(LabelBox(class_id, cx, cy, w, h))
    return boxes


def find_data_yaml(root: Path) -> Path:
    for candidate in (root / "data.yaml", root.parent / "data.yaml"):
        if candidate.is_file():
            return candidate
    raise EvalError(f"{root}: no data.yaml with the class names in this folder or its parent")


def load_yolo_dataset(root: Path) -> YoloDataset:
    """A YOLO split: ``root/images``, ``root/labels`` and data.yaml in ``root`` or its parent.

    Every label file is parsed here, before any inference, so bad labels fail fast. An image without
    a label file has no objects.
    """
    if not root.is_dir():
        raise EvalError(f"{root}: data folder not found")
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        splits = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())
        hint = f"; pass one of its splits: {', '.join(splits)}" if splits else ""
        raise EvalError(f"{root}: no images/ folder (a YOLO split holds images/ and labels/){hint}")
    if not labels_dir.is_dir():
        raise EvalError(f"{root}: no labels/ folder (a YOLO split holds images/ and labels/)")
    names = read_names(find_data_yaml(root))
    items = []
    for image in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label_file = labels_dir / f"{image.stem}.txt"
        labels = parse_label_file(label_file, len(names)) if label_file.is_file() else []
        items.append(LabelledImage(image, tuple(labels)))
    if not items:
        raise EvalError(f"{images_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return YoloDataset(root, names, items)


# --- class mapping ------------------------------------------------------------------------------


def parse_class_map(text: str | None) -> dict[str, str]:
    """``"a=b,c=d"`` -> ``{"a": "b", "c": "d"}`` (dataset class -> model class)."""
    mapping: dict[str, str] = {}
    if not text:
        return mapping
    for part in text.split(","):
        if not part.strip():
            continue
        source, sep, target = part.partition("=")
        source, target = source.strip(), target.strip()
        if not sep or not source or not target:
            raise EvalError(f"--map entry {part.strip()!r} is not DATASET_CLASS=MODEL_CLASS")
        if source in mapping:
            raise EvalError(f"--map names dataset class {source!r} twice")
        mapping[source] = target
    return mapping


@dataclass(frozen=True)
class ClassPlan:
    """Which dataset classes are evaluated against which model classes."""

    pairs: dict[str, str]  # dataset class -> model class, in dataset order
    skipped: list[str]  # dataset classes with no model class to compare with

    @property
    def model_to_dataset(self) -> dict[str, str]:
        return {model: data for data, model in self.pairs.items()}


def plan_classes(
    dataset_names: Sequence[str], model_names: Iterable[str], mapping: Mapping[str, str]
) -> ClassPlan:
    """Mapped classes, plus dataset classes whose name is a model class that nothing is mapped to.

    ``model_names`` are the classes the model may be judged on (a scene narrows them to its labels).
    """
    model_set = set(model_names)
    for source, target in mapping.items():
        if source not in dataset_names:
            raise EvalError(
                f"--map: {source!r} is not a dataset class; data.yaml has {', '.join(dataset_names)}"
            )
        if target not in model_set:
            known = ", ".join(sorted(model_set)) if len(model_set) <= 20 else f"{len(model_set)} classes"
            raise EvalError(f"--map: {target!r} is not a class the model is evaluated on ({known})")
    targets = list(mapping.values())
    for target in set(targets):
        if targets.count(target) > 1:
            sources = [s for s, t in mapping.items() if t == target]
            raise EvalError(f"--map: model class {target!r} is mapped from {', '.join(sources)}; map one")
    pairs: dict[str, str] = {}
    skipped = []
    for name in dataset_names:
        if name in mapping:
            pairs[name] = mapping[name]
        elif name in model_set and name not in targets:
            pairs[name] = name
        else:
            skipped.append(name)
    return ClassPlan(pairs, skipped)


def relabel(detections: Iterable[Detection], model_to_dataset: Mapping[str, str]) -> list[Detection]:
    """Detections of evaluated classes, renamed to the dataset's class names; the rest dropped."""
    return [
        Detection(d.box, d.score, d.class_id, model_to_dataset[d.label], d.track_id)
        for d in detections
        if d.label in model_to_dataset
    ]


# --- matching and metrics -----------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class ClassCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    image_tp: int = 0
    image_fp: int = 0
    image_fn: int = 0


def _ratio(num: int, den: int, absent: bool) -> float:
    if den == 0:
        return 1.0 if absent else 0.0
    return num / den


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    image_precision: float
    image_recall: float
    image_f1: float
    support: int  # ground-truth objects
    counts: ClassCounts = field(compare=False)

    @classmethod
    def from_counts(cls, c: ClassCounts) -> ClassMetrics:
        absent = c.tp + c.fp + c.fn == 0
        p, r = _ratio(c.tp, c.tp + c.fp, absent), _ratio(c.tp, c.tp + c.fn, absent)
        image_absent = c.image_tp + c.image_fp + c.image_fn == 0
        ip = _ratio(c.image_tp, c.image_tp + c.image_fp, image_absent)
        ir = _ratio(c.image_tp, c.image_tp + c.image_fn, image_absent)
        return cls(p, r, _f1(p, r), ip, ir, _f1(ip, ir), c.tp + c.fn, c)

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        return {
            "precision": round(self.precision, digits),
            "recall": round(self.recall, digits),
            "f1": round(self.f1, digits),
            "image_precision": round(self.image_precision, digits),
            "image_recall": round(self.image_recall, digits),
            "image_f1": round(self.image_f1, digits),
            "support": self.support,
        }


class Evaluator:
    """Accumulates matches image by image for a fixed list of class names."""

    def __init__(self, classes: Sequence[str], iou_threshold: float = 0.5) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise EvalError(f"the IoU threshold must be in (0, 1], not {iou_threshold}")
        self.iou_threshold = iou_threshold
        self.counts = {name: ClassCounts() for name in classes}
        self.images = 0

    def add(self, truths: Sequence[Truth], predictions: Sequence[Detection]) -> None:
        """One image: ground truths and predictions named with the evaluated class names.

        Objects of classes not being evaluated are ignored on both sides.
        """
        self.images += 1
        for name, c in self.counts.items():
            gts = [t.box for t in truths if t.label == name]
            preds = sorted((d for d in predictions if d.label == name), key=lambda d: -d.score)
            matched = [False] * len(gts)
            for pred in preds:
                best, best_iou = -1, 0.0
                for i, gt in enumerate(gts):
                    if not matched[i]:
                        overlap = iou(pred.box, gt)
                        if overlap > best_iou:
                            best, best_iou = i, overlap
                if best >= 0 and best_iou >= self.iou_threshold:
                    matched[best] = True
                    c.tp += 1
                else:
                    c.fp += 1
            c.fn += matched.count(False)
            has_truth, has_pred = bool(gts), bool(preds)
            c.image_tp += int(has_truth and has_pred)
            c.image_fp += int(has_pred and not has_truth)
            c.image_fn += int(has_truth and not has_pred)

    def metrics(self) -> dict[str, ClassMetrics]:
        return {name: ClassMetrics.from_counts(c) for name, c in self.counts.items()}


def evaluate(
    images: Iterable[tuple[Sequence[Truth], Sequence[Detection]]],
    classes: Sequence[str],
    iou_threshold: float = 0.5,
) -> dict[str, ClassMetrics]:
    """Metrics over (ground truths, predictions) pairs, one pair an image."""
    evaluator = Evaluator(classes, iou_threshold)
    for truths, predictions in images:
        evaluator.add(truths, predictions)
    return evaluator.metrics()


# --- running a detector over a dataset ----------------------------------------------------------

Detect = Callable[[Sequence[np.ndarray]], list[list[Detection]]]


def iter_images(dataset: YoloDataset) -> Iterator[tuple[LabelledImage, np.ndarray]]:
    for item in dataset.images:
        image = cv2.imread(str(item.image), cv2.IMREAD_COLOR)
        if image is None:
            raise EvalError(f"{item.image}: cannot decode the image")
        yield item, image


def evaluate_dataset(
    dataset: YoloDataset,
    detect: Detect,
    plan: ClassPlan,
    iou_threshold: float = 0.5,
    batch: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, ClassMetrics]:
    """Run ``detect`` (BGR images -> detections with model class names) over every image and score it."""
    evaluator = Evaluator(list(plan.pairs), iou_threshold)
    back = plan.model_to_dataset
    pending: list[tuple[LabelledImage, np.ndarray]] = []

    def flush() -> None:
        results = detect([image for _, image in pending])
        for (item, image), found in zip(pending, results, strict=True):
            height, width = image.shape[:2]
            truths = [t for t in item.truths(dataset.names, width, height) if t.label in plan.pairs]
            evaluator.add(truths, relabel(found, back))
        if progress:
            progress(len(pending))
        pending.clear()

    for pair in iter_images(dataset):
        pending.append(pair)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return evaluator.metrics()
