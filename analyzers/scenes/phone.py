"""Phone call: a phone at the head or in the hand, or a wrist held at the ear (pose).

Default model: the project's ``phone`` detector (config/models/phone.yaml, trained on phones in hands),
with the people from ``yolox_nano`` beside it (``extra_models``): each tracked person is the target,
a phone whose centre is at the person's head or within reach of a wrist makes the event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene, centre, distance, pose_for, wrist_near_head


class PhoneParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_labels: list[str] = Field(
        default_factory=lambda: ["phone", "cell phone"], description="phone classes of the detectors"
    )
    pose_score: float = Field(0.6, ge=0, le=1, description="score of the pose-only cue (wrist at the ear)")
    reach: float = Field(0.5, gt=0, description="wrist-to-ear distance, in shoulder widths, that counts")


class Phone(TargetScene):
    """A phone at the head (call) or in the hand, or a wrist held at the ear (pose)."""

    key = "phone"
    name_zh = "打电话"
    name_en = "phone call"
    alarm_types = ("phone",)
    order = 13
    Params = PhoneParams
    uses_pose = True
    default_model = "phone"
    extra_models: ClassVar[dict[str, tuple[str, ...]]] = {"yolox_nano": ("person",)}
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {
        "phone": ("phone", "cell phone"),
        "person": ("person",),
    }

    def wanted_labels(self) -> frozenset[str]:
        return frozenset({"person", *self.params.phone_labels})

    def targets(self, inside: Sequence[Detection]) -> list[Detection]:
        return [d for d in inside if d.track_id is not None and d.label == "person"]

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        x1, y1, x2, y2 = target.box
        head = (x1 - 0.1 * (x2 - x1), y1, x2 + 0.1 * (x2 - x1), y1 + 0.3 * (y2 - y1))
        pose = pose_for(target, frame.poses)
        wrists = [p for p in (pose.point("left_wrist"), pose.point("right_wrist")) if p] if pose else []
        reach = 0.15 * (y2 - y1)
        for phone in (d for d in frame.detections if d.label in self.params.phone_labels):
            cx, cy = centre(phone.box)
            if head[0] <= cx <= head[2] and head[1] <= cy <= head[3]:
                return self._obs(region, target, phone, "phone at the head")
            if any(distance((cx, cy), w) <= reach for w in wrists):
                return self._obs(region, target, phone, "phone in hand")
        if pose is not None and wrist_near_head(pose, self.params.reach):
            return Observation(
                region,
                True,
                self.params.pose_score,
                str(target.track_id),
                (target,),
                details={"cue": "wrist at the ear"},
            )
        return Observation(region, False, target=str(target.track_id), detections=(target,))

    @staticmethod
    def _obs(region: str, person: Detection, phone: Detection, cue: str) -> Observation:
        return Observation(
            region, True, phone.score, str(person.track_id), (person, phone), details={"cue": cue}
        )

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"person on the phone in {obs.region!r} ({obs.details.get('cue', 'phone')})"
