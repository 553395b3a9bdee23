"""Training sets for the crop and image classifiers, built once from labelled data and cached.

Three kinds of source, all read without PyTorch:

- a YOLO split (``images/``, ``labels/``, data.yaml): one crop per labelled box of a mapped class
  (head/helmet, torso/vest, extinguisher ...), cut the way the runtime cuts it (the box grown
  ``expand`` times about its centre, clipped to the frame, letterboxed to the input size), optionally
  with random background crops as a ``background`` class;
- a YOLO split read at image level: the whole frame, labelled with the mapped classes it shows
  (multi-label: flame and smoke may be in the same frame);
- a folder per class (``smoking/``, ``not_smoking/``): whole images.

Every sample keeps the image it came from (for image-level metrics) and a group (the source image
before Roboflow's augmentation suffix ``.rf.<hash>``), so the early-stopping hold-out never shares a
source photo with the training part.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from analyzers.crops import grid_boxes
from analyzers.detectors.base import letterbox
from analyzers.detectors.classifier import crop_box
from analyzers.evaluation import IMAGE_SUFFIXES, load_yolo_dataset

PAD_VALUE = 114  # the letterbox grey of the classifier cards
BACKGROUND = "background"
CACHE_VERSION = 3  # bump when the way crops are cut changes


class DataError(ValueError):
    """The training data cannot be used; the message says what to fix."""


@dataclass
class CropSet:
    """Samples ready for a classifier: ``images`` [N, H, W, 3] BGR uint8 letterboxed to the input
    size; ``targets`` [N, C] float32 (one-hot, or multi-hot for multi-label tasks)."""

    classes: list[str]
    images: np.ndarray
    targets: np.ndarray
    groups: list[str] = field(default_factory=list)  # source photo, for leak-free hold-out splits
    image_ids: list[str] = field(default_factory=list)  # the frame a crop came from (image metrics)
    boxes: np.ndarray | None = None  # [N, 4] the labelled box inside each sample, input pixels

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> np.ndarray:
        """Class index per sample (argmax of the targets)."""
        return np.asarray(self.targets.argmax(1), dtype=np.int64)

    def counts(self) -> dict[str, int]:
        return {c: int(self.targets[:, i].sum()) for i, c in enumerate(self.classes)}

    def take(self, index: Sequence[int] | np.ndarray) -> CropSet:
        idx = np.asarray(index, dtype=np.int64)
        return CropSet(
            self.classes,
            self.images[idx],
            self.targets[idx],
            [self.groups[i] for i in idx] if self.groups else [],
            [self.image_ids[i] for i in idx] if self.image_ids else [],
            self.boxes[idx] if self.boxes is not None else None,
        )

    def subset(self, n: int, seed: int = 0) -> CropSet:
        """``n`` samples drawn evenly over the classes (deterministic for a seed)."""
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        labels = self.labels
        per = max(1, n // len(self.classes))
        chosen: list[int] = []
        for c in range(len(self.classes)):
            idx = np.flatnonzero(labels == c)
            chosen.extend(rng.permutation(idx)[:per].tolist())
        rest = np.setdiff1d(np.arange(len(self)), chosen)
        chosen.extend(rng.permutation(rest)[: max(0, n - len(chosen))].tolist())
        return self.take(sorted(chosen))

    @staticmethod
    def concat(sets: Sequence[CropSet]) -> CropSet:
        if not sets:
            raise DataError("no training data")
        classes = sets[0].classes
        for s in sets[1:]:
            if s.classes != classes:
                raise DataError(f"class lists differ: {classes} vs {s.classes}")
        boxes = [s.boxes for s in sets]
        return CropSet(
            classes,
            np.concatenate([s.images for s in sets]),
            np.concatenate([s.targets for s in sets]),
            [g for s in sets for g in s.groups],
            [i for s in sets for i in s.image_ids],
            np.concatenate([b for b in boxes if b is not None])
            if all(b is not None for b in boxes)
            else None,
        )


def source_group(path: Path) -> str:
    """The source photo of a (Roboflow-augmented) image file: the name before ``.rf.<hash>``."""
    return re.sub(r"\.rf\.[0-9a-zA-Z]+$", "", path.stem)


def fit(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, float, float]:
    """Letterbox (centred) like the classifier cards; returns the canvas, scale, pad x, pad y."""
    canvas, place = letterbox(image, size, "centre", PAD_VALUE)
    return canvas, place.scale_x, place.pad_x, place.pad_y


def read_image(path: Path) -> np.ndarray | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


def read_frame(path: Path, problems: list[str]) -> np.ndarray | None:
    """The image, or None with the reason added to ``problems``: a bad file is skipped, never fatal."""
    frame = read_image(path)
    if frame is None:
        problems.append(f"{path}: cannot be read as an image; skipped")
    return frame


def _empty(classes: Sequence[str], size: tuple[int, int]) -> CropSet:
    w, h = size
    return CropSet(
        list(classes),
        np.zeros((0, h, w, 3), np.uint8),
        np.zeros((0, len(classes)), np.float32),
        boxes=np.zeros((0, 4), np.float32),
    )


def yolo_crops(
    root: Path,
    class_map: Mapping[str, str],
    classes: Sequence[str],
    size: tuple[int, int],
    expand: float = 1.5,
    min_side: float = 4.0,
    background_per_image: int = 0,
    seed: int = 0,
    jitter: int = 0,
) -> tuple[CropSet, list[str]]:
    """One crop per box whose dataset class ``class_map`` names; returns the set and the problems
    (unreadable images by file name; they are skipped). ``jitter``: that many more crops per box,
    each a square shifted and grown about the box (``jitter_box``) the way a part box cut from a
    detected person sits around the real head."""
    data = load_yolo_dataset(root)
    known = {i for i, n in enumerate(data.names) if n in class_map}
    missing = sorted(set(class_map) - set(data.names))
    if missing and not known:
        raise DataError(f"{root}: none of the classes {sorted(class_map)} is in its data.yaml {data.names}")
    rng = np.random.default_rng(seed)
    images, targets, groups, ids, boxes = [], [], [], [], []
    problems: list[str] = []
    for item in data.images:
        wanted = [b for b in item.labels if b.class_id in known]
        if not wanted and background_per_image <= 0:
            continue
        frame = read_frame(item.image, problems)
        if frame is None:
            continue
        height, width = frame.shape[:2]
        pixel_boxes = [b.to_pixels(width, height) for b in item.labels]
        todo: list[tuple[tuple[float, float, float, float], str]] = []
        for b in wanted:
            box = b.to_pixels(width, height)
            if min(box[2] - box[0], box[3] - box[1]) >= min_side:
                todo.append((box, class_map[data.names[b.class_id]]))
                todo.extend((jitter_box(rng, box), class_map[data.names[b.class_id]]) for _ in range(jitter))
        if background_per_image > 0 and BACKGROUND in classes:
            todo.extend(
                (box, BACKGROUND)
                for box in _background_boxes(rng, pixel_boxes, width, height, background_per_image)
            )
        for box, label in todo:
            crop = crop_box(frame, box, expand)
            if crop.size == 0:
                continue
            canvas, scale, px, py = fit(crop, size)
            # the labelled box inside the canvas (for augmentation checks and tests)
            x1, y1, x2, y2 = box
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            left = max(0.0, np.floor(cx - (x2 - x1) * expand / 2))
            top = max(0.0, np.floor(cy - (y2 - y1) * expand / 2))
            inner = [
                (x1 - left) * scale + px,
                (y1 - top) * scale + py,
                (x2 - left) * scale + px,
                (y2 - top) * scale + py,
            ]
            target = np.zeros(len(classes), np.float32)
            target[list(classes).index(label)] = 1.0
            images.append(canvas)
            targets.append(target)
            groups.append(f"{root.name}/{source_group(item.image)}")
            ids.append(str(item.image))
            boxes.append(np.clip(inner, 0, max(size)))
    if not images:
        return _empty(classes, size), problems
    return CropSet(
        list(classes), np.stack(images), np.stack(targets), groups, ids, np.asarray(boxes, np.float32)
    ), problems


def jitter_box(
    rng: np.random.Generator, box: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """A square 1.1-1.9x the box's longer side, its top up to 0.15 side above the box's top and its
    centre up to 0.15 side to either side: a head box as ``crops.part_box`` cuts it from the top of a
    detected person (a band as wide as the shoulders, starting at the top of the head) lies so."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * float(rng.uniform(1.1, 1.9))
    cx = (x1 + x2) / 2 + float(rng.uniform(-0.15, 0.15)) * side
    top = y1 - float(rng.uniform(0.0, 0.15)) * side
    return (cx - side / 2, top, cx + side / 2, top + side)


def _background_boxes(
    rng: np.random.Generator,
    objects: Sequence[tuple[float, float, float, float]],
    width: int,
    height: int,
    count: int,
) -> list[tuple[float, float, float, float]]:
    """Random boxes shaped like the objects (their width and height, scaled 0.7-1.4x) that overlap
    none of them: a background crop must not differ from an object crop by its shape alone (the
    letterbox padding of a tall crop would give the class away)."""
    shapes = [(b[2] - b[0], b[3] - b[1]) for b in objects] or [(min(width, height) / 6,) * 2]
    found: list[tuple[float, float, float, float]] = []
    for _ in range(count * 20):
        if len(found) >= count:
            break
        w, h = shapes[int(rng.integers(len(shapes)))]
        scale = float(rng.uniform(0.7, 1.4))
        w, h = w * scale, h * scale
        if w >= width or h >= height:
            continue
        x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = (x1, y1, x1 + w, y1 + h)
        if all(_overlap(box, o) < 0.1 for o in objects):
            found.append(box)
    return found


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return ix * iy / area if area > 0 else 0.0


def yolo_images(
    root: Path, class_map: Mapping[str, str], classes: Sequence[str], size: tuple[int, int]
) -> tuple[CropSet, list[str]]:
    """Whole frames, multi-hot over ``classes`` (a frame with none of them is all zeros)."""
    data = load_yolo_dataset(root)
    images, targets, groups, ids = [], [], [], []
    problems: list[str] = []
    for item in data.images:
        frame = read_frame(item.image, problems)
        if frame is None:
            continue
        target = np.zeros(len(classes), np.float32)
        for b in item.labels:
            mapped = class_map.get(data.names[b.class_id])
            if mapped is not None and mapped in classes:
                target[list(classes).index(mapped)] = 1.0
        images.append(fit(frame, size)[0])
        targets.append(target)
        groups.append(f"{root.name}/{source_group(item.image)}")
        ids.append(str(item.image))
    if not images:
        return _empty(classes, size), problems
    return CropSet(list(classes), np.stack(images), np.stack(targets), groups, ids), problems


def yolo_patches(
    root: Path,
    class_map: Mapping[str, str],
    classes: Sequence[str],
    size: tuple[int, int],
    grid: int = 3,
    min_cover: float = 0.2,
) -> tuple[CropSet, list[str]]:
    """Grid patches of every frame, multi-hot: a patch shows a class when a box of it covers at least
    ``min_cover`` of the patch or half of the box lies inside the patch."""
    data = load_yolo_dataset(root)
    images, targets, groups, ids = [], [], [], []
    problems: list[str] = []
    for item in data.images:
        frame = read_frame(item.image, problems)
        if frame is None:
            continue
        height, width = frame.shape[:2]
        objects = [(class_map.get(data.names[b.class_id]), b.to_pixels(width, height)) for b in item.labels]
        for patch in grid_boxes(width, height, grid):
            target = np.zeros(len(classes), np.float32)
            parea = (patch[2] - patch[0]) * (patch[3] - patch[1])
            for label, box in objects:
                if label is None or label not in classes:
                    continue
                inter = _overlap(box, patch) * (box[2] - box[0]) * (box[3] - box[1])
                if inter >= min_cover * parea or _overlap(box, patch) >= 0.5:
                    target[list(classes).index(label)] = 1.0
            x1, y1, x2, y2 = (int(round(v)) for v in patch)
            images.append(fit(frame[y1:y2, x1:x2], size)[0])
            targets.append(target)
            groups.append(f"{root.name}/{source_group(item.image)}")
            ids.append(str(item.image))
    if not images:
        return _empty(classes, size), problems
    return CropSet(list(classes), np.stack(images), np.stack(targets), groups, ids), problems


def folder_images(root: Path, classes: Sequence[str], size: tuple[int, int]) -> tuple[CropSet, list[str]]:
    """``root/<class>/*.jpg`` for each class name (single-label, whole images)."""
    missing = [c for c in classes if not (root / c).is_dir()]
    if missing:
        raise DataError(
            f"{root}: no folder for class(es) {', '.join(missing)} (expected one folder per class)"
        )
    images, targets, groups, ids = [], [], [], []
    problems: list[str] = []
    for k, name in enumerate(classes):
        for path in sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            frame = read_frame(path, problems)
            if frame is None:
                continue
            target = np.zeros(len(classes), np.float32)
            target[k] = 1.0
            images.append(fit(frame, size)[0])
            targets.append(target)
            groups.append(f"{root.name}/{name}/{source_group(path)}")
            ids.append(str(path))
    if not images:
        return _empty(classes, size), problems
    return CropSet(list(classes), np.stack(images), np.stack(targets), groups, ids), problems


# --- cache ----------------------------------------------------------------------------------------


def _fingerprint(root: Path, params: Mapping[str, object]) -> str:
    """Cache key: the folder, every file's name, size and mtime, and the cutting parameters."""
    digest = hashlib.sha256(
        json.dumps(
            {"v": CACHE_VERSION, "root": str(root.resolve()), **params}, sort_keys=True, default=str
        ).encode()
    )
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            digest.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def cached(
    cache_dir: Path | None,
    root: Path,
    params: Mapping[str, object],
    build: Callable[[], tuple[CropSet, list[str]]],
) -> CropSet:
    """``build()`` once per (folder contents, parameters); the crops live in ``cache_dir`` as .npz."""
    if cache_dir is None:
        result, _ = build()
        return result
    key = _fingerprint(root, params)
    path = cache_dir / f"{root.name}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            boxes = z["boxes"] if "boxes" in z.files else None
            return CropSet(
                [str(c) for c in z["classes"]],
                z["images"],
                z["targets"],
                [str(g) for g in z["groups"]],
                [str(i) for i in z["image_ids"]],
                boxes,
            )
    result, problems = build()
    for problem in problems:
        print(f"warning: {problem}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    arrays = {
        "classes": np.asarray(result.classes),
        "images": result.images,
        "targets": result.targets,
        "groups": np.asarray(result.groups, dtype=str),
        "image_ids": np.asarray(result.image_ids, dtype=str),
    }
    if result.boxes is not None:
        arrays["boxes"] = result.boxes
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return result
