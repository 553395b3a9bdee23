"""Typed records that analyzers consume and produce.

Frames arrive from adapters; analyzers never import adapters, so a frame is described here as a
protocol that the adapters' Frame satisfies structurally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class FrameLike(Protocol):
    """What a scene needs of a decoded frame."""

    camera_id: str
    ts: float  # wall-clock seconds since the epoch
    image: np.ndarray  # HxWx3 BGR uint8


@dataclass(frozen=True, slots=True)
class Detection:
    """One object found in a frame, in pixel coordinates of that frame."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    class_id: int
    label: str
    track_id: int | None = None

    @property
    def bottom_centre(self) -> tuple[float, float]:
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2.0, y2)


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A scene's decision that something is wrong, before the gateway stores it."""

    camera_id: str
    scene: str
    region: str
    occurred_at: float  # when the condition began (epoch seconds)
    raised_at: float  # when the rule fired (epoch seconds)
    score: float
    message: str
    detections: tuple[Detection, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # the tracked person/object, for per-target scenes

    @property
    def hold_key(self) -> str:
        """The scene's own key for the event: the region, or region#target."""
        return self.region if self.target is None else f"{self.region}#{self.target}"

    @property
    def key(self) -> str:
        """Identity for "one alarm per event": same kind, same camera, same region (and target)."""
        return f"{self.camera_id}/{self.scene}/{self.hold_key}"


# COCO-17 keypoint order, used by MoveNet and by BlazePose after mapping its 33 landmarks.
COCO_KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


@dataclass(frozen=True, slots=True, eq=False)
class Pose:
    """One person's body keypoints in pixel coordinates of the frame (COCO-17 order)."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 of the person
    score: float
    keypoints: np.ndarray  # [17, 3]: x, y, confidence

    def point(self, name: str, min_conf: float = 0.3) -> tuple[float, float] | None:
        """A named keypoint, or None where the model is not confident about it."""
        x, y, conf = self.keypoints[COCO_KEYPOINTS.index(name)]
        return (float(x), float(y)) if conf >= min_conf else None
