"""Smoking: a cigarette (detector from the registry), scored higher when a pose puts it at a mouth or hand.

Default model: the project's ``cigarette`` detector (config/models/cigarette.yaml); a cigarette near a
nose or wrist of a pose (at the mouth or in the hand) scores higher. The project's ``smoking``
classifier card (classes not_smoking, smoking) on the upper body of each detected person
(``classifier_crop``) still runs where a camera names it; its ``smoking`` detections get the pose cue
when a wrist is at the head (hand to mouth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection, Pose
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene, centre, distance, pose_for, wrist_near_head


def at_mouth_or_hand(
    box: tuple[float, float, float, float], poses: Sequence[Pose], reach: float = 0.12
) -> bool:
    """Whether the box's centre lies within ``reach`` (of the person's height) of a pose's nose or wrist."""
    cx, cy = centre(box)
    for pose in poses:
        points = [p for p in (pose.point("nose"), pose.point("left_wrist"), pose.point("right_wrist")) if p]
        size = max(pose.box[3] - pose.box[1], 1.0)
        if any(distance((cx, cy), p) <= reach * size for p in points):
            return True
    return False


class SmokingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(default_factory=lambda: ["cigarette", "smoking"], min_length=1)
    mouth_bonus: float = Field(0.2, ge=0, le=1, description="score added when the cigarette is at a mouth")


class Smoking(TargetScene):
    """A cigarette (detector from the registry), scored higher when a pose puts it at a mouth or hand."""

    key = "smoking"
    name_zh = "吸烟"
    name_en = "smoking"
    alarm_types = ("smoking",)
    order = 14
    Params = SmokingParams
    default_model = "cigarette"
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {
        "cigarette": ("cigarette",),
        "smoking": ("smoking",),
    }
    uses_pose = True
    classifier_crop: ClassVar[str | None] = "person"  # a classifier card runs on people's upper bodies

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        score = target.score
        at_mouth = False
        person_pose = pose_for(target, frame.poses) if target.label == "smoking" else None
        if person_pose is not None and wrist_near_head(person_pose, 0.6):
            # a classifier's person-level "smoking": the hand-to-mouth cue raises it
            return Observation(
                region,
                True,
                min(1.0, score + self.params.mouth_bonus),
                str(target.track_id),
                (target,),
                details={"at_mouth": True},
            )
        if at_mouth_or_hand(target.box, frame.poses):
            at_mouth = True
            score = min(1.0, score + self.params.mouth_bonus)
        return Observation(
            region, True, score, str(target.track_id), (target,), details={"at_mouth": at_mouth}
        )

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"smoking in {obs.region!r}"
