"""How alarms are raised, merged and escalated (the ``alarms:`` block of the gateway config).

- ``defaults`` / ``scenes.<scene>``: per camera-scene repeat rules. One alarm per person/target per
  event: a new event of the same camera-scene whose target is within ``merge_distance`` (a share of
  the frame's diagonal) of an alarm raised less than ``merge_window_s`` ago is merged into it (a
  re-acquired track is the same person). ``cooldown_s``: after an alarm, further events of the same
  camera-scene are merged into it for this long. ``flood_alarms`` in ``flood_minutes``: more alarms
  than that raise one flood alarm, and the camera-scene's next events are merged into it (counted)
  until it has been quiet for ``flood_minutes``. ``clip``: keep a video clip of the alarm.
- ``escalation``: steps that push an alarm not confirmed within ``unconfirmed_s`` seconds, or not
  disposed within ``undisposed_min`` minutes, to further people (the camera's recipients with the
  given roles) and targets (of the given tiers); each step is recorded as an alarm revision.
"""

from __future__ import annotations

import sys

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analyzers.scenes import CATALOGUE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenePolicy(_Strict):
    """Repeat rules of one scene; a field left out takes the value of ``alarms.defaults``."""

    cooldown_s: float | None = Field(
        None, ge=0, le=86400, description="after an alarm, merge the camera-scene's events into it this long"
    )
    merge_distance: float | None = Field(
        None, ge=0, le=1, description="a new target this close (share of the frame diagonal) is the same one"
    )
    merge_window_s: float | None = Field(
        None, ge=0, le=86400, description="how long after an alarm a nearby target is still the same one"
    )
    flood_alarms: int | None = Field(
        None, ge=1, le=10000, description="more alarms than this in flood_minutes raise one flood alarm"
    )
    flood_minutes: float | None = Field(None, gt=0, le=1440, description="the flood guard's window")
    clip: bool | None = Field(None, description="keep a video clip around each alarm")


class ResolvedPolicy(_Strict):
    cooldown_s: float = 60.0
    merge_distance: float = 0.15
    merge_window_s: float = 300.0
    flood_alarms: int = 10
    flood_minutes: float = 10.0
    clip: bool = False


class EscalationStep(_Strict):
    """One escalation step; the steps of an alarm's scene and priority apply in the order listed."""

    scenes: list[str] = Field(default_factory=list, description="scenes this step applies to; empty = all")
    priorities: list[int] = Field(
        default_factory=list, description="alarm priorities (0-4) it applies to; empty = all"
    )
    unconfirmed_s: float | None = Field(
        None, gt=0, description="escalate when not confirmed or rejected this many seconds after raising"
    )
    undisposed_min: float | None = Field(
        None,
        gt=0,
        description="escalate when a confirmed alarm is not disposed this many minutes after raising",
    )
    roles: list[str] = Field(
        default_factory=list, description="push to the camera's recipients with these roles (e.g. 班组长)"
    )
    tiers: list[str] = Field(default_factory=list, description="push to the uplink targets of these tiers")

    @model_validator(mode="after")
    def _complete(self) -> EscalationStep:
        if (self.unconfirmed_s is None) == (self.undisposed_min is None):
            raise ValueError("an escalation step needs exactly one of unconfirmed_s or undisposed_min")
        if not self.roles and not self.tiers:
            raise ValueError("an escalation step needs roles or tiers to push to")
        if any(not 0 <= p <= 4 for p in self.priorities):
            raise ValueError("priorities are 0..4")
        return self

    def applies(self, scene: str, priority: int) -> bool:
        return (not self.scenes or scene in self.scenes) and (
            not self.priorities or priority in self.priorities
        )

    @property
    def due_s(self) -> float:
        return self.unconfirmed_s if self.unconfirmed_s is not None else (self.undisposed_min or 0) * 60


class AlarmPolicy(_Strict):
    defaults: ResolvedPolicy = Field(default_factory=lambda: ResolvedPolicy())
    scenes: dict[str, ScenePolicy] = Field(default_factory=dict, description="per scene key")
    escalation: list[EscalationStep] = Field(default_factory=list)
    escalation_check_s: float = Field(5.0, gt=0, le=600, description="how often open alarms are checked")

    @model_validator(mode="after")
    def _known_scenes(self) -> AlarmPolicy:
        unknown = sorted(set(self.scenes) - set(CATALOGUE))
        if unknown:
            known = ", ".join(sorted(CATALOGUE))
            raise ValueError(f"no scene {', '.join(unknown)} (in alarms.scenes); the scenes are {known}")
        return self

    @classmethod
    def none(cls) -> AlarmPolicy:
        """No repeat rules: every event with an event key of its own raises an alarm."""
        return cls(defaults=ResolvedPolicy(cooldown_s=0, merge_distance=0, flood_alarms=sys.maxsize))

    def for_scene(self, scene: str) -> ResolvedPolicy:
        override = self.scenes.get(scene)
        if override is None:
            return self.defaults
        return self.defaults.model_copy(update=override.model_dump(exclude_none=True))
