"""Behaviour on duty from detector + pose: phone calls, sleeping, smoking.

Poses come from a pose model (MoveNet MultiPose by default) and are matched to tracked people by
box overlap. Where no pose model is imported these scenes still use their detector cues, and the
camera's scene status says that the pose cue is off.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection, Pose
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene, centre, pose_for


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def wrist_near_head(pose: Pose, reach: float) -> bool:
    """A wrist within ``reach`` (fraction of the shoulder width, or of the box) of an ear or the nose."""
    ls, rs = pose.point("left_shoulder"), pose.point("right_shoulder")
    scale = _dist(ls, rs) if ls and rs else (pose.box[2] - pose.box[0]) * 0.5
    heads = [p for p in (pose.point("left_ear"), pose.point("right_ear"), pose.point("nose")) if p]
    wrists = [p for p in (pose.point("left_wrist"), pose.point("right_wrist")) if p]
    return any(_dist(w, h) <= reach * max(scale, 1.0) for w in wrists for h in heads)


class PhoneParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_labels: list[str] = Field(default_factory=lambda: ["cell phone"], description="phone classes")
    pose_score: float = Field(0.6, ge=0, le=1, description="score of the pose-only cue (wrist at the ear)")
    reach: float = Field(0.5, gt=0, description="wrist-to-ear distance, in shoulder widths, that counts")


class Phone(TargetScene):
    """A phone at the head (call) or in the hand, or a wrist held at the ear (pose)."""

    key = "phone"
    Params = PhoneParams
    uses_pose = True

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
            if any(_dist((cx, cy), w) <= reach for w in wrists):
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


class SleepingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stillness: float = Field(
        0.08, gt=0, description="largest movement, in person heights, over the window that counts as still"
    )
    window_s: float = Field(10.0, gt=0, description="how far back stillness is judged")
    lying_ratio: float = Field(1.2, gt=0, description="box width / height above this means lying")


class Sleeping(TargetScene):
    """Head down (nose below the shoulders) or lying, and still, for longer than the minimum time."""

    key = "sleeping"
    Params = SleepingParams
    uses_pose = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.paths: dict[int, deque[tuple[float, float, float, float]]] = {}

    def targets(self, inside: Sequence[Detection]) -> list[Detection]:
        return [d for d in inside if d.track_id is not None and d.label == "person"]

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        assert target.track_id is not None
        x1, y1, x2, y2 = target.box
        height = max(y2 - y1, 1.0)
        path = self.paths.setdefault(target.track_id, deque())
        cx, cy = centre(target.box)
        path.append((frame.ts, cx, cy, height))
        while path and frame.ts - path[0][0] > self.params.window_s:
            path.popleft()
        moved = max(_dist((cx, cy), (px, py)) for _, px, py, _ in path) / height
        still = frame.ts - path[0][0] >= min(self.params.window_s, self.config.min_duration_s) * 0.5 and (
            moved <= self.params.stillness
        )
        posture = self.posture(target, pose_for(target, frame.poses))
        active = still and posture is not None
        return Observation(
            region,
            active,
            target.score,
            str(target.track_id),
            (target,),
            details={"posture": posture, "movement": round(moved, 3)},
        )

    def posture(self, person: Detection, pose: Pose | None) -> str | None:
        x1, y1, x2, y2 = person.box
        if (x2 - x1) > self.params.lying_ratio * (y2 - y1):
            return "lying"
        if pose is None:
            return None
        nose = pose.point("nose")
        ls, rs = pose.point("left_shoulder"), pose.point("right_shoulder")
        lh, rh = pose.point("left_hip"), pose.point("right_hip")
        if ls and rs and lh and rh:
            sx, sy = (ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2
            hx, hy = (lh[0] + rh[0]) / 2, (lh[1] + rh[1]) / 2
            if abs(math.degrees(math.atan2(sx - hx, hy - sy))) > 60:  # torso far from upright
                return "lying"
        if nose and ls and rs and nose[1] > (ls[1] + rs[1]) / 2:
            return "head down"
        return None

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"person sleeping on duty in {obs.region!r} ({obs.details.get('posture')})"


class SmokingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(default_factory=lambda: ["cigarette", "smoking"], min_length=1)
    mouth_bonus: float = Field(0.2, ge=0, le=1, description="score added when the cigarette is at a mouth")


class Smoking(TargetScene):
    """A cigarette (detector from the registry), scored higher when a pose puts it at a mouth or hand."""

    key = "smoking"
    Params = SmokingParams
    default_model = "smoking"
    uses_pose = True

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.labels)

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        cx, cy = centre(target.box)
        score = target.score
        at_mouth = False
        for pose in frame.poses:
            points = [
                p for p in (pose.point("nose"), pose.point("left_wrist"), pose.point("right_wrist")) if p
            ]
            size = max(pose.box[3] - pose.box[1], 1.0)
            if any(_dist((cx, cy), p) <= 0.12 * size for p in points):
                at_mouth = True
                score = min(1.0, score + self.params.mouth_bonus)
                break
        return Observation(
            region, True, score, str(target.track_id), (target,), details={"at_mouth": at_mouth}
        )

    def describe(self, obs: Observation, hold: Hold) -> str:
        return f"smoking in {obs.region!r}"
