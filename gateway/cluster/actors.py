"""The Ray actors of an analysis node: one ``CameraActor`` per camera and one ``ModelServer`` per node
and model version.

A camera actor runs the same camera runner as a local camera (source thread, rules thread,
``analyzers.pipeline``), but its models are the node's model servers and its alarms go to the spool
(gateway.cluster.forwarder). A model server loads the model once per node and answers every camera
of the node through one ``InferenceWorker``, so frames from all those cameras are batched together;
frames reach it through the node's shared-memory object store.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from analyzers import load_card
from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import AlarmRecorder
from gateway.cameras.analytics import Analytics, CameraRunner, InputSize, ModelHandle, load_model
from gateway.cluster.forwarder import EventForwarder, EventSender, SpoolingClips
from gateway.cluster.plan import CameraSpec
from gateway.cluster.spool import EventSpool
from gateway.config.schema import CameraConfig
from gateway.db import Database
from gateway.models.pack import ModelPackError

log = logging.getLogger(__name__)

MODEL_SERVER_THREADS = 32  # concurrent inference calls a model server takes (the batcher joins them)


def node_cache() -> Path:
    return Path(tempfile.gettempdir()) / "vigil-models"


def materialise(version_id: str, files: dict[str, bytes]) -> Path:
    """A model version's files in this node's cache (written once; a rename makes it appear whole)."""
    final = node_cache() / version_id
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version_id}-", dir=final.parent))
    for rel, data in files.items():
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    try:
        tmp.rename(final)
    except OSError:  # another camera of this node wrote it first
        shutil.rmtree(tmp, ignore_errors=True)
    return final


class ModelServer:
    """One model on one node, shared by the node's cameras (a threaded Ray actor)."""

    def __init__(
        self, name: str, key: str, kind: str, path: str, version_id: str, size: InputSize, label: str
    ) -> None:
        card = load_card(Path(path))
        self.handle = load_model(name, key, kind, Path(path), card, version_id, size, label)

    def info(self) -> dict[str, Any]:
        h = self.handle
        return {
            "kind": h.kind,
            "provider": h.provider,
            "input_size": h.input_size,
            "frames": h.worker.frames,
            "batches": h.worker.batches,
            "busy_s": h.worker.busy_s,
            "queued": h.worker.queued,
        }

    def infer(self, item: Any) -> Any:
        return self.handle.worker.submit(item).result()


class RemoteWorker:
    """A camera's view of a model server: ``submit`` returns a future like an ``InferenceWorker``."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.frames = 0
        self.busy_s = 0.0
        self.queued = 0

    def submit(self, item: Any) -> Future[Any]:
        self.frames += 1
        return cast(Future[Any], self.server.infer.remote(item).future())

    def close(self) -> None:
        return None  # the server is the node's, shared with other cameras


class NodeAnalytics(Analytics):
    """``Analytics`` on an analysis node: models as the control node resolved them (their files
    shipped in the spec), loaded in the node's model servers; no database."""

    def __init__(
        self, spec: CameraSpec, sink: EventForwarder, clips: ClipRecorder | None, node_id: str
    ) -> None:
        super().__init__(cast(Database, None), node_cache(), cast(AlarmRecorder, sink), clips)
        self.spec = spec
        self.node_id = node_id

    def _resolve(self, ref: str) -> tuple[Path, Any, str]:
        version_id = self.spec.refs.get(ref)
        if version_id is None or version_id not in self.spec.bundles:
            raise ModelPackError(f"model {ref!r} was not resolved by the control node")
        path = materialise(version_id, ray.get(self.spec.bundles[version_id]))
        return path, load_card(path), version_id

    def _pinned(self, camera_scene_id: int | None) -> str | None:
        return self.spec.pins.get(camera_scene_id) if camera_scene_id is not None else None

    def _load(
        self,
        name: str,
        key: str,
        kind: str,
        path: Path,
        card: Any,
        version_id: str,
        size: InputSize,
        label: str,
    ) -> ModelHandle:
        server = model_server(self.spec, self.node_id, name, key, kind, path, version_id, size, label)
        info = ray.get(server.info.remote())
        return ModelHandle(
            name,
            version_id,
            info["provider"],
            info["kind"],
            frozenset(card.classes),
            cast(Any, RemoteWorker(server)),
            card.crop,
            info["input_size"],
            key,
            dict(card.thresholds),
        )


def model_server(
    spec: CameraSpec,
    node_id: str,
    name: str,
    key: str,
    kind: str,
    path: Path,
    version_id: str,
    size: InputSize,
    label: str,
) -> Any:
    """The node's server of this model version (started by the first camera that needs it; detached,
    so it outlives the camera that started it and serves the node's other cameras)."""
    actor = ray.remote(ModelServer).options(
        name=f"model:{node_id[:16]}:{key}:{version_id}",
        namespace=spec.namespace,
        get_if_exists=True,
        lifetime="detached",
        num_cpus=0,
        num_gpus=spec.model_gpus,
        max_concurrency=MODEL_SERVER_THREADS,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )
    return actor.remote(name, key, kind, str(path), version_id, size, label)


class CameraActor:
    """One camera on an analysis node (a Ray actor): stream -> pipeline -> events to the spool."""

    def __init__(self, spec: CameraSpec | None = None) -> None:
        """``spec`` None: a standby (hot spare) that has loaded its code and waits for ``begin``."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.node_id = ray.get_runtime_context().get_node_id()
        self.spec: CameraSpec | None = None
        self._running: CameraRunner | None = None
        self._lock = threading.Lock()
        if spec is not None:
            self.begin(spec)

    def begin(self, spec: CameraSpec) -> None:
        """Start analysing the camera of ``spec`` (once per actor)."""
        with self._lock:
            if self.spec is not None:
                raise RuntimeError(f"this actor analyses camera {self.spec.camera_id} already")
            self.spec = spec
        camera = CameraConfig.model_validate_json(spec.camera_json)
        root = Path(spec.spool_dir) if spec.spool_dir else Path(tempfile.gettempdir()) / "vigil-spool"
        # Left over from an earlier run of this camera on this node (e.g. a restart while the control
        # node was down): sent first, in order.
        self.spool = EventSpool(root / spec.namespace / camera.id, spec.spool_max_bytes)
        self.sender = EventSender(self.spool, spec.ingest_url, spec.token)
        self.sender.start()
        self.sink = EventForwarder(self.spool, self.node_id, frozenset(spec.clip_scenes))
        clips = (
            SpoolingClips(self.spool, self.node_id, spec.clip_pre_s, spec.clip_post_s) if spec.clips else None
        )
        self.analytics = NodeAnalytics(spec, self.sink, clips, self.node_id)
        runner = self.analytics.start_camera(camera, spec.scene_ids, set(spec.open_keys))
        self.started = time.time()
        self._cpu = (time.process_time(), time.monotonic())
        self._running = runner

    @property
    def runner(self) -> CameraRunner:
        if self._running is None:
            raise RuntimeError("this actor analyses no camera yet")
        return self._running

    def status(self) -> dict[str, Any]:
        """Where the camera runs and how it does (polled by the control node's reconciler); a standby
        or a camera still starting answers without ``camera_id``."""
        if self._running is None or self.spec is None:
            return {"node_id": self.node_id, "standby": self.spec is None, "pid": os.getpid()}
        r, health = self.runner, self.runner.health
        with self._lock:
            cpu, wall = time.process_time(), time.monotonic()
            cpu_share = (cpu - self._cpu[0]) / max(1e-6, wall - self._cpu[1])
            self._cpu = (cpu, wall)
        s = self.sender.stats
        return {
            "camera_id": self.spec.camera_id,
            "digest": self.spec.digest,
            "node_id": self.node_id,
            "pid": os.getpid(),
            "started": self.started,
            "stream": health.state,
            "fps": health.fps,
            "frames_analysed": r.stats.frames_analysed,
            "analysis_errors": r.stats.errors,
            "events": len(self.sink.keys),
            "scenes": r.scene_status(),
            "cpu": round(cpu_share, 4),
            "loadavg": os.getloadavg()[0],
            "spool": {
                "pending": self.spool.pending,
                "bytes": self.spool.size_bytes,
                "dropped": self.spool.stats.dropped,
                "delivered": s.delivered,
                "alarms": s.alarms,
                "joined": s.joined,
                "duplicates": s.duplicates,
                "rejected": s.rejected,
                "failures": s.failures,
                "connected": s.connected,
                "last_error": s.last_error,
            },
        }

    def event_keys(self) -> list[str]:
        """The delivery keys this actor spooled, in order."""
        return list(self.sink.keys) if self._running is not None else []

    def rearm(self, scene: str, hold_key: str) -> None:
        if self._running is not None:
            self._running.rearm(scene, hold_key)

    def latest_jpeg(self) -> bytes | None:
        frame = self._running.latest if self._running is not None else None
        if frame is None:
            return None
        ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return bytes(np.asarray(buf).tobytes()) if ok else None

    def shutdown(self, drain_s: float = 5.0) -> int:
        """Stop analysing, give the sender ``drain_s`` to empty the spool; returns what is left."""
        if self._running is None:
            return 0
        self.analytics.stop()
        deadline = time.monotonic() + drain_s
        while self.spool.pending and time.monotonic() < deadline:
            time.sleep(0.1)
        self.sender.stop()
        return self.spool.pending
