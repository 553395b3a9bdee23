"""Hot work without fire extinguishers: fewer than required in the configured area for a minimum time.

Sampled at 1 frame/min by default. Extinguisher types and colours differ by plant, so the default judge
is the plant's enrolment (``vigil enrol extinguisher NAME --data DIR --class CLASS``: a few labelled
photos; windows of the same photos away from the extinguishers are enrolled as "background"). Each
analysed frame is scanned with windows (``crops.scan_boxes``) inside the configured areas, of the
heights and shape of the enrolled examples' boxes (shape proposals);
the windows whose colour is closest to the enrolled examples are the candidates (colour proposals),
embedded and matched (analyzers.enrolment); overlapping matches are one extinguisher
(``crops.merge_boxes``). The extinguishers found are counted per area and boxed in the alarm's evidence.
With nothing enrolled the scene raises nothing and says so on the camera.

A model still judges where a camera names one: the ``extinguisher`` classifier a plant trains on its
own photos (`vigil train extinguisher --library`) or any detector whose card declares an extinguisher
class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict, Field

from analyzers.crops import crop_expand, merge_boxes, scan_boxes
from analyzers.detectors.classifier import crop_box
from analyzers.enrolment import colour_descriptors
from analyzers.enrolment.windows import window_shape
from analyzers.records import Detection
from analyzers.scenes.base import Frame, Hold, Observation, RegionScene
from analyzers.scenes.enrolled import EnrolledLook
from analyzers.scenes.settings import SceneConfig
from analyzers.zones import Region

NOTHING_ENROLLED = (
    "no extinguisher enrolled: enrol the plant's extinguishers (`vigil enrol extinguisher NAME --data DIR "
    "--class CLASS`, or the console's Enrolments page) / 未登记灭火器：请先登记本厂灭火器样本"
)


class ExtinguisherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: int = Field(2, ge=1, description="extinguishers required at the hot-work site")
    labels: list[str] = Field(
        default_factory=lambda: ["fire_extinguisher", "extinguisher"],
        min_length=1,
        description="with a model as judge: its extinguisher classes",
    )
    window_sides: list[float] | None = Field(
        None,
        min_length=1,
        description="enrolment: heights of the scanning windows as fractions of the frame height; null = "
        "from the enrolled examples' boxes (10th, 50th, 90th percentile), else 0.12, 0.2 and 0.3",
    )
    candidates: int = Field(
        48, ge=1, le=512, description="enrolment: windows embedded per frame (those closest in colour)"
    )


class Extinguisher(RegionScene):
    key = "extinguisher"
    name_zh = "动火作业未配灭火器"
    name_en = "hot-work fire extinguisher missing"
    sample_fps = 1 / 60
    alarm_types = ("extinguisher",)
    order = 5
    Params = ExtinguisherParams
    default_model = "yolox_nano"  # a first stage the camera runner shares; the enrolment scans the frame
    enrol_part: ClassVar[str | None] = "scan"
    anchor = sv.Position.CENTER
    score_by_confidence = False
    # With a classifier card as the model: it looks at sliding windows of the frame; the windows it
    # calls extinguisher are merged into one detection per object and counted.
    classifier_crop: ClassVar[str | None] = "scan"
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {
        "extinguisher": ("extinguisher", "fire_extinguisher", "Fire Extinguisher", "fire-extinguisher"),
    }

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        super().__init__(camera_id, config)
        self.look = EnrolledLook(self.key, camera_id, NOTHING_ENROLLED)
        self._frame: tuple[float, list[Detection]] | None = None

    @property
    def enrolment_judges(self) -> bool:
        return self.config.model is None or self.config.model == self.default_model

    def wanted_labels(self) -> frozenset[str]:
        return frozenset({"person"}) if self.enrolment_judges else frozenset(self.params.labels)

    def waiting_for(self) -> str | None:
        if not self.enrolment_judges:
            return None
        if self.look.missing is None and self._frame is None:
            self.look.get()
        return self.look.missing

    def windows(
        self, width: int, height: int, shapes: Sequence[tuple[float, float]] = ()
    ) -> list[tuple[float, float, float, float]]:
        """The scanning windows whose centre lies in a configured area."""
        sides, aspect = window_shape(shapes, self.params.window_sides)
        boxes = scan_boxes(width, height, sides, aspect)
        probes = [Detection(b, 1.0, 0, "window") for b in boxes]
        kept: set[int] = set()
        for region in self.regions:
            if self.active_regions is not None and region.name not in self.active_regions:
                continue  # drawn at another PTZ preset
            kept |= {id(d) for d in region.inside(probes, width, height, sv.Position.CENTER)}
        return [d.box for d in probes if id(d) in kept]

    def classify(self, image: np.ndarray, _detections: Sequence[Detection] = ()) -> list[Detection]:
        """The extinguishers the enrolment finds in the frame's areas: colour proposals among the
        windows, embedded and matched, overlapping matches merged. ``vigil eval`` scores these."""
        got = self.look.get()
        if got is None:
            return []
        enrolled, _ = got
        height, width = image.shape[:2]
        boxes = self.windows(width, height, enrolled.shapes)
        if not boxes:
            return []
        expand = crop_expand("scan")
        colours = colour_descriptors([crop_box(image, b, expand) for b in boxes])
        examples = enrolled.examples
        positive = examples.colours[~examples.negative]
        closeness = (colours @ positive.T).max(axis=1) if len(positive) else np.zeros(len(boxes))
        order = np.argsort(-closeness, kind="stable")[: self.params.candidates]
        chosen = [boxes[int(i)] for i in order]
        matches = self.look.match_boxes(image, chosen, expand) or []
        found = [
            Detection(box, m.confidence, 0, "extinguisher")
            for box, m in zip(chosen, matches, strict=True)
            if m.known and m.matched
        ]
        return merge_boxes(found)

    def _found(self, frame: Frame) -> list[Detection] | None:
        if self._frame is not None and self._frame[0] == frame.ts:
            return self._frame[1]
        if frame.image is None:
            return None
        found = self.classify(frame.image)
        if self.look.missing is not None:
            return None
        self._frame = (frame.ts, found)
        return found

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        if not self.enrolment_judges:
            return super().observe(region, inside, frame)
        found = self._found(frame)
        if found is None:
            return []  # nothing enrolled (or no picture): never an alarm
        area = next((r for r in self.regions if r.name == region), None)
        here = (
            area.inside(found, frame.width, frame.height, self.anchor) if isinstance(area, Region) else found
        )
        active = len(here) < self.params.required
        return [Observation(region, active, 1.0, detections=tuple(here), details={"found": len(here)})]

    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        return len(inside) < self.params.required

    def describe(self, obs: Observation, hold: Hold) -> str:
        return (
            f"hot work in {obs.region!r} with {len(obs.detections)} of {self.params.required} "
            "required fire extinguishers"
        )
