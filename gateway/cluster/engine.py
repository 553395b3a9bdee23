"""Where cameras are analysed: the engine interface the gateway starts and stops cameras through.

``local`` (the default) runs every camera in the gateway process (``Analytics``: one thread pair per
camera, one inference worker per model), as a single machine always has. ``ray`` places each camera as
an actor on the analysis nodes of a Ray cluster (gateway.cluster.ray_engine, imported only then, so
that a single machine needs no Ray).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np

from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import AlarmRecorder
from gateway.cameras.analytics import Analytics
from gateway.config.schema import CameraConfig, GatewayConfig

log = logging.getLogger(__name__)

LOCAL_NODE = "local"


class CameraEngine(Protocol):
    name: str

    def start_camera(self, camera: CameraConfig, scene_ids: dict[str, int], open_keys: set[str]) -> None:
        """Start (or restart with a new configuration) one camera's analysis."""

    def stop_camera(self, camera_id: str) -> None:
        """Stop one camera's analysis (a no-op for a camera that does not run)."""

    def latest_image(self, camera_id: str) -> np.ndarray | None:
        """The camera's last decoded frame, where it runs."""

    def rearm(self, camera_id: str, scene: str, hold_key: str) -> None:
        """An alarm was cleared: its scene may raise the same event again."""

    def status(self) -> dict[str, Any]:
        """Each camera's node and state, and each node's load."""

    def rebalance(self) -> list[dict[str, Any]]:
        """Spread the cameras evenly over the live nodes; the moves made."""

    def stop(self) -> None:
        """The gateway stops."""


class LocalEngine:
    """Every camera in this process: today's single-machine gateway."""

    name = "local"

    def __init__(self, analytics: Analytics) -> None:
        self.analytics = analytics

    def start_camera(self, camera: CameraConfig, scene_ids: dict[str, int], open_keys: set[str]) -> None:
        self.analytics.start_camera(camera, scene_ids, open_keys)

    def stop_camera(self, camera_id: str) -> None:
        runner = self.analytics.pop_runner(camera_id)
        if runner is not None:
            runner.stop()

    def latest_image(self, camera_id: str) -> np.ndarray | None:
        return self.analytics.latest_image(camera_id)

    def rearm(self, camera_id: str, scene: str, hold_key: str) -> None:
        self.analytics.rearm(camera_id, scene, hold_key)

    def status(self) -> dict[str, Any]:
        runners = dict(self.analytics.runners)
        cameras = [
            {
                "camera_id": cam_id,
                "node_id": LOCAL_NODE,
                "state": "running" if runner.alive() else "stopped",
                "stream": runner.health.state,
                "frames_analysed": runner.stats.frames_analysed,
            }
            for cam_id, runner in sorted(runners.items())
        ]
        node = {"node_id": LOCAL_NODE, "address": "", "alive": True, "cameras": len(cameras)}
        return {"engine": self.name, "nodes": [node], "cameras": cameras}

    def rebalance(self) -> list[dict[str, Any]]:
        return []  # one node

    def stop(self) -> None:
        return None  # Analytics.stop() ends the runners with the models


def build_engine(
    config: GatewayConfig, analytics: Analytics, recorder: AlarmRecorder, clips: ClipRecorder
) -> CameraEngine:
    """The engine ``cluster.engine`` names."""
    if config.cluster.engine == "local":
        return LocalEngine(analytics)
    from gateway.cluster.ray_engine import RayEngine  # needs the `cluster` extra (Ray)

    return RayEngine(config, analytics.db, recorder, clips)
