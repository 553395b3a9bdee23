"""What the plant context says about one camera's scenes now: a scene pauses while its PTZ camera is
off the preset its regions were drawn at (or, without PTZ state, while the view has moved), and the
run state of the unit its camera or region belongs to decides whether an alarm is raised as usual,
suppressed (audited) or raised with another priority."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from analyzers.health import VideoDiagnosis
from analyzers.scenes.settings import SceneConfig
from gateway.cameras.ptz_gate import PtzGate
from gateway.config.schema import CameraConfig
from gateway.units.states import UnitStates


@dataclass(frozen=True)
class Verdict:
    """What to do with one alarm event of a scene."""

    action: Literal["run", "suppress", "raise"]
    priority: int | None = None
    unit: str | None = None
    state: str | None = None


RUN = Verdict("run")


class SceneGate:
    def __init__(
        self,
        camera: CameraConfig,
        units: UnitStates | None,
        ptz: PtzGate | None,
        diagnosis: VideoDiagnosis | None,
    ) -> None:
        self.camera = camera
        self.units = units
        self.ptz = ptz
        self.diagnosis = diagnosis

    @property
    def version(self) -> int:
        """Grows whenever a unit state changes (the verdicts may differ now)."""
        return self.units.version if self.units is not None else 0

    def paused(self, scene: SceneConfig, now: float | None = None) -> str | None:
        """Why the scene must not run on this frame, or None."""
        return self.plan(scene, now)[1]

    def plan(self, scene: SceneConfig, now: float | None = None) -> tuple[frozenset[str] | None, str | None]:
        """(the scene's regions to analyse now, None = all; why the scene pauses, or None). A region
        belongs to its own preset, else to the scene's; one with neither is analysed at every view."""
        if not scene.regions:
            return None, None  # a whole-frame scene does not depend on where the camera looks
        now = time.time() if now is None else now
        presets = {r.name: r.preset or scene.preset for r in scene.regions}
        wanted = sorted({p for p in presets.values() if p is not None})
        if wanted and self.ptz is not None:
            if self.ptz.waiting(now):
                return None, f"paused: waiting for the camera's PTZ position (preset {', '.join(wanted)})"
            at, why = self.ptz.settled_at(wanted, now)
            if at is not None or why is not None:  # the PTZ state decides
                regions = frozenset(n for n, p in presets.items() if p is None or p == at)
                if not regions:
                    return None, why
                return (None if len(regions) == len(presets) else regions), None
        if self.diagnosis is not None and self.diagnosis.view_moved():
            return None, "paused: the view does not match the reference picture (camera moved)"
        return None, None

    def unit_of(self, scene: SceneConfig, region: str) -> str | None:
        for r in scene.regions:
            if r.name == region and r.unit is not None:
                return r.unit
        return self.camera.unit

    def verdict(self, scene: SceneConfig, region: str) -> Verdict:
        """The rule of the scene for the state of the unit the event's region (or camera) belongs to."""
        if self.units is None or not scene.unit_rules:
            return RUN
        unit = self.unit_of(scene, region)
        state = self.units.state(unit)
        if unit is None or state is None:
            return RUN
        rule = scene.unit_rules.get(state)  # type: ignore[call-overload]
        if rule is None or rule.action == "run":
            return Verdict("run", None, unit, state)
        return Verdict(rule.action, rule.priority, unit, state)

    def state_text(self) -> str | None:
        """ "unit: state" of the camera's unit, for the scene status."""
        if self.units is None or self.camera.unit is None:
            return None
        return f"{self.camera.unit}: {self.units.state(self.camera.unit)}"
