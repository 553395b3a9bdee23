"""Per camera-scene settings: regions, thresholds, minimum duration, schedule, feature tags.

These pydantic models are the configuration schema itself: the gateway embeds them in its config.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from analyzers.scenes.catalogue import CATALOGUE
from analyzers.scenes.unit_rules import UnitRule, UnitState

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_POLYGON_POINTS = 256  # the self-crossing check is quadratic: 256 points is ~33k edge pairs


def _segments_cross(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float], d: tuple[float, float]
) -> bool:
    def orient(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    return (orient(a, b, c) * orient(a, b, d) < 0) and (orient(c, d, a) * orient(c, d, b) < 0)


def _polygon_error(key: str, text: str, **params: int) -> PydanticCustomError:
    return PydanticCustomError("polygon", "{text}", {"text": text, "key": key, **params})


class RegionConfig(BaseModel):
    """A polygon in 0..1 image coordinates (x to the right, y down)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="region name, unique within the camera-scene; alarms carry it")
    polygon: list[tuple[float, float]] = Field(
        max_length=MAX_POLYGON_POINTS,
        description=f"3 to {MAX_POLYGON_POINTS} [x, y] points, each within 0..1",
    )
    unit: str | None = Field(None, description="production unit this region belongs to; null = the camera's")
    preset: str | None = Field(
        None,
        description="PTZ preset (in the camera's ptz.presets) this region was drawn at: it is analysed only "
        "while the camera is at that preset; null = the scene's preset (or every view without one)",
    )

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        # Each problem carries a translation key (gateway/i18n/scenes.py) so the API words it in the
        # user's language; the text here is the English.
        if len(points) < 3:
            raise _polygon_error(
                "region.need3", f"a polygon needs at least 3 points, got {len(points)}", n=len(points)
            )
        for i, (x, y) in enumerate(points):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                text = f"point {i} [{x}, {y}] is outside 0..1; use fractions of width and height"
                raise _polygon_error("region.outside", text, i=i)
        edges = [(points[i], points[(i + 1) % len(points)]) for i in range(len(points))]
        for i, (a, b) in enumerate(edges):
            for j in range(i + 2, len(edges)):
                if i == 0 and j == len(edges) - 1:
                    continue  # neighbours through the closing edge
                if _segments_cross(a, b, *edges[j]):
                    text = f"the polygon crosses itself (edges {i} and {j}); list points in order"
                    raise _polygon_error("region.crosses", text, i=i, j=j)
        area = 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in edges))
        if area < 1e-4:
            raise _polygon_error("region.no_area", "the polygon has no area")
        return points


class TimeWindow(BaseModel):
    """Active on the given weekdays from start to end (local time); end < start crosses midnight."""

    model_config = ConfigDict(extra="forbid")

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(23, 59, 59)

    def contains(self, moment: dt.datetime) -> bool:
        day = WEEKDAYS[moment.weekday()]
        now = moment.time()
        if self.start <= self.end:
            return day in self.days and self.start <= now <= self.end
        if now >= self.start:
            return day in self.days
        yesterday = WEEKDAYS[(moment.weekday() - 1) % 7]
        return yesterday in self.days and now <= self.end


class FeatureTags(BaseModel):
    """The standard's feature tags of a camera-scene, carried with every alarm."""

    model_config = ConfigDict(extra="forbid")

    area: str | None = Field(None, description="plant area, e.g. tank farm, loading bay")
    monitoring_scene: str | None = Field(None, description="e.g. hot work, lifting, patrol")
    equipment_status: str | None = Field(None, description="e.g. running, maintenance, shutdown")
    hazard_class: str | None = Field(None, description="major hazard source class")
    importance: Literal["low", "normal", "high", "critical"] | None = None
    environment: str | None = Field(None, description="indoor, outdoor, night, rain ...")
    crowd: str | None = Field(None, description="expected crowd level")
    time: str | None = Field(None, description="shift or period label")


class SceneConfig(BaseModel):
    """One scene running on one camera (一路多算法: a camera lists several)."""

    model_config = ConfigDict(extra="forbid")

    scene: str = Field(description="scene key from the catalogue (config/scenes.yaml)")
    enabled: bool = True
    model: str | None = Field(
        None, description="model name from the registry; null = the scene's own (see `vigil scenes`)"
    )
    pose_model: str = Field("movenet_multipose", description="pose model for scenes with pose cues")
    input_size: Literal["auto", "card"] | tuple[int, int] = Field(
        "auto",
        description="detector input size: auto = on a model card with dynamic_size, the card's size when "
        "the frame's aspect is within 10% of it, else aspect-matched with the longer side 640 (a "
        "1280x704 camera runs at 640x352); on other cards the card's size; card = the card's size; "
        "[width, height] = that size, each a multiple of the model's largest stride (32 for YOLOX)",
    )
    regions: list[RegionConfig] = Field(
        default_factory=list, description="regions of interest; none means the whole frame"
    )
    exclusions: list[RegionConfig] = Field(
        default_factory=list, description="areas ignored by the scene (for example a flare stack)"
    )
    preset: str | None = Field(
        None,
        description="PTZ preset (a name in the camera's ptz.presets) the regions were drawn at: while the "
        "camera is elsewhere the scene pauses; null = a fixed view",
    )
    unit_rules: dict[UnitState, UnitRule] = Field(
        default_factory=dict,
        description="per run state of the unit: run, suppress or {action: raise, priority: N}; "
        "a state not listed runs",
    )
    detection_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="minimum detector confidence; null = the model card's per-class thresholds (chosen at "
        "training on a hold-out of the training data), 0.35 where the card has none",
    )
    alarm_threshold: float = Field(0.5, ge=0.0, le=1.0, description="minimum event score to raise")
    min_duration_s: float = Field(3.0, ge=0.0, description="condition must hold this long to alarm")
    gap_tolerance_s: float = Field(
        2.0, ge=0.0, description="missed detections shorter than this do not end the condition"
    )
    rearm_after_s: float | None = Field(
        None,
        ge=0.0,
        description="re-arm after the condition was absent this long (recorded); null: only when cleared",
    )
    sample_fps: float | None = Field(
        None,
        gt=0.0,
        le=30.0,
        description="frames analysed per second; null = the scene's default (1, the extinguisher 1/60)",
    )
    schedule: list[TimeWindow] = Field(default_factory=list, description="active windows; none = always")
    tags: FeatureTags = Field(default_factory=lambda: FeatureTags())
    scene_tag: str | None = Field(None, description="free scene tag shown with alarms")
    params: dict[str, Any] = Field(default_factory=dict, description="scene-specific parameters")

    @field_validator("input_size")
    @classmethod
    def _valid_input_size(cls, size: str | tuple[int, int]) -> str | tuple[int, int]:
        # A model with a stride above 32 is checked again when it loads (the detector knows its card).
        if isinstance(size, tuple) and not all(0 < v <= 4096 and v % 32 == 0 for v in size):
            raise ValueError(
                f"input_size [{size[0]}, {size[1]}]: width and height must be multiples of 32 "
                "(the model's largest stride), at most 4096, e.g. [640, 352]; or use auto / card"
            )
        return size

    @model_validator(mode="after")
    def _unique_regions(self) -> SceneConfig:
        names = [r.name for r in self.regions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"region names must be unique within a scene: {', '.join(dupes)}")
        return self

    @property
    def rate(self) -> float:
        """Frames per second this scene analyses."""
        if self.sample_fps is not None:
            return self.sample_fps
        info = CATALOGUE.get(self.scene)
        return info.sample_fps if info else 1.0

    def active(self, moment: dt.datetime) -> bool:
        return not self.schedule or any(w.contains(moment) for w in self.schedule)
