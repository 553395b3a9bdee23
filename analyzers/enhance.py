"""Image enhancement of a camera's frames before inference (and, when asked, in the evidence): contrast
(CLAHE on the lightness), low-light gain with a light denoise, and dehazing (dark channel prior). Off
by default; each step is chosen per camera in ``EnhanceSettings.steps`` and runs in the order given.
README (Image enhancement) has what each step recovers of a scene's F1 on darkened and hazed copies of
a valid split, and its cost per frame.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Step = Literal["clahe", "lowlight", "dehaze"]
STEPS: tuple[Step, ...] = ("clahe", "lowlight", "dehaze")


class EnhanceSettings(BaseModel):
    """Per-camera image enhancement (none by default)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(
        default_factory=list, description="enhancement steps in order: clahe, lowlight, dehaze; empty = off"
    )
    clahe_clip: float = Field(2.0, gt=0, le=40, description="CLAHE clip limit")
    lowlight_target: float = Field(
        110.0, gt=0, lt=255, description="lowlight: mean grey level a darker frame is lifted towards"
    )
    lowlight_max_gain: float = Field(4.0, ge=1, le=16, description="lowlight: most it brightens")
    dehaze_strength: float = Field(0.85, gt=0, le=1, description="dehaze: share of the haze removed")
    in_evidence: bool = Field(False, description="also keep the enhanced picture as the alarm's snapshot")

    @property
    def active(self) -> bool:
        return bool(self.steps)


def clahe(image: np.ndarray, clip: float = 2.0) -> np.ndarray:
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lightness = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    lab[:, :, 0] = lightness
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


def lowlight(image: np.ndarray, target: float = 110.0, max_gain: float = 4.0) -> np.ndarray:
    """Lift a dark frame with a gamma curve that brings its mean towards ``target`` (bounded by
    ``max_gain`` at the mean), then a 3x3 median against the amplified noise; bright frames pass."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    mean = max(float(grey.mean()), 1.0)
    if mean >= target:
        return image
    goal = min(target, mean * max_gain)
    gamma = float(np.log(goal / 255.0) / np.log(mean / 255.0))
    lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0, 0, 255).astype(np.uint8)
    return cv2.medianBlur(cv2.LUT(image, lut), 3)


def dehaze(image: np.ndarray, strength: float = 0.85) -> np.ndarray:
    """Dark channel prior (He et al.) on a quarter-size copy for the transmission, applied at full size."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))
    dark = cv2.erode(small.min(axis=2), kernel)
    count = max(1, dark.size // 1000)
    brightest = np.argpartition(dark.ravel(), -count)[-count:]
    air = small.reshape(-1, 3)[brightest].astype(np.float32).max(axis=0)
    air = np.maximum(air, 1.0)
    normalised = (small.astype(np.float32) / air).min(axis=2)
    haze = cv2.GaussianBlur(1.0 - strength * cv2.erode(normalised, kernel), (0, 0), 3)
    transmission = np.asarray(cv2.resize(haze, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)
    t = np.maximum(transmission, 0.15)[:, :, None]
    out = (image.astype(np.float32) - air) / t + air
    return np.clip(out, 0, 255).astype(np.uint8)


def enhance(image: np.ndarray, settings: EnhanceSettings) -> np.ndarray:
    """The frame after the camera's enhancement steps (the same array when there are none)."""
    out = image
    for step in settings.steps:
        if step == "clahe":
            out = clahe(out, settings.clahe_clip)
        elif step == "lowlight":
            out = lowlight(out, settings.lowlight_target, settings.lowlight_max_gain)
        else:
            out = dehaze(out, settings.dehaze_strength)
    return out
