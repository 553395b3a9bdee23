"""The control node's ingest endpoint and the analysis node's sender, over real HTTP on loopback.

Events are recorded through the one recorder, each delivery key once: a replay is answered
"duplicate" with the alarm it made. The sender keeps events spooled while the control node is down
and delivers them in order once it is up.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from sqlalchemy import func, select

from analyzers import AlarmEvent, Region
from analyzers.records import Detection
from gateway.alarms.recorder import SceneContext
from gateway.api import create_app
from gateway.auth import issue_token
from gateway.cluster.events import alarm_envelope, clip_envelope
from gateway.cluster.forwarder import EventSender
from gateway.cluster.spool import EventSpool
from gateway.db.schema import Alarm, Evidence
from tests.conftest import make_gateway, wait_until
from tests.peers.ports import free_port

CAMERA = {"id": "yard-1", "name": "Yard", "url": "rtsp://127.0.0.1:9/none", "enabled": False}
CTX = SceneContext(
    camera_scene_id=None,
    tags={"area": "yard"},
    scene_tag=None,
    regions=[Region("lawn", [(0, 0), (1, 0), (1, 1)])],
)


def event(region: str, at: float) -> AlarmEvent:
    return AlarmEvent(
        camera_id="yard-1",
        scene="intrusion",
        region=region,
        occurred_at=at - 3,
        raised_at=at,
        score=0.9,
        message=f"1 person(s) entered region {region!r}",
        detections=(Detection((10.0, 10.0, 50.0, 90.0), 0.9, 0, "person", 7),),
    )


def picture() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((96, 128, 3), 120, np.uint8))
    assert ok
    return bytes(buf.tobytes())


def token(gw: Any, role: str, scopes: set[str] | None = None) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, f"node-{role}", "machine", role, scopes)
    return {"Authorization": f"Bearer {secret}"}


def alarms(gw: Any) -> int:
    with gw.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Alarm)) or 0)


async def test_each_delivery_key_makes_one_alarm_and_its_clip_joins_it(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    gw = make_gateway(tmp_path, users=("viewer",), start=True, cameras=[CAMERA])
    client = await aiohttp_client(create_app(gw, start_gateway=False))
    node = token(gw, "operator", {"alarms:write"})
    first = alarm_envelope(event("lawn", 1_795_000_000.25), CTX, picture(), node="n1")
    body = first.model_dump_json(exclude_none=True)
    r = await client.post(
        "/api/cluster/events", data=body, headers={**node, "Content-Type": "application/json"}
    )
    assert r.status == 200, await r.text()
    made = await r.json()
    assert made["outcome"] == "alarm" and made["alarm_id"]
    r = await client.post(
        "/api/cluster/events", data=body, headers={**node, "Content-Type": "application/json"}
    )
    assert await r.json() == {"outcome": "duplicate", "alarm_id": made["alarm_id"]}
    assert alarms(gw) == 1
    with gw.db.session() as s:
        row = s.get(Alarm, made["alarm_id"])
        assert row is not None and row.event_key == "yard-1/intrusion/lawn" and row.tags["area"] == "yard"
        assert row.raised_at.timestamp() == 1_795_000_000.25

    clip = clip_envelope(first.key, "yard-1", b"\x00\x00\x00\x18ftypmp42 not really", node="n1")
    for outcome in ("clip", "duplicate"):
        r = await client.post(
            "/api/cluster/events",
            data=clip.model_dump_json(),
            headers={**node, "Content-Type": "application/json"},
        )
        assert (await r.json())["outcome"] == outcome
    with gw.db.session() as s:
        kinds = sorted(s.scalars(select(Evidence.kind).where(Evidence.alarm_id == made["alarm_id"])))
    assert kinds == ["clip", "snapshot", "snapshot_raw"]
    await client.close()


async def test_ingest_refuses_wrong_callers_and_bad_events(tmp_path: Path, aiohttp_client: Any) -> None:
    gw = make_gateway(tmp_path, users=("viewer",), start=True, cameras=[CAMERA])
    gw.config.cluster.max_event_mb = 0.01
    client = await aiohttp_client(create_app(gw, start_gateway=False))
    body = alarm_envelope(event("lawn", 1_795_000_001.0), CTX, picture()).model_dump_json()
    json_type = {"Content-Type": "application/json"}
    r = await client.post("/api/cluster/events", data=body, headers=json_type)
    assert r.status == 401
    r = await client.post("/api/cluster/events", data=body, headers={**token(gw, "viewer"), **json_type})
    assert r.status == 403
    node = {**token(gw, "operator", {"alarms:write"}), **json_type}
    bad = json.loads(body)
    bad["jpeg"] = "not base64!"
    r = await client.post("/api/cluster/events", data=json.dumps(bad), headers=node)
    assert r.status == 422 and "base64" in (await r.json())["error"]["message"]
    bad["jpeg"] = base64.b64encode(b"not a picture").decode()
    r = await client.post("/api/cluster/events", data=json.dumps(bad), headers=node)
    assert r.status == 422 and "JPEG" in (await r.json())["error"]["message"]
    del bad["event"]
    r = await client.post("/api/cluster/events", data=json.dumps(bad), headers=node)
    assert r.status == 422
    r = await client.post("/api/cluster/events", data=b"x" * 20_000, headers=node)
    assert r.status == 413 and "max_event_mb" in (await r.json())["error"]["message"]
    assert alarms(gw) == 0
    await client.close()


async def test_sender_keeps_events_while_the_control_node_is_down_and_replays_them_in_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "control").mkdir()
    gw = make_gateway(tmp_path / "control", start=True, cameras=[CAMERA])
    port = free_port()
    spool = EventSpool(tmp_path / "spool" / "yard-1", max_bytes=1_000_000)
    regions = ["a", "b", "c"]
    for i, region in enumerate(regions):
        spool.append(
            alarm_envelope(event(region, 1_795_000_010.0 + 3600 * i), CTX, picture())
            .model_dump_json()
            .encode()
        )
    sender = EventSender(
        spool, f"http://127.0.0.1:{port}", token(gw, "operator", {"alarms:write"})["Authorization"][7:]
    )
    sender.start()
    runner: web.AppRunner | None = None
    try:
        await wait_until(lambda: sender.stats.failures >= 2, 20, "the sender to find the control node down")
        assert spool.pending == 3 and alarms(gw) == 0 and not sender.stats.connected
        runner = web.AppRunner(create_app(gw, start_gateway=False))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await wait_until(lambda: spool.pending == 0, 30, "the spool to be replayed")
        assert (sender.stats.delivered, sender.stats.alarms, sender.stats.duplicates) == (3, 3, 0)
        with gw.db.session() as s:
            order = list(s.scalars(select(Alarm.region).order_by(Alarm.id)))  # ULIDs: creation order
        assert order == regions
        # The same event again (an answer lost, a node restarted): recorded once.
        spool.append(alarm_envelope(event("a", 1_795_000_010.0), CTX, picture()).model_dump_json().encode())
        await wait_until(lambda: sender.stats.delivered == 4, 30, "the replayed event to be answered")
        assert sender.stats.duplicates == 1 and alarms(gw) == 3
    finally:
        sender.stop()
        if runner is not None:
            await runner.cleanup()
    await asyncio.sleep(0)
