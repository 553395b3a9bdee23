"""Required role absent: the rigger/signaller (司索指挥) or the site supervisor (监护人) is not in the area.

A role is recognised by colour on a part of the person: helmet colour (head) and/or an armband
(arm), or a vest (torso). Plants configure which colours mark which role. With a detector that finds
helmets (the project's ``ppe``: set the scene's ``model: ppe``), a head rule reads the colour of the
helmet the person wears exactly as the helmet scene does (``helmet.helmet_colour`` on the helmet box);
otherwise it reads the top of the person box by HSV share.

Beside (or instead of) the colour rules, a plant can enrol its own markers
(``vigil enrol rigger_on_post NAME --data DIR --class CLASS``: crops of people wearing the armband,
vest or helmet of the role, and better also of people without it, as ``--negative``): a person whose
upper body matches an enrolled marker has the role (analyzers.enrolment, one batch per frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.colour import COLOURS, Part, box_colour, wears
from analyzers.crops import crop_expand, part_box
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene
from analyzers.scenes.enrolled import EnrolledLook
from analyzers.scenes.settings import SceneConfig
from analyzers.scenes.targets import holding_person


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
    enrolled_markers: bool = Field(
        True, description="a person matching a marker enrolled for this scene also has the role"
    )


def role_defaults(*rules: ColourRule) -> type[RoleParams]:
    class Params(RoleParams):
        role: list[ColourRule] = Field(default_factory=lambda: list(rules))

    return Params


HELMET_LABELS = frozenset({"helmet", "Hardhat"})


class RoleAbsent(RegionScene):
    score_by_confidence = False
    role_name = "role"
    enrol_part: ClassVar[str | None] = "person"  # the upper body: armband, vest and helmet in one crop

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        super().__init__(camera_id, config)
        self.look = EnrolledLook(self.key, camera_id, "")
        self._marked: tuple[float, set[tuple[float, ...]]] = (float("nan"), set())

    def marked(self, people: Sequence[Detection], frame: Frame) -> set[tuple[float, ...]]:
        """The boxes of the frame's people whose upper body matches an enrolled marker (one batch
        per frame, shared by the scene's regions); empty when nothing is enrolled."""
        if not self.params.enrolled_markers or frame.image is None:
            return set()
        if self._marked[0] == frame.ts:
            return self._marked[1]
        everyone = [d for d in frame.detections if d.label == "person"]
        boxes = [part_box(p.box, "person") for p in everyone]
        matches = self.look.match_boxes(frame.image, boxes, crop_expand("person")) or []
        found = {tuple(p.box) for p, m in zip(everyone, matches, strict=False) if m.known and m.matched}
        self._marked = (frame.ts, found)
        return found

    def wanted_labels(self) -> frozenset[str]:
        return frozenset({"person"}) | HELMET_LABELS

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        if frame.image is None:
            return False  # no picture, no colour: never alarm on guesswork
        helmets = [d for d in frame.detections if d.label in HELMET_LABELS]
        people = [d for d in inside if d.label == "person"]
        marked = self.marked(people, frame)
        present = sum(
            1
            for person in people
            if tuple(person.box) in marked or self.has_role(person, people, helmets, frame.image)
        )
        return present < self.params.min_present

    def has_role(
        self, person: Detection, people: Sequence[Detection], helmets: Sequence[Detection], image: np.ndarray
    ) -> bool:
        worn = [h for h in helmets if holding_person(h, people) is person]
        for rule in self.params.role:
            if rule.part == "head" and worn:
                if any(box_colour(image, h.box) in rule.colours for h in worn):
                    return True
            elif wears(image, person, rule.part, rule.colours, rule.min_fraction):
                return True
        return False

    def describe(self, obs: Observation, hold: Hold) -> str:
        duration = (hold.last_true or 0) - (hold.since or 0)
        return f"no {self.role_name} in {obs.region!r} for {duration:.0f} s"
