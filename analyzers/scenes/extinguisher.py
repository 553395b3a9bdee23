"""Hot work without fire extinguishers: fewer than required in the configured area for a minimum time.

Sampled at 1 frame/min by default. No licence-clean extinguisher data exists here: the scene works with
the ``extinguisher`` classifier a plant trains on its own photos (`vigil samples import`, `vigil train
extinguisher --library`), or with any detector whose card declares an extinguisher class, and reports
"model missing" until one is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene


class ExtinguisherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: int = Field(2, ge=1, description="extinguishers required at the hot-work site")
    labels: list[str] = Field(default_factory=lambda: ["fire_extinguisher", "extinguisher"], min_length=1)


class Extinguisher(RegionScene):
    key = "extinguisher"
    name_zh = "动火作业未配灭火器"
    name_en = "hot-work fire extinguisher missing"
    sample_fps = 1 / 60
    alarm_types = ("extinguisher",)
    order = 5
    Params = ExtinguisherParams
    default_model = "extinguisher"
    anchor = sv.Position.CENTER
    score_by_confidence = False
    # A classifier card (extinguisher / background) looks at sliding windows of the frame; the
    # windows it calls extinguisher are merged into one detection per object and counted.
    classifier_crop: ClassVar[str | None] = "scan"

    def wanted_labels(self) -> frozenset[str]:
        return frozenset(self.params.labels)

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) < self.params.required

    def describe(self, obs: Observation, hold: Hold) -> str:
        return (
            f"hot work in {obs.region!r} with {len(obs.detections)} of {self.params.required} "
            "required fire extinguishers"
        )
