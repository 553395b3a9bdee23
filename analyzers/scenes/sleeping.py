"""Sleeping on duty: head down (nose below the shoulders) or lying, and still, for a minimum time."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection, Pose
from analyzers.scenes.base import Frame, Hold, Observation
from analyzers.scenes.targets import TargetScene, centre, distance, pose_for


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
    name_zh = "睡岗"
    name_en = "sleeping on duty"
    alarm_types = ("sleeping",)
    order = 11
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
        moved = max(distance((cx, cy), (px, py)) for _, px, py, _ in path) / height
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
