"""Flame and smoke: detections held over time, scored by confidence and by a growing contour.

Exclusion regions keep flare stacks and furnace windows out; a steady fire-coloured object scores
lower than a fire whose area grows from frame to frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class FireParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] = Field(min_length=1, description="detector classes that count")


class FireScene(RegionScene):
    default_model = "fire"
    anchor = sv.Position.CENTER
    growth_weight = 0.4  # up to 40 % of the score comes from growth of the detected area

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.labels)

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return bool(inside)

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        area = sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in inside) / (
            frame.width * frame.height
        )
        score = max((d.score for d in inside), default=0.0)
        return [
            Observation(
                region,
                bool(inside),
                score,
                detections=tuple(inside),
                size=area,
                details={"area_fraction": round(area, 4)},
            )
        ]

    def describe(self, obs: Observation, hold: Hold) -> str:
        trend = "growing" if hold.growth() >= 0.5 else "steady"
        return f"{self.key} in {obs.region!r} ({trend}, {len(hold.scores)} frames)"
