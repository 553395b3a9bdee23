"""No work clothes: a person of a violation class, with several accepted uniform types.

Default model: the project's ``workwear`` classifier card (classes workwear, no_workwear) run on torso
crops of detected people (``classifier_crop``); a detector with these classes works as well. Until one
is imported the scene reports "model missing"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene


class WorkwearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    violation_labels: list[str] = Field(
        default_factory=lambda: ["no_workwear", "NO-Safety Vest"],
        description="classes that mean a person without work clothes",
    )
    uniform_labels: list[str] = Field(
        default_factory=lambda: ["workwear", "Safety Vest"],
        description="classes of the accepted uniform types (several may be accepted)",
    )


class Workwear(TargetScene):
    key = "workwear"
    name_zh = "未穿工作服"
    name_en = "no work clothes"
    alarm_types = ("workwear",)
    order = 2
    Params = WorkwearParams
    default_model = "workwear"
    classifier_crop: ClassVar[str | None] = "torso"  # a classifier card runs on torso crops of people

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.violation_labels) | frozenset(self.params.uniform_labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        active = target.label in self.params.violation_labels
        return Observation(region, active, target.score, str(target.track_id), (target,))

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"person without work clothes in {obs.region!r}"
