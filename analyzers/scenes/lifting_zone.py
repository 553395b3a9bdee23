"""People in a lifting zone: more people than the rated number (0 = forbidden zone) for a minimum time."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class LiftingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rated_people: int = Field(
        0, ge=0, description="people allowed in the zone during a lift; 0 makes it a forbidden zone"
    )


class LiftingZone(RegionScene):
    key = "lifting_zone"
    name_zh = "吊装区域有人"
    name_en = "people in a lifting zone"
    alarm_types = ("lifting_zone",)
    order = 6
    Params = LiftingParams

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) > self.params.rated_people

    def describe(self, obs: Observation, hold: Hold) -> str:
        if self.params.rated_people == 0:
            return f"{hold.peak} person(s) in the forbidden lifting zone {obs.region!r}"
        return f"{hold.peak} people in lifting zone {obs.region!r}, rated for {self.params.rated_people}"
