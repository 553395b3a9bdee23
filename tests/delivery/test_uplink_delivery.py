"""Uplink delivery against real peers on loopback: an HTTP receiver that verifies signatures and can
fail, stall or refuse; a private Mosquitto; WebSocket and SSE clients of the big-screen feed.

The fault tests check the outbox's promise: every alarm revision arrives, once, in order per alarm,
whatever the upstream or the gateway process does in between."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from gateway.alarms.lifecycle import Change
from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import OutboxRow
from tests.alarms.test_alarm_lifecycle import raise_alarm
from tests.conftest import wait_until, write_config
from tests.peers.http_receiver import HttpReceiver
from tests.peers.mosquitto import MosquittoBroker, find_mosquitto
from tests.peers.ports import free_port

Client = TestClient  # type: ignore[type-arg]
SECRET = "park-hmac-secret-for-tests"
FAST = {
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.3,
    "breaker_failures": 3,
    "breaker_open_s": 0.3,
    "max_attempts": 1000,
}
CAMERA = {"id": "gate-1", "name": "North gate", "url": "rtsp://127.0.0.1:9/none", "enabled": False}


def http_target(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "park",
        "kind": "http",
        "tier": "park",
        "secret_env": "VIGIL_TEST_PARK_SECRET",
        "http": {"url": url, "signing": "hmac", "timeout_s": 1.0},
        "dispatch": FAST,
        **extra,
    }


def make_gateway(tmp: Path, targets: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("VIGIL_TEST_PARK_SECRET", SECRET)
    gw = Gateway(load_config(write_config(tmp, cameras=[CAMERA], uplink=targets), environ={}), analyse=False)
    upgrade(gw.db.engine)
    return gw


def auth(gw: Gateway, role: str = "admin") -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, f"test-{role}", "machine", role)
    return {"Authorization": f"Bearer {secret}"}


def pending(gw: Gateway) -> int:
    with gw.db.session() as s:
        return int(
            s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending")) or 0
        )


def accepted_once_in_order(receiver: HttpReceiver) -> dict[str, list[int]]:
    """Revisions per alarm in the order the receiver accepted them; each key accepted exactly once."""
    ok = [r for r in receiver.requests if r.status == 200]
    keys = [r.idempotency_key for r in ok]
    assert len(keys) == len(set(keys)), "a revision was accepted twice"
    assert all(r.signature_error is None for r in receiver.requests)
    order: dict[str, list[int]] = {}
    for key in keys:
        assert key is not None
        alarm_id, rev = key.split(":")
        order.setdefault(alarm_id, []).append(int(rev))
    return order


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    rec = HttpReceiver(secret=SECRET)
    await rec.start()
    yield rec
    await rec.stop()


async def test_upstream_down_then_back_every_revision_once_in_order(
    tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    gw = make_gateway(tmp_path, [http_target(receiver.url)], monkeypatch)
    await receiver.stop()  # the park platform is down: connections are refused
    client = await aiohttp_client(create_app(gw))
    alarms = [await asyncio.to_thread(raise_alarm, gw, f"r{i}") for i in range(6)]
    for alarm_id in alarms:
        await asyncio.to_thread(gw.lifecycle.apply, alarm_id, Change("confirm", "op"))
        await asyncio.to_thread(gw.lifecycle.apply, alarm_id, Change("clear", "op"))
    await wait_until(
        lambda: gw.uplinks.dispatchers["park"].breaker.state != "closed", 10, "the breaker to open"
    )
    status = await (await client.get("/api/uplinks", headers=auth(gw))).json()
    park = status["items"][0]
    assert park["pending"] == 18 and park["delivered"] == 0 and "retry" in park["last_error"]
    await receiver.start()  # back on the same port, but failing with 503 for a while
    receiver.fail(503, times=5)
    await wait_until(lambda: pending(gw) == 0, 30, "the backlog to drain")
    order = accepted_once_in_order(receiver)
    assert order == {a: [1, 2, 3] for a in alarms}
    assert gw.uplinks.dispatchers["park"].breaker.state == "closed"


async def test_poison_message_goes_to_dead_letter_without_blocking_and_can_be_replayed(
    tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    gw = make_gateway(tmp_path, [http_target(receiver.url)], monkeypatch)
    gw.start()  # the targets exist; nothing is delivered until the app serves
    first = raise_alarm(gw, "poison")
    receiver.poison(f"{first}:1")
    others = [raise_alarm(gw, f"r{i}") for i in range(3)]
    gw.lifecycle.apply(first, Change("confirm", "op"))
    client = await aiohttp_client(create_app(gw))
    await wait_until(lambda: pending(gw) == 0, 15, "delivery")
    order = accepted_once_in_order(receiver)
    assert order[first] == [2] and all(order[a] == [1] for a in others)  # rev 2 was not held back by rev 1
    admin = auth(gw)
    dead = (await (await client.get("/api/uplinks/park/dead", headers=admin)).json())["items"]
    assert [(d["alarm_id"], d["revision"]) for d in dead] == [(first, 1)] and "rejected" in dead[0][
        "last_error"
    ]
    viewer = auth(gw, "viewer")
    assert (await client.post("/api/uplinks/park/replay", json={}, headers=viewer)).status == 403
    receiver.clear()
    r = await client.post("/api/uplinks/park/replay", json={}, headers=admin)
    assert (await r.json())["replayed"] == 1
    await wait_until(lambda: pending(gw) == 0, 15, "the replay")
    assert accepted_once_in_order(receiver)[first] == [2, 1]


async def test_backfill_resends_a_time_range_and_duplicates_count_as_delivered(
    tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    gw = make_gateway(tmp_path, [http_target(receiver.url)], monkeypatch)
    client = await aiohttp_client(create_app(gw))
    alarm_id = await asyncio.to_thread(raise_alarm, gw)
    await wait_until(lambda: pending(gw) == 0, 10, "delivery")
    body = {"since": "2025-11-01T00:00:00Z", "until": "2025-11-30T00:00:00Z"}  # the event's day is inside
    r = await client.post("/api/uplinks/park/backfill", json=body, headers=auth(gw))
    assert (await r.json()) == {"requeued": 1, "created": 0}
    await wait_until(lambda: pending(gw) == 0, 10, "the backfill")
    statuses = [r.status for r in receiver.requests if r.idempotency_key == f"{alarm_id}:1"]
    assert statuses == [200, 409]  # the upstream already had it: a duplicate, delivered
    with gw.db.session() as s:
        row = s.scalars(select(OutboxRow)).one()
        assert row.status == "delivered" and row.last_error and row.last_error.startswith("duplicate")


async def test_big_screen_feed_websocket_and_sse_replay_after_reconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    screen = {"name": "screen", "kind": "websocket", "tier": "big_screen", "dispatch": FAST}
    gw = make_gateway(tmp_path, [screen], monkeypatch)
    client = await aiohttp_client(create_app(gw))
    viewer = auth(gw, "viewer")
    ws = await client.ws_connect("/api/feed/ws", headers=viewer)
    first = await asyncio.to_thread(raise_alarm, gw, "a")
    msg = await receive_alarm(ws)
    assert msg["alarm"]["id"] == first and msg["alarm"]["type"]["code"] == "intrusion"
    last_seq = msg["seq"]
    await ws.close()
    missed = [await asyncio.to_thread(raise_alarm, gw, f"b{i}") for i in range(2)]
    await asyncio.to_thread(gw.lifecycle.apply, first, Change("confirm", "op"))
    await wait_until(lambda: pending(gw) == 0, 10, "the feed to take the records")
    ws = await client.ws_connect(f"/api/feed/ws?since={last_seq}", headers=viewer)
    got = [await receive_alarm(ws) for _ in range(3)]
    assert [(g["alarm"]["id"], g["alarm"]["revision"]) for g in got] == [
        (missed[0], 1),
        (missed[1], 1),
        (first, 2),
    ]
    assert [g["seq"] for g in got] == sorted(g["seq"] for g in got) and got[0]["seq"] > last_seq
    await ws.close()
    # From the durable log: since=0 is older than anything in memory.
    ws = await client.ws_connect("/api/feed/ws?since=0", headers=viewer)
    assert [(await receive_alarm(ws))["alarm"]["id"] for _ in range(4)] == [first, *missed, first]
    await ws.close()
    # SSE with Last-Event-ID, as a browser's EventSource sends it after a reconnect.
    async with client.get("/api/feed/sse", headers={**viewer, "Last-Event-ID": str(got[1]["seq"])}) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        event = await read_sse_alarm(resp)
    assert event["alarm"]["id"] == first and event["seq"] == got[2]["seq"]


async def test_gateway_shutdown_ends_open_screen_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    """Screens hold the feed open for days; a stopping gateway must not wait for them (it would hang
    until its shutdown timeout) but tell them to reconnect."""
    screen = {"name": "screen", "kind": "websocket", "tier": "big_screen", "dispatch": FAST}
    gw = make_gateway(tmp_path, [screen], monkeypatch)
    client = await aiohttp_client(create_app(gw))
    viewer = auth(gw, "viewer")
    ws = await client.ws_connect("/api/feed/ws", headers=viewer)
    sse = await client.get("/api/feed/sse", headers=viewer)
    await wait_until(lambda: len(gw.uplinks.hubs["screen"].subscribers) == 2, 5, "both screens to subscribe")
    await asyncio.wait_for(client.server.app.shutdown(), timeout=5)
    closing = await asyncio.wait_for(ws.receive(), timeout=5)
    while closing.type == aiohttp.WSMsgType.TEXT:  # the statistics sent on connect
        closing = await asyncio.wait_for(ws.receive(), timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.GOING_AWAY
    await asyncio.wait_for(sse.content.read(), timeout=5)  # returns only when the stream has ended
    assert sse.content.at_eof()
    sse.release()
    await ws.close()


async def receive_alarm(ws: Any) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), timeout=10)
        if msg["type"] == "alarm":
            return dict(msg)


async def read_sse_alarm(resp: Any) -> dict[str, Any]:
    event, data = "", ""
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), timeout=10)).decode().rstrip("\n")
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = line.split(":", 1)[1].strip()
        elif line == "" and data:
            if event == "alarm":
                return dict(json.loads(data))
            event, data = "", ""


needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None, reason="Debian package mosquitto not installed"
)


@needs_mosquitto
async def test_mqtt_target_delivers_on_puback_after_the_broker_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    broker = MosquittoBroker()
    broker.start()
    try:
        bus = {
            "name": "plant-bus",
            "kind": "mqtt",
            "tier": "enterprise",
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "topic": "vigil/{scene}",
                "publish_timeout_s": 2,
            },
            "dispatch": FAST,
        }
        gw = make_gateway(tmp_path, [bus], monkeypatch)
        broker.stop()
        await aiohttp_client(create_app(gw))
        alarm_id = await asyncio.to_thread(raise_alarm, gw)
        await asyncio.sleep(0.5)
        assert pending(gw) == 1  # kept while the broker is away
        broker.start()
        async with aiomqtt.Client(broker.host, broker.port, identifier="safety-system") as sub:
            await sub.subscribe("vigil/#", qos=1)
            await wait_until(lambda: pending(gw) == 0, 20, "the MQTT delivery")
            message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)
        payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
        assert str(message.topic) == "vigil/intrusion" and payload["id"] == alarm_id
    finally:
        broker.cleanup()


# --- the gateway killed mid-delivery ----------------------------------------------------------------


def serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VIGIL_TEST_PARK_SECRET": SECRET}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_gateway_killed_during_delivery_loses_nothing(
    tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    target = http_target(receiver.url)
    target["dispatch"] = {**FAST, "concurrency": 2}
    config = write_config(
        tmp_path, cameras=[CAMERA], uplink=[target], server={"host": "127.0.0.1", "port": port}
    )
    gw = Gateway(load_config(config, environ={}), analyse=False)
    upgrade(gw.db.engine)
    gw.start()
    alarms = [raise_alarm(gw, f"r{i}") for i in range(20)]  # queued before the gateway serves
    gw.stop()
    receiver.stall(0.4, times=1000)  # each delivery takes a while: the kill lands mid-flight
    log = tmp_path / "gateway.log"
    proc = serve(config, log)
    try:
        await wait_until(lambda: len(receiver.requests) >= 6, 60, f"deliveries to start ({log})")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        in_flight = len(receiver.requests)
        receiver.clear()
        proc = serve(config, log)
        await wait_until(lambda: pending(gw) == 0, 60, "the restarted gateway to drain the outbox")
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    order = accepted_once_in_order(receiver)
    assert sorted(order) == sorted(alarms) and all(v == [1] for v in order.values())
    duplicates = [r for r in receiver.requests if r.status == 409]
    assert in_flight >= 6
    # Whatever was acknowledged upstream but not yet recorded came again, and was answered "duplicate".
    assert all(r.idempotency_key in receiver.accepted for r in duplicates)


def test_uplink_cli_status_dead_replay_and_backfill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.cli import main

    gw = make_gateway(tmp_path, [http_target("http://127.0.0.1:9/unused")], monkeypatch)
    gw.start()
    alarm_id = raise_alarm(gw)
    with gw.db.session() as s:
        row = s.scalars(select(OutboxRow)).one()
        row.status, row.last_error = "dead", "rejected: 400 bad field"
    config = ["--config", str(tmp_path / "gateway.yaml")]
    assert main([*config, "uplink", "status"]) == 0
    assert main([*config, "uplink", "dead", "park"]) == 0
    assert main([*config, "uplink", "replay", "park"]) == 0
    assert pending(gw) == 1
    days = ["--since", "2025-11-01", "--until", "2025-11-30"]
    assert main([*config, "uplink", "backfill", "park", *days]) == 0
    with gw.db.session() as s:
        assert s.scalars(select(OutboxRow)).one().alarm_id == alarm_id  # already queued: nothing added
    with pytest.raises(SystemExit, match="no uplink target 'nope'"):
        main([*config, "uplink", "dead", "nope"])
