"""Required role absent: the rigger/signaller (司索指挥) or the site supervisor (监护人) is not in the area.

A role is recognised by colour on a part of the person: helmet colour (head) and/or an armband
(arm), or a vest (torso). Plants configure which colours mark which role.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.colour import COLOURS, Part, wears
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class ColourRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    part: Part = Field(description="head (helmet), arm (armband) or torso (vest)")
    colours: list[str] = Field(min_length=1, description=f"any of: {', '.join(COLOURS)}")
    min_fraction: float = Field(0.25, gt=0, le=1, description="share of the part's pixels in the colour")

    def model_post_init(self, _context: object) -> None:
        unknown = [c for c in self.colours if c not in COLOURS]
        if unknown:
            raise ValueError(f"unknown colours {unknown}; known: {', '.join(COLOURS)}")


class RoleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: list[ColourRule] = Field(description="a person has the role when any rule matches")
    min_present: int = Field(1, ge=1, description="people with the role who must be in the area")


def role_defaults(*rules: ColourRule) -> type[RoleParams]:
    class Params(RoleParams):
        role: list[ColourRule] = Field(default_factory=lambda: list(rules))

    return Params


class RoleAbsent(RegionScene):
    score_by_confidence = False
    role_name = "role"

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        if frame.image is None:
            return False  # no picture, no colour: never alarm on guesswork
        present = sum(
            1
            for person in inside
            if any(wears(frame.image, person, r.part, r.colours, r.min_fraction) for r in self.params.role)
        )
        return present < self.params.min_present

    def describe(self, obs: Observation, hold: Hold) -> str:
        duration = (hold.last_true or 0) - (hold.since or 0)
        return f"no {self.role_name} in {obs.region!r} for {duration:.0f} s"
