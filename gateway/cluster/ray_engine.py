"""Cameras as Ray actors on analysis nodes, kept placed by a reconciler on the control node.

The control node is a Ray driver. Every ``reconcile_interval_s`` the reconciler compares the cameras
that should run with the actors that do:

- a camera without an actor gets one on the least loaded live node that offers the camera's affinity
  resource (load = cameras placed there / its ``camera_slots``), pinned there (node affinity), with
  its resource requests (CPU share, GPU fraction, one ``camera_slots``);
- a camera whose node died (Ray's health checks) or whose actor died is placed again elsewhere;
- a camera whose configuration changed (its spec digest) is restarted, and only that camera;
- an actor of a camera no longer wanted is stopped.

Actors are detached and named ``camera:<id>:<generation>``: when the control node restarts they keep
analysing (spooling their events meanwhile), and the new reconciler adopts those whose digest still
matches. Nodes that join take the next cameras placed; ``rebalance()`` moves cameras from the most to
the least loaded nodes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import AlarmRecorder
from gateway.cluster.actors import CameraActor
from gateway.cluster.plan import CameraSpec, model_files, plan_camera
from gateway.config.schema import CameraConfig, GatewayConfig
from gateway.db import Database

log = logging.getLogger(__name__)

ACTOR_PREFIX = "camera:"
STANDBY_PREFIX = "standby:"
START_GRACE_S = 180.0  # an actor may take this long to load its code and models and open its stream
STATUS_TIMEOUT_S = 3.0
MISSES_BEFORE_RESTART = 5  # status calls unanswered (after the start grace) before the actor is replaced
ADOPT_GRACE_S = 20.0  # actors of a previous control node not claimed by then are stopped
DRAIN_S = 5.0  # a camera moved or stopped may send what it spooled for this long


class ClusterError(RuntimeError):
    """The Ray cluster cannot be used as configured (the message says what to do)."""


@dataclass
class NodeInfo:
    node_id: str
    address: str
    slots: float
    resources: dict[str, float]


@dataclass
class Placement:
    """One wanted camera and the actor that analyses it (if any)."""

    spec: CameraSpec
    actor: Any = None
    name: str = ""
    node_id: str | None = None
    placed_at: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)
    answered_at: float = 0.0
    misses: int = 0
    restarts: int = 0
    last_error: str | None = None

    @property
    def state(self) -> str:
        if self.actor is None:
            return "waiting for a node" if self.last_error is None else "failed"
        return "running" if self.status else "starting"


class RayEngine:
    name = "ray"

    def __init__(
        self, config: GatewayConfig, db: Database, recorder: AlarmRecorder, clips: ClipRecorder
    ) -> None:
        self.config = config
        self.cluster = config.cluster
        self.db = db
        self.recorder = recorder
        self.clips = clips
        self.token = os.environ.get(self.cluster.token_env, "")
        if not self.token:
            raise ClusterError(
                f"cluster.engine is ray but {self.cluster.token_env} is not set: create a token with "
                "`vigil tokens create analysis-nodes --role operator --scope alarms:write` and put it in "
                f"{self.cluster.token_env} / 集群模式需要设置 {self.cluster.token_env}"
                "（分析节点上报报警用的令牌）"
            )
        server = config.server
        self.ingest_url = self.cluster.ingest_url or f"http://{server.host}:{server.port}"
        self.placements: dict[str, Placement] = {}
        self.wanted: dict[str, CameraSpec] = {}
        self.orphans: dict[str, list[tuple[int, str]]] = {}  # camera -> (generation, actor name)
        self.generation: dict[str, int] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self.bundles: dict[str, Any] = {}  # version id -> Ray object of its files
        self.standby: dict[str, list[tuple[Any, str]]] = {}  # node -> hot spare actors (handle, name)
        self.spares_ready: set[str] = set()  # names of the spares that answered (code loaded)
        self._probes: dict[str, Any] = {}  # spare name -> its pending status call
        self._spares = 0
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected_at = 0.0

    # --- the gateway's calls --------------------------------------------------------------------------

    def start_camera(self, camera: CameraConfig, scene_ids: dict[str, int], open_keys: set[str]) -> None:
        self._connect()
        st = self.config.storage
        spec, dirs = plan_camera(
            self.db,
            st.root,
            camera,
            scene_ids,
            self.recorder,
            (self.clips.enabled, st.clip_pre_s, st.clip_post_s),
            self.cluster.affinity.get(camera.id),
        )
        for version_id, folder in dirs.items():
            if version_id not in self.bundles:
                self.bundles[version_id] = ray.put(model_files(folder))
        spec.bundles = {v: self.bundles[v] for v in spec.refs.values()}
        spec.ingest_url, spec.token, spec.namespace = self.ingest_url, self.token, self.cluster.namespace
        spec.spool_dir = str(self.cluster.spool_dir) if self.cluster.spool_dir else None
        spec.spool_max_bytes = int(self.cluster.spool_max_mb * 1024 * 1024)
        spec.model_gpus = self.cluster.model_gpus
        with self._lock:
            self.wanted[camera.id] = spec
        self._wake.set()

    def stop_camera(self, camera_id: str) -> None:
        with self._lock:
            self.wanted.pop(camera_id, None)
            placement = self.placements.pop(camera_id, None)
        if placement is not None and placement.actor is not None:
            self._retire(placement.actor, placement.name)

    def latest_image(self, camera_id: str) -> np.ndarray | None:
        placement = self.placements.get(camera_id)
        if placement is None or placement.actor is None:
            return None
        try:
            data = ray.get(placement.actor.latest_jpeg.remote(), timeout=STATUS_TIMEOUT_S)
        except (RayError, GetTimeoutError):
            return None
        if not data:
            return None
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return image if isinstance(image, np.ndarray) else None

    def rearm(self, camera_id: str, scene: str, hold_key: str) -> None:
        placement = self.placements.get(camera_id)
        if placement is not None and placement.actor is not None:
            placement.actor.rearm.remote(scene, hold_key)  # a dead actor rebuilds from open alarms

    def status(self) -> dict[str, Any]:
        with self._lock:
            placements = dict(self.placements)
            nodes = dict(self.nodes)
            spares = {n: list(v) for n, v in self.standby.items()}
        per_node: dict[str, list[Placement]] = {}
        for p in placements.values():
            if p.node_id is not None:
                per_node.setdefault(p.node_id, []).append(p)
        node_rows = []
        for node in sorted(nodes.values(), key=lambda n: n.address + n.node_id):
            here = per_node.get(node.node_id, [])
            loads = [p.status.get("loadavg") for p in here if p.status.get("loadavg") is not None]
            node_rows.append(
                {
                    "node_id": node.node_id,
                    "address": node.address,
                    "alive": True,
                    "camera_slots": node.slots,
                    "cameras": len(here),
                    "standby": len(spares.get(node.node_id, [])),
                    "standby_ready": sum(
                        name in self.spares_ready for _, name in spares.get(node.node_id, [])
                    ),
                    "load": round(len(here) / node.slots, 3) if node.slots else None,
                    "cpu": round(sum(p.status.get("cpu", 0.0) for p in here), 3),
                    "loadavg": loads[0] if loads else None,
                    "resources": node.resources,
                }
            )
        cameras = []
        for cam_id, p in sorted(placements.items()):
            s = p.status
            cameras.append(
                {
                    "camera_id": cam_id,
                    "actor": p.name,
                    "node_id": p.node_id,
                    "address": nodes[p.node_id].address if p.node_id in nodes else None,
                    "state": p.state,
                    "stream": s.get("stream"),
                    "fps": s.get("fps"),
                    "frames_analysed": s.get("frames_analysed", 0),
                    "events": s.get("events", 0),
                    "cpu": s.get("cpu"),
                    "spool": s.get("spool"),
                    "restarts": p.restarts,
                    "placed_at": p.placed_at,
                    "last_error": p.last_error,
                }
            )
        return {
            "engine": self.name,
            "address": self.cluster.address or "auto",
            "nodes": node_rows,
            "cameras": cameras,
        }

    def rebalance(self) -> list[dict[str, Any]]:
        """Move cameras from the most to the least loaded nodes until no two nodes differ by more than
        one camera per slot share; returns the moves."""
        moves: list[dict[str, Any]] = []
        with self._lock:
            self._refresh_nodes()
            while True:
                counts = {n: 0 for n in self.nodes}
                for p in self.placements.values():
                    if p.node_id in counts:
                        counts[p.node_id] += 1
                if len(counts) < 2:
                    break
                load = {n: counts[n] / max(self.nodes[n].slots, 1e-9) for n in counts}
                busiest = max(load, key=lambda n: (load[n], n))
                idlest = min(load, key=lambda n: (load[n], n))
                after = {busiest: (counts[busiest] - 1) / self.nodes[busiest].slots}
                after[idlest] = (counts[idlest] + 1) / self.nodes[idlest].slots
                if after[idlest] >= load[busiest] or counts[idlest] + 1 > self.nodes[idlest].slots:
                    break
                movable = [
                    p
                    for p in self.placements.values()
                    if p.node_id == busiest and self._fits(p.spec, self.nodes[idlest])
                ]
                if not movable:
                    break
                p = sorted(movable, key=lambda p: p.spec.camera_id)[0]
                moves.append({"camera_id": p.spec.camera_id, "from": busiest, "to": idlest})
                self._replace(p, f"rebalanced to node {idlest[:12]}", target=idlest)
        return moves

    def stop(self) -> None:
        """The control node stops: the reconciler ends; the camera actors (detached) go on analysing
        and spool their events until a control node comes back and adopts them."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        if ray.is_initialized():
            ray.shutdown()

    def stop_all(self) -> None:
        """Stop every camera actor of this engine (tests, `vigil cluster stop`)."""
        with self._lock:
            placements = list(self.placements.values())
            self.placements.clear()
            self.wanted.clear()
        for p in placements:
            if p.actor is not None:
                self._retire(p.actor, p.name)
        with self._lock:
            spares = [spare for node in self.standby.values() for spare in node]
            self.standby.clear()
        for actor, _ in spares:
            with contextlib.suppress(RayError):
                ray.kill(actor, no_restart=True)

    # --- the reconciler -------------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._thread is not None:
            return
        address = self.cluster.address or "auto"
        try:
            ray.init(
                address=address,
                namespace=self.cluster.namespace,
                log_to_driver=False,
                ignore_reinit_error=True,
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(
                f"cannot reach the Ray cluster at {address}: {exc}; start its head "
                f"(`vigil node start --head`) or fix cluster.address / "
                f"无法连接 Ray 集群 {address}：请先启动头节点或检查 cluster.address"
            ) from exc
        self._connected_at = time.monotonic()
        for name in ray.util.list_named_actors():
            if name.startswith(ACTOR_PREFIX):
                cam_id, _, gen = name[len(ACTOR_PREFIX) :].rpartition(":")
                if gen.isdigit():
                    self.orphans.setdefault(cam_id, []).append((int(gen), name))
                    self.generation[cam_id] = max(self.generation.get(cam_id, 0), int(gen))
        self._find_spares([n for n in ray.util.list_named_actors() if n.startswith(STANDBY_PREFIX)])
        if self.orphans:
            log.info("cluster: %d camera actors of an earlier control node found", len(self.orphans))
        self._thread = threading.Thread(target=self._loop, name="cluster-reconciler", daemon=True)
        self._thread.start()

    def _find_spares(self, names: list[str]) -> None:
        """Spares of an earlier control node: idle ones stay spares, promoted ones are its cameras."""
        handles: dict[str, Any] = {}
        refs: dict[str, Any] = {}
        for name in names:
            with contextlib.suppress(ValueError, RayError):
                handles[name] = ray.get_actor(name)
                refs[name] = handles[name].status.remote()
        if not refs:
            return
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=STATUS_TIMEOUT_S * 3)
        for name, ref in refs.items():
            if ref not in ready:
                continue
            try:
                status = ray.get(ref)
            except RayError:
                continue
            if status.get("camera_id"):
                self.orphans.setdefault(status["camera_id"], []).append((0, name))
            elif status.get("standby"):
                self.standby.setdefault(status["node_id"], []).append((handles[name], name))
                self.spares_ready.add(name)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.reconcile()
            except Exception:
                log.exception("cluster: reconciling camera placement failed")
            self._wake.wait(self.cluster.reconcile_interval_s)
            self._wake.clear()

    def reconcile(self) -> None:
        """One pass: poll the actors, then place, move, restart or stop what differs from the wanted set."""
        self._poll()
        with self._lock:
            self._refresh_nodes()
            for cam_id, spec in list(self.wanted.items()):
                p = self.placements.get(cam_id)
                if p is None:
                    p = self.placements[cam_id] = Placement(spec)
                    if self._adopt(p):
                        continue
                if p.actor is None:
                    self._place(p)
                elif p.spec.digest != spec.digest:
                    p.spec = spec
                    self._replace(p, "its configuration changed")
                elif p.node_id not in self.nodes:
                    self._replace(p, f"node {str(p.node_id)[:12]} is gone")
                elif p.status.get("dead"):
                    self._replace(p, f"actor died: {p.status.get('error')}")
                elif not p.status and time.monotonic() - p.placed_at > START_GRACE_S:
                    self._replace(p, "it did not start in time")
                elif p.misses >= MISSES_BEFORE_RESTART and p.status:
                    self._replace(p, f"{p.misses} status calls unanswered")
            self._keep_standbys()
            for cam_id in [c for c in self.placements if c not in self.wanted]:
                p = self.placements.pop(cam_id)
                if p.actor is not None:
                    self._retire(p.actor, p.name)
            if self.orphans and time.monotonic() - self._connected_at > ADOPT_GRACE_S:
                for cam_id, names in list(self.orphans.items()):
                    for _, name in names:
                        with contextlib.suppress(ValueError, RayError):
                            self._retire(ray.get_actor(name), name)
                    del self.orphans[cam_id]

    def _refresh_nodes(self) -> None:
        slots_name = self.cluster.camera_slots_resource
        nodes = {}
        for n in ray.nodes():
            resources = {k: float(v) for k, v in n.get("Resources", {}).items() if not k.startswith("node:")}
            slots = resources.get(slots_name, 0.0)
            if n.get("Alive") and slots > 0:
                nodes[n["NodeID"]] = NodeInfo(n["NodeID"], n.get("NodeManagerAddress", ""), slots, resources)
        self.nodes = nodes

    def _poll(self) -> None:
        with self._lock:
            asked = {cam_id: p for cam_id, p in self.placements.items() if p.actor is not None}
        refs = {}
        for cam_id, p in asked.items():
            try:
                refs[cam_id] = p.actor.status.remote()
            except RayError as exc:
                p.status = {"dead": True, "error": str(exc)}
        if not refs:
            return
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=STATUS_TIMEOUT_S)
        done = set(ready)
        for cam_id, ref in refs.items():
            p = asked[cam_id]
            if ref not in done:
                if p.status:
                    p.misses += 1
                continue
            try:
                answer = ray.get(ref)
                p.misses, p.answered_at, p.last_error = 0, time.monotonic(), None
                p.status = answer if answer.get("camera_id") else {}  # a promoted spare still starting
            except ActorUnavailableError:  # unreachable for now (its node may be dying): a miss
                p.misses += 1
            except RayError as exc:
                p.status = {"dead": True, "error": str(exc).splitlines()[0]}

    def _fits(self, spec: CameraSpec, node: NodeInfo) -> bool:
        return spec.affinity is None or node.resources.get(spec.affinity, 0.0) > 0

    def _choose(self, spec: CameraSpec) -> str | None:
        counts = {n: 0 for n in self.nodes}
        for p in self.placements.values():
            if p.node_id in counts and p.actor is not None:
                counts[p.node_id] += 1
        fits = [n for n, info in self.nodes.items() if self._fits(spec, info) and counts[n] + 1 <= info.slots]
        if not fits:
            return None
        return min(fits, key=lambda n: (counts[n] / self.nodes[n].slots, counts[n], n))

    def _adopt(self, p: Placement) -> bool:
        """Take over the running actor of a previous control node when it analyses the same spec."""
        names = sorted(self.orphans.pop(p.spec.camera_id, []), reverse=True)
        for i, (_gen, name) in enumerate(names):
            try:
                actor = ray.get_actor(name)
                answer: Any = ray.get(actor.status.remote(), timeout=STATUS_TIMEOUT_S * 2)
            except (ValueError, RayError, GetTimeoutError):
                continue
            status: dict[str, Any] = dict(answer)
            if i == 0 and status.get("digest") == p.spec.digest and status.get("node_id") in self.nodes:
                p.actor, p.name, p.node_id, p.status = actor, name, status["node_id"], status
                p.placed_at = time.monotonic()
                log.info("cluster: camera %s adopted on node %s", p.spec.camera_id, p.node_id[:12])
                for _, other in names[i + 1 :]:
                    with contextlib.suppress(ValueError, RayError):
                        self._retire(ray.get_actor(other), other)
                return True
            self._retire(actor, name)
        return False

    def _place(self, p: Placement, target: str | None = None) -> None:
        spec = p.spec
        node_id = target or self._choose(spec)
        if node_id is None:
            if p.last_error is None:
                log.warning("cluster: no live node with a free camera slot for camera %s", spec.camera_id)
            p.last_error = "no live node with a free camera slot" + (
                f" and resource {spec.affinity}" if spec.affinity else ""
            )
            return
        spec.open_keys = sorted(
            k for k in self.recorder.open_event_keys() if k.startswith(f"{spec.camera_id}/")
        )
        gen = self.generation.get(spec.camera_id, 0) + 1
        self.generation[spec.camera_id] = gen
        name = f"{ACTOR_PREFIX}{spec.camera_id}:{gen}"
        spares = self.standby.get(node_id) or []
        if spares:  # a hot spare of that node: its code is loaded, it starts the camera at once
            p.actor, name = spares.pop(0)
            p.actor.begin.remote(spec)
        else:
            p.actor = self._new_actor(name, node_id, spec.affinity).remote(spec)
        p.name, p.node_id, p.status, p.misses, p.last_error = name, node_id, {}, 0, None
        p.placed_at = time.monotonic()
        address = self.nodes[node_id].address if node_id in self.nodes else "?"
        log.info("cluster: camera %s placed on node %s (%s)", spec.camera_id, node_id[:12], address)

    def _new_actor(self, name: str, node_id: str, affinity: str | None) -> Any:
        """The camera actor class with a camera's resource requests, pinned to ``node_id``."""
        resources = {self.cluster.camera_slots_resource: 1.0}
        if affinity:
            resources[affinity] = 0.001
        return ray.remote(CameraActor).options(
            name=name,
            namespace=self.cluster.namespace,
            lifetime="detached",
            max_restarts=0,
            max_concurrency=4,
            num_cpus=self.cluster.camera_cpus,
            num_gpus=self.cluster.camera_gpus,
            resources=resources,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )

    def _keep_standbys(self) -> None:
        """``standby_per_node`` hot spares on every live node that has a free camera slot for them,
        once every placed camera runs (cameras start first)."""
        for node_id in [n for n in self.standby if n not in self.nodes]:
            del self.standby[node_id]
        if any(p.actor is not None and not p.status for p in self.placements.values()):
            return
        for actor, name in [(a, n) for spares in self.standby.values() for a, n in spares]:
            if name in self.spares_ready:
                continue
            probe = self._probes.get(name)
            if probe is None:
                probe = self._probes[name] = actor.status.remote()
            if ray.wait([probe], timeout=0)[0]:
                del self._probes[name]
                with contextlib.suppress(RayError):
                    ray.get(probe)
                    self.spares_ready.add(name)
        counts = {n: 0 for n in self.nodes}
        for p in self.placements.values():
            if p.node_id in counts and p.actor is not None:
                counts[p.node_id] += 1
        for node_id, info in self.nodes.items():
            spares = self.standby.setdefault(node_id, [])
            while len(spares) < self.cluster.standby_per_node and counts[node_id] + len(spares) < info.slots:
                self._spares += 1
                name = f"{STANDBY_PREFIX}{node_id[:12]}:{self._spares}:{os.getpid()}"
                spares.append((self._new_actor(name, node_id, None).remote(None), name))

    def _replace(self, p: Placement, why: str, target: str | None = None) -> None:
        log.warning("cluster: camera %s moves off node %s: %s", p.spec.camera_id, str(p.node_id)[:12], why)
        if p.actor is not None and p.node_id in self.nodes and not p.status.get("dead"):
            self._retire(p.actor, p.name)
        elif p.actor is not None:
            with contextlib.suppress(RayError):
                ray.kill(p.actor, no_restart=True)
        p.actor, p.node_id, p.status = None, None, {}
        p.restarts += 1
        self._place(p, target)

    def _retire(self, actor: Any, name: str) -> None:
        """Stop an actor: it stops analysing and sends what it spooled (a little while), then goes."""
        try:
            ray.get(actor.shutdown.remote(DRAIN_S), timeout=DRAIN_S + 5)
        except (RayError, GetTimeoutError) as exc:
            log.info("cluster: actor %s did not stop cleanly: %s", name, str(exc).splitlines()[0])
        with contextlib.suppress(RayError):
            ray.kill(actor, no_restart=True)
