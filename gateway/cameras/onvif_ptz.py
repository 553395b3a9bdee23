"""PTZ control of ONVIF cameras with the actions and preset numbers of the GB/T 28181 PTZ API.

``POST /api/cameras/{id}/ptz`` takes the same body for both kinds of camera: a move (left, right, up,
down, the diagonals, zoom_in, zoom_out) runs as an ONVIF ContinuousMove until ``stop``; the speed
(0-255, zoom 0-15) becomes a velocity in the generic spaces (-1..1). GB/T 28181 presets are numbers
(1-255); ONVIF presets have tokens and names: preset N is the device's preset named ``N`` (set creates
it or overwrites it, goto and delete find it by that name, or by the token ``N``).

One short connection per command (the clock is measured each time: cameras drift), to the source the
camera is on (``sources: [{kind: onvif, address, username, password_env}]``).
"""

from __future__ import annotations

from typing import Any

from gateway.cameras.onvif_watch import OnvifWatcher

DIRECTIONS = {  # action -> (pan, tilt, zoom) signs; right/up and zoom in are positive
    "left": (-1, 0, 0),
    "right": (1, 0, 0),
    "up": (0, 1, 0),
    "down": (0, -1, 0),
    "upleft": (-1, 1, 0),
    "upright": (1, 1, 0),
    "downleft": (-1, -1, 0),
    "downright": (1, -1, 0),
    "zoom_in": (0, 0, 1),
    "zoom_out": (0, 0, -1),
}


class NotOnvif(LookupError):
    """The camera is not on an ONVIF source."""


def velocity(action: str, speed: int, zoom_speed: int) -> tuple[float, float, float]:
    """A move action and its GB speeds as ONVIF velocities (-1..1)."""
    pan, tilt, zoom = DIRECTIONS[action]
    return pan * speed / 255, tilt * speed / 255, zoom * zoom_speed / 15


class OnvifPtz:
    def __init__(self, watcher: OnvifWatcher) -> None:
        self.watcher = watcher

    def handles(self, camera_id: str) -> bool:
        return self.watcher.source_of(camera_id) is not None

    async def command(self, camera_id: str, action: str, speed: int, zoom_speed: int, preset: int) -> str:
        """Run one PTZ action; returns what was sent (e.g. ``ContinuousMove 0.50 0.00 0.00``).
        NotOnvif for another camera, OnvifError (the device's or the connection's) or ValueError."""
        source, camera = self.watcher.source_of(camera_id), self.watcher.camera(camera_id)
        if source is None or camera is None:
            raise NotOnvif(f"camera {camera_id} is not on an ONVIF source")
        if action.startswith("preset_") and not 1 <= preset <= 255:
            raise ValueError("preset is 1-255")
        async with self.watcher.client_for(source) as client:
            token = await self._profile(client, camera_id)
            if action == "stop":
                await client.stop(token)
                return "Stop"
            if action in DIRECTIONS:
                pan, tilt, zoom = velocity(action, speed, zoom_speed)
                await client.continuous_move(token, pan, tilt, zoom)
                return f"ContinuousMove {pan:.2f} {tilt:.2f} {zoom:.2f}"
            existing = _preset_token(await client.presets(token), preset)
            if action == "preset_set":
                made = await client.set_preset(token, str(preset), existing)
                return f"SetPreset {preset} ({made})"
            if existing is None:
                raise ValueError(f"camera {camera_id} has no preset {preset}; set it first")
            if action == "preset_goto":
                await client.goto_preset(token, existing)
                return f"GotoPreset {preset} ({existing})"
            if action == "preset_delete":
                await client.remove_preset(token, existing)
                return f"RemovePreset {preset} ({existing})"
        raise ValueError(f"unknown PTZ action {action!r}")

    async def presets(self, camera_id: str) -> list[dict[str, Any]]:
        """The camera's presets: ``{preset, token, name}`` (preset: the number it answers to, or None)."""
        source, camera = self.watcher.source_of(camera_id), self.watcher.camera(camera_id)
        if source is None or camera is None:
            raise NotOnvif(f"camera {camera_id} is not on an ONVIF source")
        async with self.watcher.client_for(source) as client:
            items = await client.presets(await self._profile(client, camera_id))
        return [{"preset": _number(token, name), "token": token, "name": name} for token, name in items]

    async def _profile(self, client: Any, camera_id: str) -> str:
        camera = self.watcher.camera(camera_id)
        assert camera is not None
        token = await self.watcher.ptz_profile(client, camera)
        if token is None:
            raise ValueError(f"camera {camera_id}: its ONVIF device has no PTZ on this camera's profile")
        return token


def _number(token: str, name: str) -> int | None:
    for text in (name, token):
        if text.strip().isdigit() and 1 <= int(text) <= 255:
            return int(text)
    return None


def _preset_token(items: list[tuple[str, str]], preset: int) -> str | None:
    return next((t for t, n in items if n.strip() == str(preset)), None) or next(
        (t for t, _ in items if t == str(preset)), None
    )
