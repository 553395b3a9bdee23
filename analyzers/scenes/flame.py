"""Flame: fire detections held over time, scored by confidence and by a growing contour."""

from __future__ import annotations

from pydantic import Field

from analyzers.scenes.fire import FireParams, FireScene


class Flame(FireScene):
    key = "flame"

    class Params(FireParams):
        labels: list[str] = Field(default_factory=lambda: ["fire", "flame", "Fire"], min_length=1)
