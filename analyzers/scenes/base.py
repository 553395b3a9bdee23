"""Scene protocol and the rule engine every scene shares.

A scene turns each analysed frame into observations: for a region (count scenes) or for a tracked
target inside a region (per-person scenes), is the alarm condition present, and how confident is
it. A ``Hold`` per observation key then applies the standard's rule: the condition must last the
minimum duration (short gaps bridged), and the evidence accumulated over the event (its score, the
mean confidence weighted for flame and smoke by how the contour grows, times its duration) must
reach the alarm threshold over the minimum duration; then the event raises one alarm that stays
latched until a person clears it or a configured quiet period re-arms it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import supervision as sv
from pydantic import BaseModel, ConfigDict

from analyzers.records import AlarmEvent, Detection, Pose
from analyzers.scenes.catalogue import register
from analyzers.scenes.settings import SceneConfig
from analyzers.tracking import Tracker
from analyzers.zones import Region

WHOLE_FRAME = Region("frame", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])
STALE_TARGET_S = 60.0  # a target unseen this long is forgotten
# Detections below this never reach a scene (the camera runner and `vigil eval` both ask the
# detector for this floor); each scene applies its own, higher threshold.
DETECTION_FLOOR = 0.25
DEFAULT_DETECTION_THRESHOLD = 0.35  # where neither the camera-scene nor the model card sets one


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Frame:
    """What a scene sees of one analysed frame."""

    ts: float
    width: int
    height: int
    detections: Sequence[Detection]  # the scene's labels, thresholded, outside exclusions (tracked if asked)
    image: np.ndarray | None = None
    poses: Sequence[Pose] = ()


@dataclass(frozen=True)
class Observation:
    """The condition for one key (a region, or a target in a region) in one frame."""

    region: str
    active: bool
    score: float = 1.0
    target: str | None = None
    detections: tuple[Detection, ...] = ()
    size: float | None = None  # e.g. flame area: growth between frames raises the score
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.region if self.target is None else f"{self.region}#{self.target}"


@dataclass
class Hold:
    """How long one key's condition has held, with gaps shorter than the tolerance bridged."""

    since: float | None = None
    last_true: float | None = None
    last_seen: float = 0.0
    latched: bool = False  # an alarm is open for this key: one alarm per event
    cleared_since: float | None = None
    rearmed_after_quiet: float | None = None
    scores: list[float] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)
    peak: int = 0

    def reset(self) -> None:
        self.since = self.last_true = None
        self.scores.clear()
        self.sizes.clear()
        self.peak = 0

    def growth(self) -> float:
        """Share of frame-to-frame steps in which the size grew (0..1); 0 without sizes."""
        steps = list(zip(self.sizes, self.sizes[1:], strict=False))
        return sum(1 for a, b in steps if b > a * 1.02) / len(steps) if steps else 0.0


class Scene(ABC):
    """Consumes one camera's analysed frames over time and emits alarm events."""

    # What a scene declares about itself; a class that sets its own ``key`` registers (catalogue.py).
    key: ClassVar[str]
    name_zh: ClassVar[str] = ""
    name_en: ClassVar[str] = ""
    sample_fps: ClassVar[float] = 1.0  # default sampling rate (frames/s)
    alarm_types: ClassVar[tuple[str, ...]] = ()  # alarm type codes (config/alarm_types.yaml); () = key
    order: ClassVar[int] = 1000  # position in DESIGN.md's scene table (the catalogue's order)
    Params: ClassVar[type[BaseModel]] = NoParams  # parameters: Field titles/descriptions label them
    labels: ClassVar[frozenset[str]] = frozenset({"person"})  # detector classes the scene reads
    default_model: ClassVar[str] = "yolox_nano"
    uses_pose: ClassVar[bool] = False
    tracked: ClassVar[bool] = False  # per-target scenes track their detections
    anchor: ClassVar[sv.Position] = sv.Position.BOTTOM_CENTER  # people: their feet
    growth_weight: ClassVar[float] = 0.0  # flame/smoke: part of the score that comes from growth
    # A classifier card (family classifier) runs on this part (analyzers.crops): head, torso
    # or person of each person the person model finds, or frame/grid/scan regions of the frame.
    classifier_crop: ClassVar[str | None] = None
    person_model: ClassVar[str] = "yolox_nano"
    # Detectors read beside the scene's model, with the labels taken from each, merged with the
    # model's own detections (a phone detector's scene also needs the people the COCO model finds).
    extra_models: ClassVar[dict[str, tuple[str, ...]]] = {}
    # `vigil eval --scene`: the classes it reports, each with the detector labels that count as it.
    eval_classes: ClassVar[dict[str, tuple[str, ...]]] = {"person": ("person",)}
    # Scenes that match crops against a plant's enrolled examples (analyzers.enrolment) name the part
    # their examples show (analyzers.crops: torso, person, scan); None: the scene takes no enrolment.
    enrol_part: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "key" in cls.__dict__:
            register(cls)

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        self.camera_id = camera_id
        self.config = config
        self.params: Any = self.Params.model_validate(config.params)
        self.regions = [Region(r.name, r.polygon) for r in config.regions] or [WHOLE_FRAME]
        self.exclusions = [Region(r.name, r.polygon) for r in config.exclusions]
        # The regions analysed now (None = all): the plant context narrows them to those of the PTZ
        # preset the camera is at (gateway/cameras/scene_gate.py).
        self.active_regions: frozenset[str] | None = None
        self.holds: dict[str, Hold] = {}
        self.tracker = Tracker(fps=config.rate) if self.tracked else None
        self.last_ts: float | None = None
        self.card_thresholds: dict[str, float] = {}

    @property
    def model_name(self) -> str:
        return self.config.model or self.default_model

    def wanted_labels(self) -> frozenset[str]:
        """Detector labels this scene reads (scenes with configurable classes override it)."""
        return self.labels

    def waiting_for(self) -> str | None:
        """What the running scene still lacks to judge (the camera shows it as the scene's status,
        e.g. "no uniform enrolled: ..."); None when it judges."""
        return None

    def use_card_thresholds(self, thresholds: dict[str, float]) -> None:
        """The model card's per-class thresholds (chosen at training on a hold-out of the training
        data); they apply where the camera-scene sets no ``detection_threshold`` of its own."""
        self.card_thresholds.update(thresholds)

    def threshold_for(self, label: str) -> float:
        if self.config.detection_threshold is not None:
            return self.config.detection_threshold
        return self.card_thresholds.get(label, DEFAULT_DETECTION_THRESHOLD)

    @property
    def base_threshold(self) -> float:
        """The lowest threshold any of the scene's labels is held to (a floor for people)."""
        if self.config.detection_threshold is not None:
            return self.config.detection_threshold
        return min([DEFAULT_DETECTION_THRESHOLD, *self.card_thresholds.values()])

    def track(self, detections: list[Detection]) -> list[Detection]:
        """Track ids for the frame's detections (per-target scenes); the rest pass through."""
        return self.tracker.update(detections) if self.tracker is not None else detections

    def due(self, ts: float) -> bool:
        """Whether this frame is the scene's to analyse at its own sampling rate."""
        return self.last_ts is None or ts - self.last_ts >= 0.95 / self.config.rate or ts < self.last_ts

    def relevant(self, detections: Sequence[Detection], width: int, height: int) -> list[Detection]:
        """Detections of the scene's labels above the detection threshold, outside exclusions."""
        labels = self.wanted_labels()
        kept = [d for d in detections if d.label in labels and d.score >= self.threshold_for(d.label)]
        for region in self.exclusions:
            excluded = {id(d) for d in region.inside(kept, width, height, self.anchor)}
            kept = [d for d in kept if id(d) not in excluded]
        return kept

    def latch(self, key: str) -> None:
        """An alarm is open for this key (at start-up, from the database)."""
        self.holds.setdefault(key, Hold()).latched = True

    def rearm(self, key: str) -> None:
        """A person cleared the key's alarm: the next event may raise a new one."""
        hold = self.holds.get(key)
        if hold is not None:
            hold.latched = False
            hold.reset()

    def update(
        self,
        ts: float,
        detections: Sequence[Detection],
        width: int,
        height: int,
        image: np.ndarray | None = None,
        poses: Sequence[Pose] = (),
    ) -> list[AlarmEvent]:
        # The camera runner claims frames (sets last_ts) before their answers come back; never move
        # the clock back to an older frame here.
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        if not self.config.active(dt.datetime.fromtimestamp(ts)):
            for hold in self.holds.values():
                hold.reset()
            return []
        kept = self.relevant(detections, width, height)
        kept = self.track(kept)
        frame = Frame(ts, width, height, kept, image, poses)
        events = []
        seen = set()
        for region in self.regions:
            if self.active_regions is not None and region.name not in self.active_regions:
                continue  # drawn at another PTZ preset: its holds step as absent below
            inside = region.inside(kept, width, height, self.anchor)
            for obs in self.observe(region.name, inside, frame):
                seen.add(obs.key)
                event = self._step(obs, ts)
                if event is not None:
                    events.append(event)
        for key, hold in list(self.holds.items()):
            if key in seen:
                continue
            if "#" in key and ts - hold.last_seen > STALE_TARGET_S:
                del self.holds[key]  # the target left long ago
                continue
            region_name, _, target = key.partition("#")
            self._step(Observation(region_name, active=False, target=target or None), ts)
        return events

    @abstractmethod
    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        """The condition in one region for this frame: one observation, or one per target."""

    @abstractmethod
    def describe(self, obs: Observation, hold: Hold) -> str:
        """One-line alarm message."""

    def _step(self, obs: Observation, ts: float) -> AlarmEvent | None:
        hold = self.holds.setdefault(obs.key, Hold())
        cfg = self.config
        # At 1 frame/min a frame-to-frame gap is 60 s: never shorter than one and a half sample periods.
        gap = max(cfg.gap_tolerance_s, 1.5 / cfg.rate)
        hold.last_seen = ts if obs.active or obs.detections else hold.last_seen
        if not obs.active:
            if hold.cleared_since is None:
                hold.cleared_since = ts
            if hold.last_true is not None and ts - hold.last_true > gap:
                hold.reset()
            if (
                hold.latched
                and cfg.rearm_after_s is not None
                and ts - hold.cleared_since >= cfg.rearm_after_s
            ):
                hold.latched = False  # quiet long enough: re-armed, and the next alarm says so
                hold.rearmed_after_quiet = ts - hold.cleared_since
            return None
        hold.cleared_since = None
        if hold.since is None or (hold.last_true is not None and ts - hold.last_true > gap):
            hold.reset()
            hold.since = ts
        hold.last_true = ts
        hold.scores.append(obs.score)
        if obs.size is not None:
            hold.sizes.append(obs.size)
        hold.peak = max(hold.peak, len(obs.detections))
        if hold.latched or ts - hold.since < cfg.min_duration_s:
            return None
        # Evidence accumulates over time: score x (duration + one sample period) must reach what the
        # alarm threshold asks over the minimum duration. A confident detection alarms at the minimum
        # duration; a weaker one has to last proportionally longer.
        period = 1.0 / cfg.rate
        duration = ts - hold.since
        score = self.score(hold)
        if score * (duration + period) < cfg.alarm_threshold * (cfg.min_duration_s + period):
            return None
        hold.latched = True
        details: dict[str, Any] = {
            "duration_s": round(duration, 2),
            "people": len(obs.detections),
            "peak": hold.peak,
            **obs.details,
            # the settings the message quotes (threshold, rated people...), for wording it in any language
            "scene_params": {
                k: v for k, v in self.params.model_dump().items() if isinstance(v, int | float | str | bool)
            },
        }
        if hold.rearmed_after_quiet is not None:
            details["rearmed_after_quiet_s"] = round(hold.rearmed_after_quiet, 1)
            hold.rearmed_after_quiet = None
        return AlarmEvent(
            camera_id=self.camera_id,
            scene=self.key,
            region=obs.region,
            target=obs.target,
            occurred_at=hold.since,
            raised_at=ts,
            score=round(score, 4),
            message=self.describe(obs, hold),
            detections=obs.detections,
            details=details,
        )

    def score(self, hold: Hold) -> float:
        """Mean confidence over the event; scenes with a growth weight reward a growing contour."""
        mean = sum(hold.scores) / len(hold.scores)
        if not self.growth_weight:
            return mean
        return mean * ((1 - self.growth_weight) + self.growth_weight * hold.growth())


class RegionScene(Scene):
    """A scene whose condition is about what is in a region (counts, presence, absence)."""

    @abstractmethod
    def condition(self, inside: Sequence[Detection], frame: Frame) -> bool:
        """Whether the alarm condition holds in the region for this frame."""

    def observe(self, region: str, inside: Sequence[Detection], frame: Frame) -> list[Observation]:
        active = self.condition(inside, frame)
        score = sum(d.score for d in inside) / len(inside) if inside and self.score_by_confidence else 1.0
        return [Observation(region, active, score, detections=tuple(inside))]

    score_by_confidence: ClassVar[bool] = True  # absence scenes have no confidence to weigh
