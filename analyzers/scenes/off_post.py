"""Off post (离岗): fewer people than required in the duty area for longer than the minimum time."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class OffPostParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_people: int = Field(1, ge=1, description="people who must be on duty in the area")


class OffPost(RegionScene):
    key = "off_post"
    name_zh = "离岗"
    name_en = "off post"
    alarm_types = ("off_post",)
    order = 10
    Params = OffPostParams
    score_by_confidence = False

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) < self.params.min_people

    def describe(self, obs: Observation, hold: Hold) -> str:
        duration = (hold.last_true or 0) - (hold.since or 0)
        return f"fewer than {self.params.min_people} person(s) on duty in {obs.region!r} for {duration:.0f} s"
