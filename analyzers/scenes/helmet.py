"""No safety helmet, with the helmet colour recognised (a helmet of a colour not allowed here also alarms).

Default model: the project's ``helmet`` classifier card (config/models/helmet.yaml: classes helmet,
no_helmet) run on head crops of detected people (``classifier_crop``); a detector whose card declares
head/helmet classes works as well. Until one is imported the scene reports "model missing"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.colour import dominant_colour
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene

HELMET_COLOURS = ("red", "yellow", "blue", "white", "other")


def helmet_colour(head: np.ndarray) -> str | None:
    """red, yellow, blue, white or other, from the upper part of a head crop (where the shell is);
    None for an empty crop. Orange, green and unclear shells count as other."""
    if head.size == 0:
        return None
    colour, _ = dominant_colour(head[: max(1, int(head.shape[0] * 0.6))])
    return colour if colour in HELMET_COLOURS else "other"


class HelmetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    violation_labels: list[str] = Field(
        default_factory=lambda: ["no_helmet", "head", "NO-Hardhat"],
        description="classes that mean a head without a helmet",
    )
    helmet_labels: list[str] = Field(
        default_factory=lambda: ["helmet", "Hardhat"], description="classes that mean a helmet is worn"
    )
    allowed_colours: list[str] = Field(
        default_factory=list,
        description=f"helmet colours allowed here (of {', '.join(HELMET_COLOURS)}); empty = any colour",
    )


class Helmet(TargetScene):
    key = "helmet"
    Params = HelmetParams
    default_model = "helmet"
    classifier_crop: ClassVar[str | None] = "head"  # a classifier card runs on head crops of people

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.violation_labels) | frozenset(self.params.helmet_labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        # The colour at the head is in every alarm: the shell's colour for a wrong-colour helmet, and
        # what the head shows otherwise (a cap, hair: "other"), which helps find the person on site.
        colour = None
        if frame.image is not None:
            x1, y1, x2, y2 = (max(0, int(v)) for v in target.box)
            colour = helmet_colour(frame.image[y1:y2, x1:x2])
        if target.label in self.params.violation_labels:
            return Observation(
                region,
                True,
                target.score,
                str(target.track_id),
                (target,),
                details={"violation": "no helmet", "helmet": False, "colour": colour},
            )
        wrong = bool(self.params.allowed_colours) and colour not in self.params.allowed_colours
        details = {"helmet": True, "colour": colour}
        if wrong:
            details["violation"] = "wrong helmet colour"
        return Observation(region, wrong, target.score, str(target.track_id), (target,), details=details)

    def describe(self, obs: Observation, hold: Hold) -> str:
        colour = obs.details.get("colour") or "unknown"
        if obs.details.get("violation") == "wrong helmet colour":
            return f"helmet colour {colour} not allowed in {obs.region!r}"
        return f"person without a safety helmet in {obs.region!r} (colour at the head: {colour})"
