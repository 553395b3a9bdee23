"""Per-target scenes: each tracked object (a head, a person, a cigarette) has its own event."""

from __future__ import annotations

import math
from collections.abc import Sequence

from analyzers.records import Detection, Pose
from analyzers.scenes.base import Frame, Observation, Scene


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def pose_for(person: Detection, poses: Sequence[Pose], min_iou: float = 0.3) -> Pose | None:
    """The pose whose box best overlaps the person's box."""
    best, best_iou = None, min_iou
    for pose in poses:
        iou = box_iou(person.box, pose.box)
        if iou > best_iou:
            best, best_iou = pose, iou
    return best


def centre(box: tuple[float, float, float, float]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def holding_person(head: Detection, people: Sequence[Detection]) -> Detection | None:
    """The person whose upper half holds the head's centre (the smallest such box: the nearest one
    where people overlap)."""
    cx, cy = centre(head.box)
    best, best_area = None, float("inf")
    for person in people:
        x1, y1, x2, y2 = person.box
        upper = y1 + 0.5 * (y2 - y1)
        pad = 0.1 * (x2 - x1)
        if x1 - pad <= cx <= x2 + pad and y1 - 0.15 * (y2 - y1) <= cy <= upper:
            area = (x2 - x1) * (y2 - y1)
            if area < best_area:
                best, best_area = person, area
    return best


class TargetScene(Scene):
    """Observations per tracked target; a detection seen for the first time waits for its track id."""

    tracked = True

    def targets(self, inside: Sequence[Detection]) -> list[Detection]:
        return [d for d in inside if d.track_id is not None]

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        return [self.judge(region, target, inside, frame) for target in self.targets(inside)]

    def judge(self, region: str, target: Detection, inside: Sequence[Detection], frame: Frame) -> Observation:
        """Whether this target is in violation now (override); default: every target is."""
        return Observation(region, True, target.score, str(target.track_id), (target,))


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def wrist_near_head(pose: Pose, reach: float) -> bool:
    """A wrist within ``reach`` (fraction of the shoulder width, or of the box) of an ear or the nose."""
    ls, rs = pose.point("left_shoulder"), pose.point("right_shoulder")
    scale = distance(ls, rs) if ls and rs else (pose.box[2] - pose.box[0]) * 0.5
    heads = [p for p in (pose.point("left_ear"), pose.point("right_ear"), pose.point("nose")) if p]
    wrists = [p for p in (pose.point("left_wrist"), pose.point("right_wrist")) if p]
    return any(distance(w, h) <= reach * max(scale, 1.0) for w in wrists for h in heads)
