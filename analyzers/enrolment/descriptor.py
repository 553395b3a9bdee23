"""The colour of a crop as a short vector, beside the embedding: uniforms differ mostly by colour.

Pixels with colour (saturation and value above a floor) fall into 18 hue bins x 2 saturation levels;
the others into 4 grey levels (black to white). The histogram (of the crop's centre, where the
clothes are rather than the background) is square-rooted and L2-normalised, so the dot product of
two descriptors is their Bhattacharyya coefficient (1 = the same colours in the same shares).
"""

from __future__ import annotations

import cv2
import numpy as np

HUE_BINS = 18
SAT_LEVELS = 2
GREY_LEVELS = 4
SIZE = HUE_BINS * SAT_LEVELS + GREY_LEVELS
SAT_FLOOR, VAL_FLOOR = 50, 50
CENTRE = 0.8  # share of width and height kept about the centre


def colour_descriptor(crop: np.ndarray) -> np.ndarray:
    """[SIZE] float32 of length 1 (zeros for an empty crop) for a BGR uint8 crop."""
    out = np.zeros(SIZE, np.float32)
    if crop.size == 0 or crop.ndim != 3:
        return out
    h, w = crop.shape[:2]
    mh, mw = int(h * (1 - CENTRE) / 2), int(w * (1 - CENTRE) / 2)
    centre = crop[mh : h - mh or h, mw : w - mw or w]
    if centre.shape[0] > 64 or centre.shape[1] > 64:  # the shares, not the detail, matter
        centre = cv2.resize(centre, (min(64, centre.shape[1]), min(64, centre.shape[0])))
    hsv = cv2.cvtColor(centre, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    coloured = (sat >= SAT_FLOOR) & (val >= VAL_FLOOR)
    bins = np.where(
        coloured,
        (hue * HUE_BINS // 180) * SAT_LEVELS + (sat >= 150).astype(np.int32),
        HUE_BINS * SAT_LEVELS + np.minimum(val * GREY_LEVELS // 256, GREY_LEVELS - 1),
    )
    counts = np.bincount(bins, minlength=SIZE).astype(np.float32)
    root = np.sqrt(counts / max(float(counts.sum()), 1.0))
    norm = float(np.linalg.norm(root))
    return root / norm if norm > 0 else out


def colour_descriptors(crops: list[np.ndarray]) -> np.ndarray:
    """[len(crops), SIZE] descriptors."""
    if not crops:
        return np.zeros((0, SIZE), np.float32)
    return np.stack([colour_descriptor(c) for c in crops])
