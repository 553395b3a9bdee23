"""Box-labelled training data for detectors, and the augmentation that feeds the YOLOX loop.

numpy + OpenCV only. A source is a YOLO split whose dataset classes are mapped onto the detector's
classes (unmapped classes are dropped). A source that lacks a class the detector keeps (person on a
hard-hat set) may have it filled from another detector's boxes: the pack's COCO model for people,
so fine-tuning never teaches the network that people are background.

Training images are assembled the YOLOX way: a mosaic of four images (probability ``mosaic``) or one
image, then a random affine (scale, small rotation and shear, translation, flip) onto the square
training canvas, then colour jitter; boxes follow the pixels and tiny leftovers are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from analyzers.evaluation import load_yolo_dataset
from analyzers.training.augment import AugmentConfig, photometric, random_affine, transform_boxes
from analyzers.training.data import PAD_VALUE, DataError, read_frame, source_group

# boxes of a filled class: (image path, image) -> [N, 4] xyxy pixels
BoxFiller = Callable[[Path, np.ndarray], np.ndarray]


@dataclass
class DetectionItem:
    path: Path
    boxes: np.ndarray  # [N, 4] xyxy pixels of the original image
    classes: np.ndarray  # [N] detector class index
    group: str  # source photo (hold-out never splits one)


@dataclass
class DetectionSet:
    classes: list[str]
    items: list[DetectionItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.classes, 0)
        for item in self.items:
            for c in item.classes:
                out[self.classes[int(c)]] += 1
        return out

    def take(self, index: Sequence[int]) -> DetectionSet:
        return DetectionSet(self.classes, [self.items[i] for i in index], self.problems)


def load_source(
    root: Path,
    class_map: Mapping[str, str],
    classes: Sequence[str],
    fill: Mapping[str, BoxFiller] | None = None,
    limit: int | None = None,
) -> DetectionSet:
    """One YOLO split as detector training items. ``class_map``: dataset class -> detector class;
    ``fill``: detector class -> filler for a class this source does not label (its own labels of
    that class, if any, are replaced by the filler's boxes)."""
    dataset = load_yolo_dataset(root)
    unknown = sorted(set(class_map) - set(dataset.names))
    if unknown:
        raise DataError(f"{root}: no class {', '.join(unknown)} in its data.yaml (it has {dataset.names})")
    wrong = sorted(set(class_map.values()) - set(classes))
    if wrong:
        raise DataError(f"{root}: mapped to {', '.join(wrong)}, which the detector does not have ({classes})")
    fill = dict(fill or {})
    out = DetectionSet(list(classes))
    for image_item in dataset.images[:limit] if limit else dataset.images:
        boxes: list[list[float]] = []
        ids: list[int] = []
        need_pixels = bool(fill)
        image = read_frame(image_item.image, out.problems) if need_pixels else None
        if need_pixels and image is None:
            continue
        if image is not None:
            height, width = image.shape[:2]
        else:
            size = _image_size(image_item.image)
            if size is None:
                out.problems.append(f"{image_item.image}: cannot be read as an image; skipped")
                continue
            width, height = size
        for label in image_item.labels:
            name = class_map.get(dataset.names[label.class_id])
            if name is None or name in fill:
                continue
            boxes.append(list(label.to_pixels(width, height)))
            ids.append(classes.index(name))
        for name, filler in fill.items():
            assert image is not None
            for box in filler(image_item.image, image):
                boxes.append([float(v) for v in box])
                ids.append(classes.index(name))
        out.items.append(
            DetectionItem(
                image_item.image,
                np.asarray(boxes, np.float32).reshape(-1, 4),
                np.asarray(ids, np.int64),
                f"{root.name}/{source_group(image_item.image)}",
            )
        )
    if not out.items:
        raise DataError(f"{root}: no readable images")
    return out


def _image_size(path: Path) -> tuple[int, int] | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None or not image.size else (image.shape[1], image.shape[0])


def merge(sets: Sequence[DetectionSet]) -> DetectionSet:
    out = DetectionSet(list(sets[0].classes))
    for s in sets:
        out.items.extend(s.items)
        out.problems.extend(s.problems)
    return out


def holdout(data: DetectionSet, share: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, hold-out) indices; whole source photos go to one side, chosen by the seed."""
    groups = sorted({item.group for item in data.items})
    rng = np.random.default_rng(seed + 7919)
    count = max(1, int(round(len(groups) * share))) if share > 0 else 0
    held = set(rng.permutation(groups)[:count].tolist())
    train = [i for i, item in enumerate(data.items) if item.group not in held]
    hold = [i for i, item in enumerate(data.items) if item.group in held]
    return (train, hold) if train else (list(range(len(data))), [])


@dataclass(frozen=True)
class DetectionAugment:
    mosaic: float = 0.5  # probability of a 4-image mosaic
    scale: tuple[float, float] = (0.5, 1.5)
    degrees: float = 5.0
    shear: float = 2.0
    translate: float = 0.1
    flip: float = 0.5
    hsv: tuple[float, float, float] = (0.015, 0.7, 0.4)  # hue, saturation, value gains (YOLOX's)
    photometric: AugmentConfig = field(
        default_factory=lambda: AugmentConfig(0, 0, (1, 1), 0, 0, (0.85, 1.15), 15.0, low_light=0.1, blur=0.1)
    )


NO_AUGMENT = DetectionAugment(
    0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, (0, 0, 0), AugmentConfig(0, 0, (1, 1), 0, 0, (1, 1), 0, 0, 0)
)


class ImageCache:
    """Training images decoded once and kept downscaled to the training size (they are re-read every
    epoch otherwise): the longer side is ``side`` pixels, boxes scaled with them."""

    def __init__(self, data: DetectionSet, side: int) -> None:
        self.data = data
        self.side = side
        self._images: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        item = self.data.items[index]
        if index not in self._images:
            image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{item.path}: cannot be read as an image")
            ratio = self.side / max(image.shape[:2])
            if ratio < 1.0:
                image = cv2.resize(
                    image,
                    (max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio))),
                    interpolation=cv2.INTER_AREA,
                )
            else:
                ratio = 1.0
            self._images[index] = (image, item.boxes * ratio)
        image, boxes = self._images[index]
        return image, boxes, item.classes


def letterbox_sample(
    image: np.ndarray, boxes: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Top-left letterbox of one image into ``size`` (width, height), as the YOLOX runtime does."""
    width, height = size
    ratio = min(width / image.shape[1], height / image.shape[0])
    new_w, new_h = max(1, round(image.shape[1] * ratio)), max(1, round(image.shape[0] * ratio))
    canvas = np.full((height, width, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, boxes * ratio, ratio


def _hsv(image: np.ndarray, gains: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    if not any(gains):
        return image
    r = rng.uniform(-1, 1, 3) * np.asarray(gains) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=np.float32)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    merged = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(merged, cv2.COLOR_HSV2BGR)


def training_sample(
    cache: ImageCache,
    index: int,
    pool: Sequence[int],
    size: int,
    rng: np.random.Generator,
    cfg: DetectionAugment,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented square training image: (BGR uint8 [size, size, 3], boxes [N, 4], classes [N])."""
    if rng.random() < cfg.mosaic and len(pool) >= 4:
        picks = [index, *rng.choice(pool, 3, replace=True).tolist()]
        canvas, boxes, classes = _mosaic(cache, picks, size, rng)
        span = 2 * size
    else:
        image, b, c = cache.get(index)
        canvas, boxes, _ = letterbox_sample(image, b, (size, size))
        classes, span = c, size
    # Affine from the (mosaic or letterboxed) canvas onto the training square.
    affine_cfg = AugmentConfig(
        degrees=cfg.degrees,
        translate=cfg.translate,
        scale=cfg.scale,
        shear=cfg.shear,
        flip=cfg.flip,
    )
    matrix = random_affine(rng, affine_cfg, span, span)
    if span != size:  # mosaic: look at the centre square of the 2x canvas
        shift = np.array([[1, 0, -size / 2], [0, 1, -size / 2], [0, 0, 1]], np.float64)
        matrix = (shift @ np.vstack([matrix, [0, 0, 1]]))[:2]
    warped = cv2.warpAffine(
        canvas, matrix, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3
    )
    kept, idx = transform_boxes(boxes, matrix, size, size, min_area=0.25)
    classes = classes[idx]
    wide = (kept[:, 2] - kept[:, 0] >= 2) & (kept[:, 3] - kept[:, 1] >= 2)
    warped = photometric(_hsv(warped, cfg.hsv, rng), rng, cfg.photometric)
    return warped, kept[wide], classes[wide]


def _mosaic(
    cache: ImageCache, picks: Sequence[int], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four images around a random centre of a 2*size canvas."""
    span = 2 * size
    canvas = np.full((span, span, 3), PAD_VALUE, np.uint8)
    xc, yc = (int(rng.uniform(0.5 * size, 1.5 * size)) for _ in range(2))
    all_boxes, all_classes = [], []
    for k, index in enumerate(picks):
        image, boxes, classes = cache.get(index)
        ratio = size / max(image.shape[:2])
        h, w = max(1, round(image.shape[0] * ratio)), max(1, round(image.shape[1] * ratio))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        if k == 0:  # top left
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, span), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(span, yc + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, span), min(span, yc + h)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = image[y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        shifted = boxes * ratio + np.array([x1a - x1b, y1a - y1b] * 2, np.float32)
        # keep what lies in this quadrant's pasted area
        shifted[:, 0::2] = shifted[:, 0::2].clip(x1a, x2a)
        shifted[:, 1::2] = shifted[:, 1::2].clip(y1a, y2a)
        all_boxes.append(shifted)
        all_classes.append(classes)
    boxes = np.concatenate(all_boxes).astype(np.float32) if all_boxes else np.zeros((0, 4), np.float32)
    classes = np.concatenate(all_classes) if all_classes else np.zeros(0, np.int64)
    ok = (boxes[:, 2] - boxes[:, 0] > 1) & (boxes[:, 3] - boxes[:, 1] > 1)
    return canvas, boxes[ok], classes[ok]
