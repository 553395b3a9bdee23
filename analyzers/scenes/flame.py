"""Flame: fire detections held over time, scored by confidence and by a growing contour."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from analyzers.scenes.fire import FireParams, FireScene


class Flame(FireScene):
    key = "flame"
    name_zh = "火焰"
    name_en = "flame"
    alarm_types = ("flame",)
    order = 3
    # The default `fire` card is a whole-frame classifier (classes fire, smoke; sigmoid): its
    # "fire" probability becomes one frame-sized detection labelled "fire".
    classifier_crop: ClassVar[str | None] = "frame"

    class Params(FireParams):
        labels: list[str] = Field(default_factory=lambda: ["fire", "flame", "Fire"], min_length=1)
