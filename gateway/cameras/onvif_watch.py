"""Live ONVIF state of the configured cameras: PTZ position and the latest device events.

For every ONVIF source (``sources: [{id, kind: onvif, address, username, password_env}]``) that enabled
cameras name, one asyncio task keeps an ``OnvifClient`` open. Each camera is matched to the device's
media profile whose stream URI is the camera's ``url`` (else the main profile). Every ``ptz_interval_s``
the task reads the PTZ status of the cameras whose profile has PTZ; in between it long-polls a PullPoint
event subscription when the device offers events (started last: some cameras slow down once events
start). Errors are kept per camera as text (the client's messages name the device, never the password)
and the task reconnects with exponential backoff.

Events of a source go to every camera of that source: an NVR's per-channel attribution is not done yet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from adapters.onvif import OnvifClient, OnvifError, OnvifEvent
from gateway.config.schema import CameraConfig, GatewayConfig, SourceConfig

log = logging.getLogger(__name__)

EVENTS_KEPT = 20


class _HasConfig(Protocol):
    config: GatewayConfig


class _CameraState:
    def __init__(self) -> None:
        self.ptz: dict[str, Any] | None = None
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=EVENTS_KEPT)
        self.error: str | None = None
        self.connected = False
        self.events_supported: bool | None = None
        self.profile: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "ptz": dict(self.ptz) if self.ptz is not None else None,
            "events": list(self.events),
            "error": self.error,
            "connected": self.connected,
            "events_supported": self.events_supported,
            "profile": self.profile,
        }


def split_address(address: str, default_port: int = 80) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` (a URL is accepted too) -> (host, port)."""
    text = address.strip()
    parts = urlsplit(text if "//" in text else f"//{text}")
    if not parts.hostname:
        raise ValueError(f"no host in address {address!r}")
    return parts.hostname, parts.port or default_port


class OnvifWatcher:
    """``await watcher.start()`` on the gateway's event loop, ``await watcher.stop()`` at shutdown."""

    def __init__(
        self,
        gateway: _HasConfig,
        *,
        ptz_interval_s: float = 5.0,
        backoff_s: tuple[float, float] = (1.0, 60.0),
        timeout_s: float = 10.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = gateway.config
        self.ptz_interval_s = ptz_interval_s
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._environ = os.environ if environ is None else environ
        self._states: dict[str, _CameraState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        sources = {s.id: s for s in self.config.sources if s.kind == "onvif"}
        self._plan: dict[str, tuple[SourceConfig, list[CameraConfig]]] = {}
        for cam in self.config.cameras:
            if cam.enabled and cam.source in sources:
                source = sources[cam.source]
                self._plan.setdefault(source.id, (source, []))[1].append(cam)
                self._states[cam.id] = _CameraState()

    def source_of(self, camera_id: str) -> SourceConfig | None:
        """The ONVIF source of a watched camera (an enabled camera on a ``kind: onvif`` source)."""
        for source, cameras in self._plan.values():
            if any(cam.id == camera_id for cam in cameras):
                return source
        return None

    def camera(self, camera_id: str) -> CameraConfig | None:
        for _, cameras in self._plan.values():
            for cam in cameras:
                if cam.id == camera_id:
                    return cam
        return None

    def client_for(self, source: SourceConfig) -> OnvifClient:
        """A new (not yet connected) client of an ONVIF source, with its password from the environment."""
        if not source.address:
            raise OnvifError(f"ONVIF source {source.id} has no address: set address: host[:port]")
        try:
            host, port = split_address(source.address)
        except ValueError as exc:
            raise OnvifError(f"ONVIF source {source.id}: {exc}") from exc
        password = self._environ.get(source.password_env) if source.password_env else ""
        if password is None:
            raise OnvifError(f"ONVIF source {source.id}: {source.password_env} is not set")
        return OnvifClient(host, port, source.username or "", password, timeout_s=self.timeout_s)

    async def ptz_profile(self, client: OnvifClient, camera: CameraConfig) -> str | None:
        """The token of the camera's PTZ profile (as the watch matched it, else matched now)."""
        state = self._states.get(camera.id)
        if state is not None and state.profile:
            return state.profile
        return (await self._match_profiles(client, [camera])).get(camera.id)

    def state(self, camera_id: str) -> dict[str, Any] | None:
        """The camera's ONVIF state, or None when the camera is not on an ONVIF source."""
        state = self._states.get(camera_id)
        return state.json() if state is not None else None

    async def start(self) -> None:
        for source_id, (source, cameras) in self._plan.items():
            if source_id not in self._tasks:
                self._tasks[source_id] = asyncio.create_task(
                    self._watch(source, cameras), name=f"onvif-watch-{source_id}"
                )

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- one source -----------------------------------------------------------------------------------

    async def _watch(self, source: SourceConfig, cameras: list[CameraConfig]) -> None:
        delay = self.backoff_s[0]
        while True:
            password = self._environ.get(source.password_env) if source.password_env else ""
            try:
                await self._session(source, cameras, password)
            except asyncio.CancelledError:
                raise
            except OnvifError as exc:
                message = str(exc)
            except Exception as exc:  # keep watching whatever happens; the message says what it was
                message = f"unexpected error: {type(exc).__name__}: {exc}"
            if any(self._states[cam.id].connected for cam in cameras):
                delay = self.backoff_s[0]  # it was working: the first retry comes soon again
            if password:
                message = message.replace(password, "***")
            self._fail(source, cameras, message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_s[1])

    def _fail(self, source: SourceConfig, cameras: list[CameraConfig], message: str) -> None:
        log.warning("ONVIF source %s: %s (retrying)", source.id, message)
        for cam in cameras:
            state = self._states[cam.id]
            state.error, state.connected = message, False

    async def _session(self, source: SourceConfig, cameras: list[CameraConfig], password: str | None) -> None:
        async with self.client_for(source) as client:
            tokens = await self._match_profiles(client, cameras)
            events = None
            if await client.events_supported():
                events = client.pullpoint(pull_timeout=dt.timedelta(seconds=self.ptz_interval_s))
                await events.start()
            for cam in cameras:
                state = self._states[cam.id]
                state.error, state.connected = None, True
                state.events_supported = events is not None
                state.profile = tokens.get(cam.id)
            loop = asyncio.get_running_loop()
            while True:
                next_ptz = loop.time() + self.ptz_interval_s
                await self._poll_ptz(client, cameras, tokens)
                while (left := next_ptz - loop.time()) > 0:
                    if events is None:
                        await asyncio.sleep(left)
                    else:
                        self._record(cameras, await events.pull(dt.timedelta(seconds=left)))

    async def _match_profiles(self, client: OnvifClient, cameras: list[CameraConfig]) -> dict[str, str]:
        """camera id -> token of its PTZ-capable profile (the one streaming its url, else the main one)."""
        profiles = await client.profiles()
        if not any(p.has_ptz for p in profiles):
            return {}
        by_uri: dict[str, str] = {}
        for profile in profiles:
            with contextlib.suppress(OnvifError):
                by_uri[_uri_key(await client.stream_uri(profile.token))] = profile.token
        main = max(profiles, key=lambda p: p.pixels)
        has_ptz = {p.token for p in profiles if p.has_ptz}
        tokens = {cam.id: by_uri.get(_uri_key(cam.url), main.token) for cam in cameras}
        return {cam: token for cam, token in tokens.items() if token in has_ptz}

    async def _poll_ptz(
        self, client: OnvifClient, cameras: list[CameraConfig], tokens: dict[str, str]
    ) -> None:
        for cam in cameras:
            token = tokens.get(cam.id)
            if token is None:
                continue
            status = await client.ptz_status(token)
            self._states[cam.id].ptz = (
                None
                if status is None
                else {
                    "pan": status.pan,
                    "tilt": status.tilt,
                    "zoom": status.zoom,
                    "moving": "MOVING" in (status.pan_tilt_move, status.zoom_move),
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                }
            )

    def _record(self, cameras: list[CameraConfig], events: list[OnvifEvent]) -> None:
        for event in events:
            record = event.to_json()
            record["is_motion"] = event.is_motion
            for cam in cameras:
                self._states[cam.id].events.append(record)


def _uri_key(uri: str) -> str:
    """A stream URI without credentials, for matching a camera's url to a profile."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2].lower()
    return f"{parts.scheme.lower()}://{host}{parts.path}?{parts.query}"
