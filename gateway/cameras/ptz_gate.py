"""Region scenes of a PTZ camera belong to a preset: while the camera is elsewhere (or moving) they
pause, and resume ``settle_s`` after it is back. The position comes from the ONVIF PTZ status the
gateway polls (gateway/cameras/onvif_watch.py); where there is none, the video diagnosis's moved-view
check (the picture no longer matches the reference) pauses the region scenes instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
        return self.settled_at([preset_name], now)[1]

    def settled_at(self, names: Sequence[str], now: float) -> tuple[str | None, str | None]:
        """The preset among ``names`` the camera has settled at, or (None, why it is at none of them);
        (None, None) when no PTZ state is known (the moved-view check decides then)."""
        presets = [p for p in (self.ptz.preset(n) for n in names) if p is not None]
        position = self.read() if self.read is not None else None
        if not presets or position is None:
            return None, None
        moving = bool(position.get("moving"))
        here = (
            None if moving else next((p for p in presets if at_preset(position, p, self.ptz.tolerance)), None)
        )
        for preset in presets:
            if preset is not here:
                self._back_since.pop(preset.name, None)
        if here is None:
            where = ", ".join(
                f"{a} {float(position[a]):.2f}"
                for a in ("pan", "tilt", "zoom")
                if position.get(a) is not None
            )
            state = "moving" if moving else f"at {where}"
            return None, f"paused: camera off preset {', '.join(p.name for p in presets)} ({state})"
        since = self._back_since.setdefault(here.name, now)
        if now - since < self.ptz.settle_s:
            return None, f"paused: camera back at preset {here.name}, settling"
        return here.name, None
