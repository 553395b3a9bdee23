"""The plant context of each camera runner, in one object the runner calls at four points: every
decoded frame goes to the video diagnosis; a scene paused by the PTZ preset or a moved view is not
analysed; the frame the models see may be enhanced; and each alarm event passes the unit rules
(suppressed ones are audited, qualified ones raised with the rule's priority).

``PlantContext`` (one per gateway) builds a ``CameraContext`` per started camera from the video
diagnosis service, the unit states and the ONVIF PTZ state."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from adapters import Frame
from analyzers import AlarmEvent, Scene
from analyzers.enhance import enhance
from gateway.alarms.recorder import SceneContext
from gateway.cameras.health import CameraHealth
from gateway.cameras.ptz_gate import PtzGate
from gateway.cameras.scene_gate import SceneGate
from gateway.config.schema import CameraConfig
from gateway.units.states import UnitStates

log = logging.getLogger(__name__)


class _Run(Protocol):
    scene: Scene
    ctx: SceneContext
    status: str


class CameraContext:
    def __init__(self, camera: CameraConfig, gate: SceneGate, health: CameraHealth | None) -> None:
        self.camera = camera
        self.gate = gate
        self.health = health
        self.paused: dict[str, str] = {}  # scene key -> why it is paused now
        self._suppressed: dict[str, set[str]] = {}  # scene key -> hold keys latched by a suppressed event
        self._version = gate.version
        self._lock = threading.Lock()

    def offer(self, frame: Frame) -> None:
        """Every decoded frame (source thread): the video diagnosis measures it when due."""
        if self.gate.diagnosis is not None:
            self.gate.diagnosis.offer(frame.image, frame.ts)

    def runnable(self, run: _Run, ts: float) -> bool:
        """Whether the scene may analyse this frame (not paused by the PTZ preset or a moved view); the
        scene analyses only the regions of the preset the camera is at."""
        regions, reason = self.gate.plan(run.scene.config, ts)
        run.scene.active_regions = regions
        key = run.scene.key
        if reason is None:
            if self.paused.pop(key, None) is not None:
                log.info("camera %s scene %s resumed", self.camera.id, key)
            return True
        if self.paused.get(key) != reason:
            log.info("camera %s scene %s %s", self.camera.id, key, reason)
        self.paused[key] = reason
        return False

    def image(self, frame: Frame) -> np.ndarray:
        """What the models see: the frame after the camera's enhancement steps."""
        settings = self.camera.enhance
        return enhance(frame.image, settings) if settings.active else frame.image

    def evidence(self, frame: Frame, seen: np.ndarray) -> np.ndarray:
        return seen if self.camera.enhance.in_evidence else frame.image

    def status(self, scene_key: str, status: str) -> str:
        """A scene's status with what the plant context does to it now."""
        paused = self.paused.get(scene_key)
        if paused is not None:
            return paused
        config = next((c for c in self.camera.scenes if c.scene == scene_key), None)
        if config is None:
            return status
        verdict = self.gate.verdict(config, "")
        if verdict.action == "suppress":
            return f"{status}; alarms suppressed while unit {verdict.unit} is {verdict.state}"
        if verdict.action == "raise":
            return f"{status}; priority {verdict.priority} while unit {verdict.unit} is {verdict.state}"
        return status

    def alarm_context(self, run: _Run, event: AlarmEvent) -> SceneContext | None:
        """The context to record the event with, or None when a unit state suppresses it (audited)."""
        verdict = self.gate.verdict(run.scene.config, event.region)
        if verdict.action == "run" or verdict.unit is None or verdict.state is None:
            return run.ctx
        units = self.gate.units
        assert units is not None
        details: dict[str, Any] = {"message": event.message, "score": round(event.score, 4)}
        if verdict.action == "suppress":
            with self._lock:
                self._suppressed.setdefault(run.scene.key, set()).add(event.hold_key)
            units.audit_alarm(
                "suppressed",
                verdict.unit,
                verdict.state,
                self.camera.id,
                run.scene.key,
                event.region,
                details,
            )
            log.info(
                "camera %s scene %s: alarm suppressed while unit %s is %s",
                self.camera.id,
                run.scene.key,
                verdict.unit,
                verdict.state,
            )
            return None
        details["priority"] = [run.ctx.priority, verdict.priority]
        units.audit_alarm(
            "qualified", verdict.unit, verdict.state, self.camera.id, run.scene.key, event.region, details
        )
        return dataclasses.replace(run.ctx, priority=verdict.priority if verdict.priority is not None else 2)

    def on_state_change(self, runs: list[Any]) -> None:
        """Re-arm the holds that suppressed events latched, on every scene (called per rules pass)."""
        version = self.gate.version
        with self._lock:
            if version == self._version:
                return
            self._version = version
            suppressed, self._suppressed = self._suppressed, {}
        for run in runs:
            for key in suppressed.get(run.scene.key, ()):
                run.scene.rearm(key)


class PlantContext:
    """Builds each camera runner's context (one per gateway)."""

    def __init__(
        self,
        health: CameraHealth | None,
        units: UnitStates | None,
        ptz_state: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.health = health
        self.units = units
        self.ptz_state = ptz_state  # camera id -> its PTZ status now

    def context_for(self, camera: CameraConfig) -> CameraContext:
        diagnosis = self.health.attach(camera) if self.health is not None else None
        ptz = None
        if camera.ptz.presets:
            reader = self.ptz_state
            ptz = PtzGate(camera.ptz, (lambda: reader(camera.id)) if reader is not None else None)
        return CameraContext(camera, SceneGate(camera, self.units, ptz, diagnosis), self.health)

    def forget(self, camera_id: str) -> None:
        if self.health is not None:
            self.health.detach(camera_id)

    def stop(self) -> None:
        if self.health is not None:
            self.health.stop()


def plant_view(
    unit_id: str | None, camera_id: str, units: UnitStates | None, health: CameraHealth | None
) -> dict[str, Any]:
    """What the camera list shows of a camera's plant context: its unit with the unit's run state (zh/en)
    and the video diagnosis faults raised now (None when it is not diagnosed: not running)."""
    unit = units.get(unit_id) if units is not None and unit_id is not None else None
    return {
        "unit": unit.json() if unit is not None else ({"id": unit_id} if unit_id else None),
        "diagnosis": health.state(camera_id) if health is not None else None,
    }
