"""Crowd gathering: the people count in a region at or above a threshold for the minimum duration."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class CrowdParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_people: int = Field(5, ge=2, description="this many people or more in the region is a crowd")


class Crowd(RegionScene):
    key = "crowd"
    name_zh = "人员聚集"
    name_en = "crowd gathering"
    alarm_types = ("crowd",)
    order = 12
    Params = CrowdParams

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) >= self.params.min_people

    def describe(self, obs: Observation, hold: Hold) -> str:
        return (
            f"crowd of up to {hold.peak} people in region {obs.region!r} (threshold {self.params.min_people})"
        )
