"""Synthetic plant pictures for enrolment tests: workers in coveralls of a given colour on a noisy
grey yard, and red extinguishers on a wall."""

from __future__ import annotations

import numpy as np

from analyzers.crops import crop_expand, part_box
from analyzers.detectors.classifier import crop_box
from analyzers.records import Detection

W, H = 480, 270
BLUE, ORANGE, GREEN, WHITE = (190, 90, 30), (20, 120, 245), (40, 160, 40), (235, 235, 235)
Box = tuple[float, float, float, float]


def yard(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(70, 130, (H, W, 3), dtype=np.uint8)


def draw_worker(image: np.ndarray, box: Box, colour: tuple[int, int, int], rng: np.random.Generator) -> None:
    """A standing worker in ``box``: skin head, coverall of ``colour`` (jittered, with a reflective
    strip), dark boots."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h = y2 - y1
    jitter = rng.uniform(0.8, 1.15)
    cloth = np.clip(np.array(colour, float) * jitter, 0, 255)
    head = (x1 + int(0.3 * (x2 - x1)), y1, x1 + int(0.7 * (x2 - x1)), y1 + int(0.16 * h))
    image[head[1] : head[3], head[0] : head[2]] = (120, 160, 210)
    body = image[y1 + int(0.16 * h) : y1 + int(0.9 * h), x1:x2]
    body[:] = cloth
    body[:] = np.clip(body.astype(int) + rng.integers(-12, 12, body.shape), 0, 255).astype(np.uint8)
    strip = y1 + int(0.4 * h)
    image[strip : strip + max(2, h // 30), x1:x2] = (200, 220, 220)
    image[y1 + int(0.9 * h) : y2, x1:x2] = (30, 30, 30)


def person(box: Box, score: float = 0.9) -> Detection:
    return Detection(box, score, 0, "person")


def torso_crop(image: np.ndarray, box: Box, part: str = "torso") -> np.ndarray:
    """The part as the scenes cut it (crops.part_box, grown by the part's expand): the torso for work
    clothes, the upper body (``person``) for role markers."""
    return crop_box(image, part_box(box, part), crop_expand(part))


def worker_examples(colour: tuple[int, int, int], n: int, seed: int, part: str = "torso") -> list[np.ndarray]:
    """``n`` crops of the ``part`` of workers in ``colour``, at varied sizes and places."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = yard(rng)
        w = int(rng.integers(36, 60))
        h = int(w * rng.uniform(2.6, 3.2))
        x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
        box = (float(x), float(y), float(x + w), float(y + h))
        draw_worker(image, box, colour, rng)
        out.append(torso_crop(image, box, part))
    return out


def draw_extinguisher(image: np.ndarray, box: Box, rng: np.random.Generator) -> None:
    """A red cylinder with a black hose and a grey valve head."""
    x1, y1, x2, y2 = (int(v) for v in box)
    h, w = y2 - y1, x2 - x1
    red = np.clip(np.array((30, 30, 200), float) * rng.uniform(0.85, 1.1), 0, 255)
    image[y1 + int(0.15 * h) : y2, x1:x2] = red
    shade = np.linspace(0.7, 1.1, w)[None, :, None]
    part = image[y1 + int(0.15 * h) : y2, x1:x2].astype(float) * shade
    image[y1 + int(0.15 * h) : y2, x1:x2] = np.clip(part, 0, 255).astype(np.uint8)
    image[y1 : y1 + int(0.15 * h), x1 + w // 4 : x2 - w // 4] = (90, 90, 90)
    image[y1 + int(0.1 * h) : y1 + int(0.6 * h), x2 - max(2, w // 6) : x2] = (20, 20, 20)
    image[y1 + int(0.45 * h) : y1 + int(0.6 * h), x1 + 2 : x2 - 2] = (230, 230, 230)  # the label


def wall(rng: np.random.Generator) -> np.ndarray:
    image = rng.integers(150, 185, (H, W, 3), dtype=np.uint8)
    image[int(0.8 * H) :] = rng.integers(60, 90, (H - int(0.8 * H), W, 3), dtype=np.uint8)  # floor
    return image
