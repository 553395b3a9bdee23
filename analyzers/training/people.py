"""Crops of people's parts cut exactly as a running scene cuts them, and the scene scored end to end.

A classifier card of a person's part (the helmet card on heads) never sees a labelled box at run
time: the person detector finds people, ``crops.part_box`` takes the part from the top of each box,
and the crop around it is looser and shifted compared with a hand-drawn head box. This module

- runs the person detector once per image and caches its boxes (``PeopleFinder``), so rebuilding a
  training set or re-scoring a card does not run it again;
- cuts training samples from those runtime crops, labelled by the ground-truth box of a mapped class
  each one holds (``person_part_crops``; a crop holding boxes of two classes is ambiguous and skipped);
- scores a card end to end on a labelled split (``evaluate_people_scene``): object level, each
  person's part matched one-to-one to a labelled box by IoU or containment; image level, whether a
  frame shows a class at all (for the helmet scene: "a person without a helmet is in this frame").

No torch here; the detector and classifier run through onnxruntime like the gateway's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from analyzers.crops import crop_expand, part_box
from analyzers.detectors.classifier import ImageClassifier, crop_box
from analyzers.evaluation import load_yolo_dataset
from analyzers.records import Detection
from analyzers.training.data import CropSet, DataError, _empty, fit, read_frame, read_image, source_group
from analyzers.training.evaluate import per_class

Box = tuple[float, float, float, float]
CACHE_FLOOR = 0.1  # people are cached down to this score; the scene's threshold filters later
PERSON_THRESHOLD = 0.35  # a scene's default detection_threshold (SceneConfig)
PEOPLE_CACHE_VERSION = 1


class PersonDetector(Protocol):
    """What ``PeopleFinder`` needs of a detector (``analyzers.detectors`` YOLOX and friends)."""

    card: Any

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = ...,
        nms_iou: float = ...,
        classes: set[int] | None = ...,
    ) -> list[list[Detection]]: ...


class PeopleFinder:
    """The person detector's boxes of an image file, cached as JSON per (detector weights, folder):
    keyed by file name, size and mtime, so an edited image is detected again."""

    def __init__(self, detector: PersonDetector, cache_dir: Path | None = None) -> None:
        classes = list(detector.card.classes)
        if "person" not in classes:
            raise DataError(f"{detector.card.name} has no 'person' class: it cannot find people")
        self.detector = detector
        self.person_id = classes.index("person")
        self.cache_dir = cache_dir
        self.key = str(getattr(detector.card, "sha256", "") or detector.card.name)[:16]
        self._cache: dict[Path, dict[str, list[list[float]]]] = {}
        self._dirty: set[Path] = set()

    def _file(self, folder: Path) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        return self.cache_dir / f"people-v{PEOPLE_CACHE_VERSION}-{self.key}-{digest}.json"

    def _table(self, folder: Path) -> dict[str, list[list[float]]]:
        if folder not in self._cache:
            path = self._file(folder)
            table: dict[str, list[list[float]]] = {}
            if path is not None and path.is_file():
                try:
                    table = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    table = {}  # a damaged cache is rebuilt
            self._cache[folder] = table
        return self._cache[folder]

    def people(self, path: Path, image: np.ndarray, threshold: float = PERSON_THRESHOLD) -> list[Detection]:
        """People of ``image`` (read from ``path``) scoring at least ``threshold``."""
        st = path.stat()
        name = f"{path.name}|{st.st_size}|{st.st_mtime_ns}"
        table = self._table(path.parent)
        if name not in table:
            found = self.detector.detect([image], conf=CACHE_FLOOR, classes={self.person_id})[0]
            table[name] = [[*(round(float(v), 2) for v in d.box), round(float(d.score), 4)] for d in found]
            self._dirty.add(path.parent)
        return [
            Detection((r[0], r[1], r[2], r[3]), r[4], self.person_id, "person")
            for r in table[name]
            if r[4] >= threshold
        ]

    def save(self) -> None:
        for folder in sorted(self._dirty):
            path = self._file(folder)
            if path is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._cache[folder]), encoding="utf-8")
            tmp.replace(path)
        self._dirty.clear()


def _area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inter(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def iou(a: Box, b: Box) -> float:
    i = _inter(a, b)
    union = _area(a) + _area(b) - i
    return i / union if union > 0 else 0.0


def holds(part: Box, truth: Box, cover: float = 0.5) -> bool:
    """The part box holds a labelled box: the label's centre lies inside the part and at least
    ``cover`` of the label's area does (a loose runtime head box around a tight labelled head)."""
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    inside = part[0] <= cx <= part[2] and part[1] <= cy <= part[3]
    return inside and _area(truth) > 0 and _inter(part, truth) / _area(truth) >= cover


def affinity(part: Box, truth: Box, min_iou: float = 0.3) -> float:
    """How well a part box and a labelled box pair up: their IoU when it reaches ``min_iou`` or the
    part holds the label (``holds``), else 0 (no match)."""
    overlap = iou(part, truth)
    return overlap if overlap >= min_iou or holds(part, truth) else 0.0


def match(parts: Sequence[Box], truths: Sequence[Box], min_iou: float = 0.3) -> list[tuple[int, int]]:
    """One-to-one (part, truth) index pairs, greedily by affinity (best pairs first)."""
    pairs = sorted(
        ((affinity(p, t, min_iou), i, j) for i, p in enumerate(parts) for j, t in enumerate(truths)),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    out = []
    for score, i, j in pairs:
        if score <= 0:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            out.append((i, j))
    return out


def _truths(
    item: Any, names: Sequence[str], class_map: Mapping[str, str], w: int, h: int
) -> list[tuple[Box, str]]:
    return [
        (b.to_pixels(w, h), class_map[names[b.class_id]])
        for b in item.labels
        if names[b.class_id] in class_map
    ]


def person_part_crops(
    root: Path,
    class_map: Mapping[str, str],
    classes: Sequence[str],
    size: tuple[int, int],
    part: str,
    finder: PeopleFinder,
    threshold: float = PERSON_THRESHOLD,
) -> tuple[CropSet, list[str]]:
    """One sample per detected person whose ``part`` box (as ``crops.part_box`` cuts it at run time,
    grown by the runtime's expand) holds labelled boxes of exactly one mapped class; crops holding
    none or two classes are skipped (nothing to learn, or ambiguous)."""
    data = load_yolo_dataset(root)
    expand = crop_expand(part)
    images, targets, groups, ids, boxes = [], [], [], [], []
    problems: list[str] = []
    for item in data.images:
        if not any(data.names[b.class_id] in class_map for b in item.labels):
            continue
        frame = read_frame(item.image, problems)
        if frame is None:
            continue
        height, width = frame.shape[:2]
        truths = _truths(item, data.names, class_map, width, height)
        for person in finder.people(item.image, frame, threshold):
            box = part_box(person.box, part)
            labels = {label for t, label in truths if holds(box, t)}
            if len(labels) != 1:
                continue
            crop = crop_box(frame, box, expand)
            if crop.size == 0:
                continue
            canvas = fit(crop, size)[0]
            target = np.zeros(len(classes), np.float32)
            target[list(classes).index(labels.pop())] = 1.0
            images.append(canvas)
            targets.append(target)
            groups.append(f"{root.name}/{source_group(item.image)}")
            ids.append(str(item.image))
            boxes.append([0.0, 0.0, float(size[0]), float(size[1])])
    finder.save()
    if not images:
        return _empty(classes, size), problems
    return CropSet(
        list(classes), np.stack(images), np.stack(targets), groups, ids, np.asarray(boxes, np.float32)
    ), problems


def evaluate_people_scene(
    classifier: ImageClassifier,
    finder: PeopleFinder,
    root: Path,
    class_map: Mapping[str, str],
    part: str,
    threshold: float = PERSON_THRESHOLD,
    min_iou: float = 0.3,
    limit: int | None = None,
    progress: Any = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """A classifier card of people's ``part`` scored as the scene runs it (person detector -> part box
    -> classifier, ``crops.classify_people``) on a labelled YOLO split. Object level: each person's
    part matched one-to-one to a labelled box (``match``); a match of the same class is a TP, a part
    left unmatched or classed otherwise an FP of its class, a labelled box not found as its class an
    FN. Image level: a frame shows a class when any labelled box of it is there / any part is so
    classed."""
    from analyzers.crops import classify_people

    data = load_yolo_dataset(root)
    classes = list(classifier.labels)
    counts = {c: [0, 0, 0] for c in classes}  # tp, fp, fn
    t_img: list[np.ndarray] = []
    p_img: list[np.ndarray] = []
    for item in data.images[:limit] if limit else data.images:
        frame = read_image(item.image)
        if progress is not None:
            progress(1)
        if frame is None:
            continue
        height, width = frame.shape[:2]
        truths = [(b, c) for b, c in _truths(item, data.names, class_map, width, height) if c in classes]
        people = finder.people(item.image, frame, threshold)
        found = classify_people(classifier, frame, people, part)
        pairs = match([d.box for d in found], [b for b, _ in truths], min_iou)
        matched_p = {i: j for i, j in pairs}
        matched_t = {j: i for i, j in pairs}
        for k, d in enumerate(found):
            hit = matched_p.get(k)
            if hit is not None and truths[hit][1] == d.label:
                counts[d.label][0] += 1
            else:
                counts[d.label][1] += 1
        for k, (_, label) in enumerate(truths):
            seen = matched_t.get(k)
            if seen is None or found[seen].label != label:
                counts[label][2] += 1
        t_img.append(np.asarray([any(c == label for _, label in truths) for c in classes]))
        p_img.append(np.asarray([any(d.label == c for d in found) for c in classes]))
    finder.save()
    if not t_img:
        raise DataError(f"{root}: no image to evaluate")
    from analyzers.training.evaluate import prf

    return {
        "object": {c: prf(*counts[c]) for c in classes},
        "image": per_class(np.stack(t_img), np.stack(p_img), classes),
    }
