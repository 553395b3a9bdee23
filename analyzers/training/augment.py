"""Augmentation the standard lists: rotation, translation, flip, scale, shear, contrast and low light.

numpy + OpenCV only (no torch). One random affine per sample moves the pixels and, for
detection-style data, the boxes with them (the four corners are mapped and their bounds clipped to
the image; boxes left with almost no area are dropped), so labels stay valid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from analyzers.training.data import PAD_VALUE


@dataclass(frozen=True)
class AugmentConfig:
    degrees: float = 10.0  # rotation, +- degrees
    translate: float = 0.08  # +- fraction of the side
    scale: tuple[float, float] = (0.85, 1.15)
    shear: float = 5.0  # +- degrees
    flip: float = 0.5  # probability of a horizontal flip
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: float = 25.0  # +- grey levels
    low_light: float = 0.2  # probability of a night-like frame: darker (gamma), noisier, less colour
    blur: float = 0.1  # probability of a slight blur (far, out-of-focus CCTV)


NONE = AugmentConfig(0, 0, (1, 1), 0, 0, (1, 1), 0, 0, 0)


def random_affine(rng: np.random.Generator, cfg: AugmentConfig, width: int, height: int) -> np.ndarray:
    """A 2x3 matrix: flip, rotation, scale and shear about the centre, then a translation."""
    cx, cy = width / 2, height / 2
    centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    flip = -1.0 if rng.random() < cfg.flip else 1.0
    angle = math.radians(rng.uniform(-cfg.degrees, cfg.degrees))
    s = rng.uniform(*cfg.scale)
    rot = np.array(
        [
            [s * math.cos(angle), -s * math.sin(angle), 0],
            [s * math.sin(angle), s * math.cos(angle), 0],
            [0, 0, 1],
        ]
    )
    sh = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
    shear = np.array([[1, sh, 0], [0, 1, 0], [0, 0, 1]], np.float64)
    mirror = np.diag([flip, 1.0, 1.0])
    tx = rng.uniform(-cfg.translate, cfg.translate) * width
    ty = rng.uniform(-cfg.translate, cfg.translate) * height
    back = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1]], np.float64)
    return (back @ shear @ rot @ mirror @ centre)[:2]


def transform_boxes(
    boxes: np.ndarray, matrix: np.ndarray, width: int, height: int, min_area: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [N, 4] xyxy through the affine; returns (kept boxes, index of the kept rows). A box keeps
    at least ``min_area`` of its transformed area inside the image, else it is dropped."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    corners = np.stack(
        [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1), np.stack([x2, y2], 1)], 1
    )  # [N, 4, 2]
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    raw = np.concatenate([mapped.min(1), mapped.max(1)], 1)
    clipped = raw.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    area_raw = (raw[:, 2] - raw[:, 0]) * (raw[:, 3] - raw[:, 1])
    area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = np.flatnonzero((area > 1.0) & (area >= min_area * np.maximum(area_raw, 1e-6)))
    return clipped[keep].astype(np.float32), keep


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Contrast, brightness, occasional low light (gamma, noise, washed-out colour) and blur."""
    out = image.astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(*cfg.contrast) + mean + rng.uniform(-cfg.brightness, cfg.brightness)
    if rng.random() < cfg.low_light:
        grey = out.mean(2, keepdims=True)
        out = grey + (out - grey) * rng.uniform(0.2, 0.8)  # night CCTV loses colour
        out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** rng.uniform(1.5, 3.0)
        out += rng.normal(0, rng.uniform(2, 8), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < cfg.blur:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    return out


def augment(
    image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented copy: (image, boxes still inside it, index of those boxes in ``boxes``)."""
    height, width = image.shape[:2]
    matrix = random_affine(rng, cfg, width, height)
    warped = cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )
    kept, index = transform_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), matrix, width, height)
    return photometric(warped, rng, cfg), kept, index


def augment_batch(
    images: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """Augment every image of a [N, H, W, 3] batch (classification: no boxes)."""
    empty = np.zeros((0, 4), np.float32)
    return np.stack([augment(img, empty, rng, cfg)[0] for img in images]) if len(images) else images
