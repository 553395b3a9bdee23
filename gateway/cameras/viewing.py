"""Pictures of running cameras for people: snapshots and live view from the camera's own stream.

A running camera already holds one session to its main stream (its ``RtspSource``, or a GB/T 28181
channel's media session) and decodes it for the analysis. Viewers are served from that session instead of
opening their own: a snapshot is the last frame the camera's thread decoded, as JPEG (encoded once per
frame, whatever the number of viewers), and a live viewer subscribes to the camera's packet feed. Cameras
and NVRs allow few sessions, and every extra session costs the camera a connection and the gateway a
decode.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from adapters.gb28181.media import GbMediaSource, UnitFeed
from adapters.rtsp.packet_feed import PacketFeed
from gateway.alarms.recorder import jpeg
from gateway.cameras.analytics import Analytics, CameraRunner

SNAPSHOT_QUALITY = 85
FIRST_FRAME_WAIT_S = 10.0  # a camera that just started: how long a snapshot waits for its first frame


class NoPicture(Exception):
    """The camera runs but has no current picture; ``reason`` is its stream's last error (if any)."""

    def __init__(self, state: str, reason: str | None) -> None:
        super().__init__(reason or state)
        self.state = state
        self.reason = reason


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    taken_at: float  # epoch seconds the frame was decoded


def camera_feed(analytics: Analytics, camera_id: str) -> UnitFeed | None:
    """Where a running camera's access units can be subscribed to: an RTSP camera's packet feed (its
    source's tap), a played GB/T 28181 channel's media source; None when the camera does not run."""
    runner = analytics.runners.get(camera_id)
    if runner is None:
        return None
    tap = getattr(runner.source, "tap", None)
    if isinstance(tap, PacketFeed):
        return tap
    if isinstance(runner.source, GbMediaSource):  # its units arrive on its I/O thread
        return runner.source
    return None


class Snapshots:
    """The latest decoded frame of each running camera as JPEG, encoded at most once per frame."""

    def __init__(self, analytics: Analytics) -> None:
        self.analytics = analytics
        self._lock = threading.Lock()
        # camera id -> (the frame's wall and stream time, its JPEG)
        self._cache: dict[str, tuple[tuple[float, float], Snapshot]] = {}
        self.encoded = 0

    def running(self, camera_id: str) -> bool:
        return camera_id in self.analytics.runners

    def latest(self, camera_id: str, wait_s: float = FIRST_FRAME_WAIT_S) -> Snapshot | None:
        """The camera's current picture; None when the camera is not running here (blocking: call from
        a worker thread). Raises NoPicture when it runs but its stream is down, with the reason."""
        runner = self.analytics.runners.get(camera_id)
        if runner is None:
            return None
        deadline = time.monotonic() + wait_s
        while True:
            state = runner.health.state
            if state == "online" and runner.latest is not None:
                return self._encode(camera_id, runner)
            if state not in ("starting", "online") or time.monotonic() > deadline:
                raise NoPicture(state, runner.health.last_error)
            time.sleep(0.1)

    def _encode(self, camera_id: str, runner: CameraRunner) -> Snapshot:
        frame = runner.latest
        assert frame is not None
        key = (frame.ts, frame.pts)
        with self._lock:
            cached = self._cache.get(camera_id)
            if cached is not None and cached[0] == key:
                return cached[1]
        taken = runner.health.last_frame_at or time.time()
        shot = Snapshot(jpeg(frame.image, SNAPSHOT_QUALITY), taken)
        with self._lock:
            self._cache[camera_id] = (key, shot)
            self.encoded += 1
        return shot
