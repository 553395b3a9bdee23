"""Region scenes of a PTZ camera belong to a preset: while the camera is elsewhere (or moving) they
pause, and resume ``settle_s`` after it is back. The position comes from the ONVIF PTZ status the
gateway polls (gateway/cameras/onvif_watch.py); where there is none, the video diagnosis's moved-view
check (the picture no longer matches the reference) pauses the region scenes instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.plant import PresetConfig, PtzConfig

# The camera's PTZ status now ({pan, tilt, zoom, moving}), or None where there is none.
PtzReader = Callable[[], Mapping[str, Any] | None]
# A camera with presets waits this long for its first PTZ status before its scenes run without one.
FIRST_STATUS_WAIT_S = 30.0


def at_preset(position: Mapping[str, Any], preset: PresetConfig, tolerance: float) -> bool:
    """Whether a PTZ position is within ``tolerance`` of a preset on every axis it reports."""
    for axis in ("pan", "tilt", "zoom"):
        value = position.get(axis)
        if value is not None and abs(float(value) - getattr(preset, axis)) > tolerance:
            return False
    return True


class PtzGate:
    """Where one camera's PTZ head is relative to its presets."""

    def __init__(self, ptz: PtzConfig, read: PtzReader | None) -> None:
        self.ptz = ptz
        self.read = read
        self._back_since: dict[str, float] = {}  # preset -> when the camera was seen back at it
        self._first_asked: float | None = None
        self.seen = False  # a PTZ status has been read at least once

    def available(self) -> bool:
        """Whether the PTZ status decides (else the moved-view check does)."""
        return self.read is not None and self.read() is not None

    def waiting(self, now: float) -> bool:
        """The camera has presets and may report its position, but none was read yet: its region scenes
        wait (up to FIRST_STATUS_WAIT_S) rather than run on a view nobody knows."""
        if self.read is None or self.seen:
            return False
        if self.read() is not None:
            self.seen = True
            return False
        if self._first_asked is None:
            self._first_asked = now
        return now - self._first_asked < FIRST_STATUS_WAIT_S

    def off_preset(self, preset_name: str, now: float) -> str | None:
        """Why a scene drawn at ``preset_name`` must pause now, or None when the camera is there (or
        when no PTZ state is known: the moved-view check decides then)."""
        preset = self.ptz.preset(preset_name)
        position = self.read() if self.read is not None else None
        if preset is None or position is None:
            return None
        if position.get("moving") or not at_preset(position, preset, self.ptz.tolerance):
            self._back_since.pop(preset_name, None)
            where = ", ".join(
                f"{a} {float(position[a]):.2f}"
                for a in ("pan", "tilt", "zoom")
                if position.get(a) is not None
            )
            state = "moving" if position.get("moving") else f"at {where}"
            return f"paused: camera off preset {preset_name} ({state})"
        since = self._back_since.setdefault(preset_name, now)
        if now - since < self.ptz.settle_s:
            return f"paused: camera back at preset {preset_name}, settling"
        return None
