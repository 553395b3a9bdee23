"""Personal protective equipment: no safety helmet (with helmet colour), no work clothes.

Both read a detector from the model registry whose card declares the classes; the class names
differ between models, so they are parameters. Until such a model is imported the scene reports
"model missing" (the gateway shows it on the camera).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.colour import COLOURS, dominant_colour
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene


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
        description=f"helmet colours allowed here (of {', '.join(COLOURS)}); empty = any colour",
    )


class Helmet(TargetScene):
    key = "helmet"
    Params = HelmetParams
    default_model = "helmet"

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.violation_labels) | frozenset(self.params.helmet_labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        if target.label in self.params.violation_labels:
            return Observation(
                region,
                True,
                target.score,
                str(target.track_id),
                (target,),
                details={"violation": "no helmet"},
            )
        colour = None
        if frame.image is not None:
            x1, y1, x2, y2 = (max(0, int(v)) for v in target.box)
            colour, _ = dominant_colour(frame.image[y1:y2, x1:x2])
        wrong = bool(self.params.allowed_colours) and colour not in self.params.allowed_colours
        return Observation(
            region,
            wrong,
            target.score,
            str(target.track_id),
            (target,),
            details={"violation": "wrong helmet colour", "colour": colour} if wrong else {"colour": colour},
        )

    def describe(self, obs: Observation, hold: Hold) -> str:
        if obs.details.get("violation") == "wrong helmet colour":
            return f"helmet colour {obs.details.get('colour') or 'unknown'} not allowed in {obs.region!r}"
        return f"person without a safety helmet in {obs.region!r}"


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
    Params = WorkwearParams
    default_model = "workwear"

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.violation_labels) | frozenset(self.params.uniform_labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        active = target.label in self.params.violation_labels
        return Observation(region, active, target.score, str(target.track_id), (target,))

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"person without work clothes in {obs.region!r}"
