"""Colour of a part of a person (helmet, armband, clothes) by HSV ranges; used to recognise roles.

Plants mark roles by colour: helmet colour (e.g. red or white for supervisors) or an armband.
The ranges are deliberately broad; a region counts as a colour when enough of its pixels fall in it.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from analyzers.records import Detection

Part = Literal["head", "torso", "arm"]

# OpenCV HSV: H 0..179, S 0..255, V 0..255. Each colour is one or more (low, high) ranges.
COLOURS: dict[str, list[tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    "red": [((0, 90, 70), (8, 255, 255)), ((170, 90, 70), (179, 255, 255))],
    "orange": [((9, 100, 90), (20, 255, 255))],
    "yellow": [((21, 90, 90), (34, 255, 255))],
    "green": [((35, 60, 50), (85, 255, 255))],
    "blue": [((90, 80, 50), (130, 255, 255))],
    "white": [((0, 0, 180), (179, 40, 255))],
}

# Where each part sits inside a standing person's box, as fractions (x1, y1, x2, y2).
PART_BOXES: dict[Part, tuple[tuple[float, float, float, float], ...]] = {
    "head": ((0.2, 0.0, 0.8, 0.16),),
    "torso": ((0.2, 0.2, 0.8, 0.55),),
    "arm": ((0.0, 0.2, 0.3, 0.5), (0.7, 0.2, 1.0, 0.5)),
}


def part_crops(image: np.ndarray, person: Detection, part: Part) -> list[np.ndarray]:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = person.box
    w, h = x2 - x1, y2 - y1
    crops = []
    for fx1, fy1, fx2, fy2 in PART_BOXES[part]:
        cx1, cy1 = int(max(0, x1 + fx1 * w)), int(max(0, y1 + fy1 * h))
        cx2, cy2 = int(min(width, x1 + fx2 * w)), int(min(height, y1 + fy2 * h))
        if cx2 - cx1 >= 2 and cy2 - cy1 >= 2:
            crops.append(image[cy1:cy2, cx1:cx2])
    return crops


def colour_fraction(crop: np.ndarray, colour: str) -> float:
    """Share of the crop's pixels (BGR) that fall in the named colour's ranges."""
    if crop.size == 0:
        return 0.0
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    mask = np.zeros(hsv.shape[:2], dtype=bool)
    for low, high in COLOURS[colour]:
        mask |= cv2.inRange(hsv, np.array(low, np.uint8), np.array(high, np.uint8)) > 0
    return float(mask.mean())


def wears(image: np.ndarray, person: Detection, part: Part, colours: list[str], min_fraction: float) -> bool:
    """Whether any crop of the part shows one of the colours over at least ``min_fraction`` of it."""
    return any(
        colour_fraction(crop, colour) >= min_fraction
        for crop in part_crops(image, person, part)
        for colour in colours
    )


def dominant_colour(crop: np.ndarray) -> tuple[str | None, float]:
    """The named colour covering most of the crop, with its share (None when no colour reaches 20 %)."""
    best, share = None, 0.0
    for name in COLOURS:
        frac = colour_fraction(crop, name)
        if frac > share:
            best, share = name, frac
    return (best, share) if share >= 0.2 else (None, share)


HELMET_COLOURS = ("red", "yellow", "blue", "white", "other")


def helmet_colour(head: np.ndarray) -> str | None:
    """red, yellow, blue, white or other, from the upper part of a head crop (where the shell is);
    None for an empty crop. Orange, green and unclear shells count as other."""
    if head.size == 0:
        return None
    colour, _ = dominant_colour(head[: max(1, int(head.shape[0] * 0.6))])
    return colour if colour in HELMET_COLOURS else "other"


def box_colour(image: np.ndarray | None, box: tuple[float, float, float, float]) -> str | None:
    if image is None:
        return None
    x1, y1, x2, y2 = (max(0, int(v)) for v in box)
    return helmet_colour(image[y1:y2, x1:x2])
