"""No work clothes: a tracked person whose torso matches none of the plant's enrolled uniforms.

Every plant dresses differently, so the judge is the plant's own enrolment (analyzers.enrolment):
example crops of each accepted uniform type (and, better, of people not in uniform), enrolled with
``vigil enrol workwear NAME --data DIR --class CLASS`` or in the console. The person detector
(``yolox_nano``) finds people, they are tracked, each torso (``crops.part_box``, grown as the examples
were) is embedded and matched; a person whose torso matches no enrolled uniform for the minimum
duration raises one alarm. With nothing enrolled the scene raises nothing and the camera shows
"no uniform enrolled".

The older judge, a model whose classes say uniform / no uniform (the ``workwear`` vest card on torso
crops, or a detector), still runs when the camera names it as the scene's ``model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.crops import crop_expand, part_box
from analyzers.enrolment import Match
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.enrolled import EnrolledLook
from analyzers.scenes.settings import SceneConfig
from analyzers.scenes.targets import TargetScene

NO_UNIFORM = (
    "no uniform enrolled: enrol the plant's work clothes (`vigil enrol workwear NAME --data DIR "
    "--class CLASS`, or the console's Enrolments page) / 未登记工服：请先登记本厂工服样本"
)


class WorkwearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    violation_labels: list[str] = Field(
        default_factory=lambda: ["no_workwear", "NO-Safety Vest"],
        description="with a model as judge: classes that mean a person without work clothes",
    )
    uniform_labels: list[str] = Field(
        default_factory=lambda: ["workwear", "Safety Vest"],
        description="with a model as judge: classes of the accepted uniform types",
    )


class Workwear(TargetScene):
    key = "workwear"
    name_zh = "未穿工作服"
    name_en = "no work clothes"
    alarm_types = ("workwear",)
    order = 2
    Params = WorkwearParams
    default_model = "yolox_nano"  # people; the enrolment judges their torsos
    enrol_part: ClassVar[str | None] = "torso"
    classifier_crop: ClassVar[str | None] = "torso"  # a classifier card named as model runs on torsos
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {
        "workwear": ("workwear", "Safety Vest"),
        "no_workwear": ("no_workwear", "NO-Safety Vest"),
    }

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        super().__init__(camera_id, config)
        self.look = EnrolledLook(self.key, camera_id, NO_UNIFORM)
        self._frame: tuple[float, dict[int, Match]] | None = None

    @property
    def enrolment_judges(self) -> bool:
        """True unless the camera names a model of uniform classes as the judge."""
        return self.config.model is None or self.config.model == self.default_model

    def wanted_labels(self) -> frozenset[str]:
        if self.enrolment_judges:
            return frozenset({"person"})
        return frozenset(self.params.violation_labels) | frozenset(self.params.uniform_labels)

    def waiting_for(self) -> str | None:
        if not self.enrolment_judges:
            return None
        if self.look.missing is None and self._frame is None:
            self.look.get()  # before the first frame: say what is missing already
        return self.look.missing

    def torso_matches(self, image: np.ndarray, people: Sequence[Detection]) -> list[Match] | None:
        """Each person's torso against the enrolled uniforms (None: nothing enrolled)."""
        boxes = [part_box(p.box, "torso") for p in people]
        return self.look.match_boxes(image, boxes, crop_expand("torso"))

    def classify(self, image: np.ndarray, people: Sequence[Detection]) -> list[Detection]:
        """The scene's per-frame call on each judged person, as detections of the person's box:
        ``workwear`` (the torso matches an enrolled uniform) or ``no_workwear`` (it matches none),
        scored by the match's confidence; people too small to judge are left out. The same call
        ``observe`` makes; ``vigil eval --scene workwear --end-to-end`` scores these."""
        matches = self.torso_matches(image, people) or []
        out = []
        for person, m in zip(people, matches, strict=False):
            if not m.known:
                continue
            label = "workwear" if m.matched else "no_workwear"
            score = m.confidence if m.matched else 1.0 - m.confidence
            out.append(Detection(person.box, score, int(not m.matched), label, person.track_id))
        return out

    def _matches(self, frame: Frame) -> dict[int, Match] | None:
        if self._frame is not None and self._frame[0] == frame.ts:
            return self._frame[1]
        if frame.image is None:
            return None
        people = [d for d in frame.detections if d.label == "person" and d.track_id is not None]
        found = self.torso_matches(frame.image, people)
        if found is None:
            return None
        table = {p.track_id: m for p, m in zip(people, found, strict=True) if p.track_id is not None}
        self._frame = (frame.ts, table)
        return table

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        if not self.enrolment_judges:
            return super().observe(region, inside, frame)
        matches = self._matches(frame)
        if matches is None:
            return []  # nothing enrolled: never an alarm
        out = []
        for person in self.targets(inside):
            m = matches.get(person.track_id) if person.track_id is not None else None
            if m is None or not m.known:
                continue  # too small to judge
            active = not m.matched
            details = {
                "violation": "no work clothes" if active else None,
                "nearest_uniform": m.label,
                "margin": round(m.margin, 4),
            }
            score = 1.0 - m.confidence if active else m.confidence
            out.append(Observation(region, active, score, str(person.track_id), (person,), details=details))
        return out

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        """With a model as judge: its violation classes alarm."""
        active = target.label in self.params.violation_labels
        return Observation(region, active, target.score, str(target.track_id), (target,))

    def describe(self, obs: Observation, hold: Hold) -> str:
        nearest = obs.details.get("nearest_uniform")
        tail = f" (nearest enrolled uniform: {nearest})" if nearest else ""
        return f"person without work clothes in {obs.region!r}{tail}"
