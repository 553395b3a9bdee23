"""Zone intrusion: a person inside a configured polygon for at least the minimum duration."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class IntrusionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_people: int = Field(1, ge=1, description="people inside the region that count as an intrusion")


class Intrusion(RegionScene):
    key = "intrusion"
    name_zh = "区域入侵"
    name_en = "zone intrusion"
    alarm_types = ("intrusion",)
    order = 9
    Params = IntrusionParams

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) >= self.params.min_people

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"{hold.peak} person(s) entered region {obs.region!r}"
