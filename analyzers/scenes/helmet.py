"""No safety helmet, with the helmet colour recognised (a helmet of a colour not allowed here also alarms).

Default model: the project's ``ppe`` detector (config/models/ppe.yaml: person, head = bare head,
helmet = helmeted head, vest). Heads come from the detector directly (a head is judged even where its
person is not found), are tracked, and are tied to the person whose upper body holds them; the event
key is that person's track (one alarm per person per event), or the head's own track while no person
holds it. Every bare head of the frame is boxed in each alarm's evidence, the alarm's own first.
The helmet's colour (red, yellow, blue, white, other) is read from the helmet box.

The older chain (person detector -> head crop -> the ``helmet`` classifier card) still runs when a
camera names that card as the scene's model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from analyzers.colour import HELMET_COLOURS, box_colour
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.settings import SceneConfig
from analyzers.scenes.targets import TargetScene, holding_person
from analyzers.tracking import Tracker


class HelmetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    violation_labels: list[str] = Field(
        default_factory=lambda: ["head", "no_helmet", "NO-Hardhat"],
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
    name_zh = "未戴安全帽"
    name_en = "no safety helmet"
    alarm_types = ("helmet",)
    order = 1
    Params = HelmetParams
    default_model = "ppe"
    classifier_crop: ClassVar[str | None] = "head"  # a classifier card runs on head crops of people
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {
        "no_helmet": ("no_helmet", "head", "NO-Hardhat"),
        "helmet": ("helmet", "Hardhat"),
        "person": ("person",),
    }

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        super().__init__(camera_id, config)
        self._owner: dict[int, str] = {}  # head track -> event target, sticky once a person holds it
        # People and heads in separate trackers: a head box inside a person box must never be taken
        # for the same object by IoU.
        self._people_tracker = Tracker(fps=config.rate)

    def track(self, detections: list[Detection]) -> list[Detection]:
        people = [d for d in detections if d.label == "person"]
        heads = [d for d in detections if d.label != "person"]
        assert self.tracker is not None
        return [*self.tracker.update(heads), *self._people_tracker.update(people)]

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.violation_labels) | frozenset(self.params.helmet_labels) | {"person"}

    def heads(self, detections: Sequence[Detection]) -> list[Detection]:
        labels = set(self.params.violation_labels) | set(self.params.helmet_labels)
        return [d for d in detections if d.label in labels]

    def targets(self, inside: Sequence[Detection]) -> list[Detection]:
        return [d for d in self.heads(inside) if d.track_id is not None]

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        people = [d for d in frame.detections if d.label == "person"]
        bare = [d for d in frame.detections if d.label in self.params.violation_labels]
        out: dict[str, Observation] = {}
        for head in self.targets(inside):
            obs = self.judge_head(region, head, people, bare, frame)
            # two heads under one person box (overlapping people): the violation wins
            if obs.key not in out or (obs.active and not out[obs.key].active):
                out[obs.key] = obs
        return list(out.values())

    def _target(self, head: Detection, people: Sequence[Detection]) -> str:
        assert head.track_id is not None
        owner = self._owner.get(head.track_id)
        if owner is None:
            person = holding_person(head, people)
            if person is None or person.track_id is None:
                return f"h{head.track_id}"
            owner = self._owner[head.track_id] = f"p{person.track_id}"
        return owner

    def judge_head(
        self,
        region: str,
        head: Detection,
        people: Sequence[Detection],
        bare: Sequence[Detection],
        frame: Frame,
    ) -> Observation:
        # The colour at the head is in every alarm: the shell's colour for a wrong-colour helmet, and
        # what the head shows otherwise (a cap, hair: "other"), which helps find the person on site.
        colour = box_colour(frame.image, head.box)
        target = self._target(head, people)
        if head.label in self.params.violation_labels:
            others = tuple(d for d in bare if d is not head)
            return Observation(
                region,
                True,
                head.score,
                target,
                (head, *others),
                details={
                    "violation": "no helmet",
                    "helmet": False,
                    "colour": colour,
                    "bare_heads": len(bare),
                },
            )
        wrong = bool(self.params.allowed_colours) and colour not in self.params.allowed_colours
        details: dict[str, object] = {"helmet": True, "colour": colour}
        if wrong:
            details["violation"] = "wrong helmet colour"
        return Observation(region, wrong, head.score, target, (head,), details=details)

    def describe(self, obs: Observation, hold: Hold) -> str:
        colour = obs.details.get("colour") or "unknown"
        if obs.details.get("violation") == "wrong helmet colour":
            return f"helmet colour {colour} not allowed in {obs.region!r}"
        return f"person without a safety helmet in {obs.region!r} (colour at the head: {colour})"
