"""Scene protocol and the region-hold rule that count-based scenes share."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from analyzers.records import AlarmEvent, Detection
from analyzers.scenes.settings import SceneConfig
from analyzers.zones import Region

WHOLE_FRAME = Region("frame", [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)])


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class Hold:
    """How long a region's condition has held, with gaps shorter than the tolerance bridged."""

    since: float | None = None
    last_true: float | None = None
    latched: bool = False  # an alarm is open for this region: one alarm per event
    cleared_since: float | None = None
    scores: list[float] = field(default_factory=list)
    peak: int = 0

    def reset(self) -> None:
        self.since = self.last_true = None
        self.scores.clear()
        self.peak = 0


class Scene(ABC):
    """Consumes detections of one camera over time and emits alarm events."""

    key: ClassVar[str]
    Params: ClassVar[type[BaseModel]] = NoParams
    labels: ClassVar[frozenset[str]] = frozenset({"person"})

    def __init__(self, camera_id: str, config: SceneConfig) -> None:
        self.camera_id = camera_id
        self.config = config
        self.params: Any = self.Params.model_validate(config.params)
        self.regions = [Region(r.name, r.polygon) for r in config.regions] or [WHOLE_FRAME]
        self.exclusions = [Region(r.name, r.polygon) for r in config.exclusions]
        self.holds: dict[str, Hold] = {r.name: Hold() for r in self.regions}

    def relevant(self, detections: Sequence[Detection], width: int, height: int) -> list[Detection]:
        """Detections of the scene's labels above the detection threshold, outside exclusions."""
        kept = [
            d for d in detections if d.label in self.labels and d.score >= self.config.detection_threshold
        ]
        for region in self.exclusions:
            excluded = {id(d) for d in region.inside(kept, width, height)}
            kept = [d for d in kept if id(d) not in excluded]
        return kept

    def latch(self, region: str) -> None:
        """Mark a region as having an open alarm (at start-up, from the database)."""
        if region in self.holds:
            self.holds[region].latched = True

    def rearm(self, region: str) -> None:
        """A person cleared the region's alarm: the next event may raise a new one."""
        if region in self.holds:
            self.holds[region].latched = False
            self.holds[region].reset()

    def update(self, ts: float, detections: Sequence[Detection], width: int, height: int) -> list[AlarmEvent]:
        if not self.config.active(dt.datetime.fromtimestamp(ts)):
            for hold in self.holds.values():
                hold.reset()
            return []
        people = self.relevant(detections, width, height)
        events = []
        for region in self.regions:
            inside = region.inside(people, width, height)
            event = self._step(region.name, ts, inside)
            if event is not None:
                events.append(event)
        return events

    @abstractmethod
    def condition(self, inside: Sequence[Detection]) -> bool:
        """Whether the alarm condition holds in a region for this frame."""

    @abstractmethod
    def describe(self, region: str, hold: Hold) -> str:
        """One-line alarm message."""

    def _step(self, region: str, ts: float, inside: Sequence[Detection]) -> AlarmEvent | None:
        hold = self.holds[region]
        cfg = self.config
        if self.condition(inside):
            hold.cleared_since = None
            if hold.since is None or (
                hold.last_true is not None and ts - hold.last_true > cfg.gap_tolerance_s
            ):
                hold.reset()
                hold.since = ts
            hold.last_true = ts
            hold.scores.append(sum(d.score for d in inside) / len(inside) if inside else 1.0)
            hold.peak = max(hold.peak, len(inside))
        else:
            if hold.cleared_since is None:
                hold.cleared_since = ts
            if hold.last_true is not None and ts - hold.last_true > cfg.gap_tolerance_s:
                hold.reset()
            if (
                hold.latched
                and cfg.rearm_after_s is not None
                and ts - hold.cleared_since >= cfg.rearm_after_s
            ):
                hold.latched = False  # quiet period passed: re-armed (the event says so when it fires)
            return None
        if hold.latched or hold.since is None or ts - hold.since < cfg.min_duration_s:
            return None
        score = sum(hold.scores) / len(hold.scores)
        if score < cfg.alarm_threshold:
            return None
        hold.latched = True
        return AlarmEvent(
            camera_id=self.camera_id,
            scene=self.key,
            region=region,
            occurred_at=hold.since,
            raised_at=ts,
            score=round(score, 4),
            message=self.describe(region, hold),
            detections=tuple(inside),
            details={"duration_s": round(ts - hold.since, 2), "people": len(inside), "peak": hold.peak},
        )
