"""Custom: any loaded detector, with a class -> alarm mapping in the configuration."""

from __future__ import annotations

from collections.abc import Sequence

import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class CustomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: dict[str, str] = Field(
        min_length=1, description="detector class -> alarm name, e.g. {forklift: forklift in walkway}"
    )


class Custom(RegionScene):
    key = "custom"
    name_zh = "自定义模型"
    name_en = "custom model"
    alarm_types = ("custom",)
    order = 15
    Params = CustomParams
    default_model = ""  # the configuration names the model
    anchor = sv.Position.CENTER

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.classes)

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return bool(inside)

    def describe(self, obs: Observation, hold: Hold) -> str:
        names = sorted({self.params.classes[d.label] for d in obs.detections})
        return f"{', '.join(names)} in {obs.region!r}"
