"""Smoke: as flame, with smoke classes."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from analyzers.scenes.fire import FireParams, FireScene


class Smoke(FireScene):
    key = "smoke"
    name_zh = "烟雾"
    name_en = "smoke"
    alarm_types = ("smoke",)
    order = 4
    # The default `fire` card is a whole-frame classifier (classes fire, smoke; sigmoid): its
    # "smoke" probability becomes one frame-sized detection labelled "smoke".
    classifier_crop: ClassVar[str | None] = "frame"

    class Params(FireParams):
        labels: list[str] = Field(default_factory=lambda: ["smoke"], min_length=1)
