"""Scale-out on a real local Ray cluster on loopback: a head (the control node's driver connects to it)
and two analysis nodes with distinct resources, six sample RTSP cameras, the real gateway.

One test, in phases, because the cluster is the expensive part:

1. the six cameras are placed over both nodes (least loaded: three each) and analyse;
2. one node is killed (its raylet and workers SIGKILLed): its cameras analyse again on the other node
   within 30 s;
3. the control node is stopped for 20 s (API, ingest and reconciler gone; the detached camera actors
   go on and spool their events), then started again: it adopts the running actors, the spools are
   replayed, and every event raised meanwhile is recorded once: counted against a loopback HTTP
   uplink receiver and the database, no alarm is lost or doubled.

Small and slow on purpose (768x576 sample video, 1 frame/s, yolox_nano): a 2-core machine runs it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cluster.ingest import DeliveryLedger
from gateway.config.schema import load_config
from gateway.db import Database, upgrade
from gateway.db.schema import Alarm
from gateway.models.pack import import_pack
from tests.conftest import ROOT, wait_until, write_config
from tests.delivery.test_uplink_delivery import SECRET, http_target
from tests.peers.http_receiver import HttpReceiver
from tests.peers.ports import free_port

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

# Ray names a node by the address it reaches the internet from; this makes every node of the test
# cluster (and the driver) use 127.0.0.1 instead, so the whole cluster stays on loopback. Read when
# Ray is imported, and inherited by the node processes the test starts.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="the scale-out tests need Ray (the dev extra installs it)")

CAMERAS = [f"cam-{i}" for i in range(1, 7)]
FAILOVER_S = 30.0
OUTAGE_S = 20.0
# Detect a dead node in about 3 s (Ray's defaults take longer; production sets these on the head too).
HEAD_SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}


def grid_regions(n: int = 3) -> list[dict[str, Any]]:
    """An n x n grid of regions: people walking through raise one event per region they enter."""
    step = 1.0 / n
    return [
        {
            "name": f"r{row}{col}",
            "polygon": [
                [col * step, row * step],
                [(col + 1) * step, row * step],
                [(col + 1) * step, (row + 1) * step],
                [col * step, (row + 1) * step],
            ],
        }
        for row in range(n)
        for col in range(n)
    ]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": HEAD_SYSTEM_CONFIG,
        },
    )
    nodes = [
        cluster.add_node(num_cpus=2, resources={"camera_slots": 6, label: 1000})
        for label in ("site_a", "site_b")
    ]
    try:
        yield cluster, nodes
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def start_gateway_config(tmp: Path, rtsp: Any, cluster_address: str, port: int, receiver: str) -> Path:
    scene = {"scene": "intrusion", "regions": grid_regions(), "min_duration_s": 1, "rearm_after_s": 2}
    return write_config(
        tmp,
        server={"host": "127.0.0.1", "port": port},
        cameras=[{"id": cam, "name": cam, "url": rtsp.url(cam), "scenes": [scene]} for cam in CAMERAS],
        uplink=[http_target(receiver, actions=["raised"])],
        cluster={
            "engine": "ray",
            "address": cluster_address,
            "ingest_url": f"http://127.0.0.1:{port}",
            "camera_cpus": 0.25,
            "spool_dir": str(tmp / "node-spool"),
            "reconcile_interval_s": 1.0,
            "standby_per_node": 3,
        },
    )


async def serve(gw: Gateway, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(gw))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def cameras_running(gw: Gateway, min_frames: int = 1, where: set[str] | None = None) -> dict[str, str] | None:
    """camera -> node, once every camera runs (on ``where`` when given) and analysed frames."""
    status = gw.engine.status()
    rows = {c["camera_id"]: c for c in status["cameras"]}
    if set(rows) != set(CAMERAS):
        return None
    for row in rows.values():
        if row["state"] != "running" or row["frames_analysed"] < min_frames:
            return None
        if where is not None and row["node_id"] not in where:
            return None
    return {cam: str(row["node_id"]) for cam, row in rows.items()}


def actor_keys(gw: Gateway, namespace: str) -> dict[str, list[str]]:
    """Each placed camera actor's spooled delivery keys (asked straight from Ray)."""
    names = [c["actor"] for c in gw.engine.status()["cameras"]]
    return {
        name: ray.get(ray.get_actor(name, namespace=namespace).event_keys.remote(), timeout=60)
        for name in names
    }


async def test_cameras_spread_fail_over_and_lose_no_alarm_while_the_control_node_is_away(
    tmp_path: Path, ray_cluster: Any, models_dir: Path, vtest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.rtsp.sample_camera import SampleRtspServer

    cluster, (node_a, node_b) = ray_cluster
    monkeypatch.setenv("VIGIL_TEST_PARK_SECRET", SECRET)
    receiver = HttpReceiver(secret=SECRET)
    receiver_url = await receiver.start()
    port = free_port()
    with SampleRtspServer({cam: vtest for cam in CAMERAS}, max_seconds=12) as rtsp:
        path = start_gateway_config(tmp_path, rtsp, cluster.address, port, receiver_url)
        config = load_config(path, environ={})
        db = Database(config.database.url)
        upgrade(db.engine)
        imported = import_pack(db, config.storage.root, models_dir, ROOT / "config" / "models")
        assert "yolox_nano" in {r.name for r in imported}
        with db.session() as s:
            token, _ = issue_token(s, "analysis-nodes", "machine", "operator", {"alarms:write"})
        db.dispose()
        monkeypatch.setenv("VIGIL_CLUSTER_TOKEN", token)

        gw = Gateway(load_config(path, environ={}), path)
        runner = await serve(gw, port)
        try:
            # 1. spread over both nodes
            placed = await wait_until(
                lambda: cameras_running(gw), 300, "six cameras analysing on the cluster"
            )
            per_node = sorted(list(placed.values()).count(n) for n in (node_a.node_id, node_b.node_id))
            assert per_node == [3, 3], placed
            status = gw.engine.status()
            assert {n["node_id"] for n in status["nodes"]} == {node_a.node_id, node_b.node_id}
            assert all(n["cameras"] == 3 and n["load"] == 0.5 for n in status["nodes"])
            # hot spares (standby_per_node: 3) are started once the cameras run; a node takes over
            # another one's cameras with them
            await wait_until(
                lambda: all(n["standby_ready"] == 3 for n in gw.engine.status()["nodes"]), 300, "hot spares"
            )
            status = gw.engine.status()

            # 2. kill node a: its cameras analyse on node b within 30 s
            moved = {cam for cam, node in placed.items() if node == node_a.node_id}
            frames_before = {c["camera_id"]: c["frames_analysed"] for c in status["cameras"]}
            killed_at = time.monotonic()
            cluster.remove_node(node_a, allow_graceful=False)
            await wait_until(
                lambda: cameras_running(gw, where={node_b.node_id}), FAILOVER_S + 30, "the cameras on node b"
            )
            took = time.monotonic() - killed_at
            assert took <= FAILOVER_S, f"failover took {took:.1f} s"
            after = {c["camera_id"]: c for c in gw.engine.status()["cameras"]}
            assert all(after[cam]["restarts"] == 1 for cam in moved)
            assert all(after[cam]["restarts"] == 0 for cam in set(CAMERAS) - moved)
            assert all(after[cam]["frames_analysed"] >= frames_before[cam] for cam in set(CAMERAS) - moved)

            # 3. the control node away for 20 s
            await wait_until(
                lambda: sum(c["events"] for c in gw.engine.status()["cameras"]) > 0, 60, "events"
            )
            actors = {c["camera_id"]: c["actor"] for c in gw.engine.status()["cameras"]}
            await runner.cleanup()  # API, ingest and reconciler stop; the actors go on
            stopped_at = time.time()
            await asyncio.sleep(OUTAGE_S)
            restarted_at = time.time()
            gw = Gateway(load_config(path, environ={}), path)
            runner = await serve(gw, port)

            def drained() -> bool:
                cams = gw.engine.status()["cameras"]
                return len(cams) == 6 and all(c["spool"] and c["spool"]["pending"] == 0 for c in cams)

            await wait_until(drained, 90, "the spools replayed to the restarted control node")
            after_restart = {c["camera_id"]: c for c in gw.engine.status()["cameras"]}
            assert {c: row["actor"] for c, row in after_restart.items()} == actors, "adopted, not restarted"
            assert sum(c["spool"]["failures"] for c in after_restart.values()) > 0

            keys = [k for ks in actor_keys(gw, config.cluster.namespace).values() for k in ks]
            during = [k for k in keys if stopped_at <= float(k.rpartition("@")[2]) <= restarted_at]
            assert during, "no event was raised while the control node was away"
            ledger = DeliveryLedger(config.storage.root / "cluster" / "deliveries")
            missing = [k for k in keys if (ledger.get(k) or {}).get("state") != "done"]
            assert not missing, f"events lost: {missing[:5]}"
            assert len(keys) == len(set(keys))

            def uplinked() -> bool:
                with gw.db.session() as s:
                    count = len(s.scalars(select(Alarm.id)).all())
                return count > 0 and len(receiver.accepted) == count

            await wait_until(uplinked, 60, "every alarm at the uplink receiver")
            with gw.db.session() as s:
                rows = s.execute(select(Alarm.id, Alarm.event_key, Alarm.raised_at)).all()
            assert len({(k, at) for _, k, at in rows}) == len(rows), "an alarm recorded twice"
            made = {entry.get("alarm_id") for k in keys if (entry := ledger.get(k)) and entry.get("alarm_id")}
            assert made <= {r[0] for r in rows}
            raised = [r for r in receiver.requests if r.status == 200]
            assert len(raised) == len(rows), "an alarm pushed twice or missing upstream"
        finally:
            await asyncio.to_thread(gw.engine.stop_all)  # type: ignore[attr-defined]
            await runner.cleanup()
            await receiver.stop()
