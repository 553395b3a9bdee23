"""The alarm lifecycle through the API a safety-management system calls back: every transition, its
audit trail and uplink rows, idempotency, and bad input that changes nothing."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from analyzers import AlarmEvent, Detection, Region
from gateway.alarms.recorder import SceneContext
from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.db.schema import Alarm, AlarmRevision, Disposal, Evidence, OutboxRow
from tests.conftest import login, make_gateway

Client = TestClient  # type: ignore[type-arg]
PASSWORD = "correct horse battery"
IMAGE = np.full((120, 160, 3), 90, dtype=np.uint8)
CTX = SceneContext(None, {}, None, [Region("r", [(0, 0), (1, 0), (1, 1)])])


def jpeg_b64(size: int = 64) -> str:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


_APART = itertools.count()


def raise_alarm(gw: Gateway, region: str = "r") -> str:
    """A new alarm: each one 11 minutes after the last, beyond the repeat rules' default windows
    (cooldown, same-target merge, flood guard), so that none is merged into another."""
    start = 1_763_700_000.0 + 660.0 * next(_APART)
    event = AlarmEvent(
        "gate-1",
        "intrusion",
        region,
        occurred_at=start,
        raised_at=start + 3.0,
        score=0.9,
        message="1 person(s) entered",
        detections=(Detection((10, 10, 40, 90), 0.9, 0, "person"),),
    )
    alarm_id = gw.recorder.record(event, IMAGE, CTX)
    assert alarm_id is not None
    return alarm_id


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(
        tmp_path,
        start=True,  # syncs the camera and the targets (no analysis)
        users=("operator", "viewer"),
        cameras=[
            {
                "id": "gate-1",
                "name": "North gate",
                "location": "tank farm",
                "url": "rtsp://127.0.0.1:9/none",
                "enabled": False,
                "alarm": {"recipients": [{"name": "Wang Wei", "contact": "13800000000", "role": "安全员"}]},
            }
        ],
        uplink=[
            {"name": "park", "kind": "http", "tier": "park", "http": {"url": "http://127.0.0.1:9/a"}},
            {
                "name": "county",
                "kind": "http",
                "tier": "county",
                "actions": ["raised", "cleared"],
                "http": {"url": "http://127.0.0.1:9/b"},
            },
        ],
    )
    return gw


@pytest.fixture
async def client(gateway: Gateway, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    return await aiohttp_client(create_app(gateway, start_gateway=False))


def callback_token(gw: Gateway, scopes: set[str] | None = None) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(
            s, "sms-callback", "callback", "operator", scopes or {"alarms:read", "alarms:write"}
        )
    return {"Authorization": f"Bearer {secret}"}


def snapshot(gw: Gateway, alarm_id: str) -> tuple[Any, ...]:
    """Everything a refused request must leave untouched."""
    with gw.db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        return (
            alarm.status,
            alarm.revision,
            alarm.verdict,
            s.scalar(
                select(func.count()).select_from(AlarmRevision).where(AlarmRevision.alarm_id == alarm_id)
            ),
            s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.alarm_id == alarm_id)),
            s.scalar(select(func.count()).select_from(Evidence).where(Evidence.alarm_id == alarm_id)),
            s.scalar(select(func.count()).select_from(Disposal).where(Disposal.alarm_id == alarm_id)),
        )


async def test_full_lifecycle_with_audit_trail_and_uplink_rows(gateway: Gateway, client: Client) -> None:
    alarm_id = raise_alarm(gateway)
    cb = callback_token(gateway)
    r = await client.post(f"/api/alarms/{alarm_id}/confirm", json={"note": "seen on camera"}, headers=cb)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["status"] == "confirmed" and body["verdict"] == "true_positive" and body["changed"]
    dispose = {
        "handler": "Li Ming",
        "result": "worker escorted out of the zone",
        "measures": "fence repaired",
        "photos": [{"data": jpeg_b64()}],
    }
    r = await client.post(f"/api/alarms/{alarm_id}/dispose", json=dispose, headers=cb)
    assert r.status == 200, await r.text()
    assert (await r.json())["status"] == "disposed"
    picture = jpeg_b64(32)
    r = await client.post(f"/api/alarms/{alarm_id}/clear", json={"picture": picture}, headers=cb)
    assert r.status == 200 and (await r.json())["cleared_at"]
    r = await client.post(f"/api/alarms/{alarm_id}/close", json={}, headers=cb)
    assert r.status == 200
    body = await r.json()
    assert body["status"] == "closed" and body["closed_at"]
    assert [(x["revision"], x["action"]) for x in body["revisions"]] == [
        (1, "raised"),
        (2, "confirmed"),
        (3, "disposed"),
        (4, "cleared"),
        (5, "closed"),
    ]
    assert {x["actor"] for x in body["revisions"][1:]} == {"sms-callback"}
    assert body["disposals"][0]["handler"] == "Li Ming" and len(body["disposals"][0]["photos"]) == 1
    kinds = sorted(e["kind"] for e in body["evidence"])
    assert kinds == ["clear_snapshot", "photo", "snapshot", "snapshot_raw"]
    clear_pic = next(e for e in body["evidence"] if e["kind"] == "clear_snapshot")
    r = await client.get(clear_pic["url"], headers=cb)
    assert r.status == 403  # a callback token only calls back; evidence is for people (issue 19 item 16)
    r = await client.get(clear_pic["url"], headers=await login(client, "viewer"))
    assert r.status == 200 and await r.read() == base64.b64decode(picture)

    with gateway.db.session() as s:
        rows = list(s.scalars(select(OutboxRow).where(OutboxRow.alarm_id == alarm_id).order_by(OutboxRow.id)))
        park = [(r.alarm_revision, r.payload["action"]) for r in rows if r.target_id == 1]
        county = [(r.alarm_revision, r.payload["action"]) for r in rows if r.target_id == 2]
        last = rows[-1].payload
    assert park == [(1, "raised"), (2, "confirmed"), (3, "disposed"), (4, "cleared"), (5, "closed")]
    assert county == [(1, "raised"), (4, "cleared")]  # that target only wants raise and clear
    # The canonical record carries what the regulator asks for.
    assert last["type"]["zh"] == "区域入侵" and last["type"]["gb_alarm_type"] == 6
    assert last["camera"] == {
        "id": "gate-1",
        "name": "North gate",
        "location": "tank farm",
        "gb_channel_id": None,
    }
    assert last["disposal"]["result"] == "worker escorted out of the zone"
    assert last["cleared_at"] and last["occurred_at"].endswith("+00:00")
    assert last["recipients"][0]["name"] == "Wang Wei"
    assert {e["kind"] for e in last["evidence"]} >= {"snapshot", "clear_snapshot", "photo"}


async def test_reject_rearms_and_close_needs_a_verdict(gateway: Gateway, client: Client) -> None:
    cb = callback_token(gateway)
    first = raise_alarm(gateway)
    r = await client.post(f"/api/alarms/{first}/reject", json={"reason": "shadow of a tree"}, headers=cb)
    assert r.status == 200 and (await r.json())["verdict_reason"] == "shadow of a tree"
    assert gateway.recorder.open_event_keys() == set()  # a false positive no longer holds the rule
    r = await client.post(f"/api/alarms/{first}/close", json={}, headers=cb)
    assert r.status == 200 and (await r.json())["status"] == "closed"

    second = raise_alarm(gateway)
    await client.post(f"/api/alarms/{second}/clear", json={}, headers=cb)
    r = await client.post(f"/api/alarms/{second}/close", json={}, headers=cb)
    assert r.status == 409 and "confirm or reject" in (await r.json())["error"]["message"]
    await client.post(f"/api/alarms/{second}/confirm", json={}, headers=cb)  # after the clear: allowed
    r = await client.post(f"/api/alarms/{second}/close", json={}, headers=cb)
    assert r.status == 409 and "disposal" in (await r.json())["error"]["message"]


async def test_idempotency_key_and_repeated_requests_change_nothing(gateway: Gateway, client: Client) -> None:
    alarm_id = raise_alarm(gateway)
    cb = {**callback_token(gateway), "Idempotency-Key": "sms-req-0001"}
    r1 = await client.post(f"/api/alarms/{alarm_id}/confirm", json={}, headers=cb)
    before = snapshot(gateway, alarm_id)
    r2 = await client.post(f"/api/alarms/{alarm_id}/confirm", json={}, headers=cb)
    assert r1.status == r2.status == 200
    assert (await r1.json())["changed"] and not (await r2.json())["changed"]
    assert snapshot(gateway, alarm_id) == before
    # A retried disposal with the same key is not recorded twice.
    body = {"handler": "Li", "result": "done"}
    cb["Idempotency-Key"] = "sms-req-0002"
    for _ in range(2):
        assert (await client.post(f"/api/alarms/{alarm_id}/dispose", json=body, headers=cb)).status == 200
    assert snapshot(gateway, alarm_id)[-1] == 1


async def test_bad_callbacks_get_a_clear_4xx_and_change_nothing(gateway: Gateway, client: Client) -> None:
    alarm_id = raise_alarm(gateway)
    cb = callback_token(gateway)
    before = snapshot(gateway, alarm_id)

    async def refused(path: str, body: Any, headers: dict[str, str], status: int, words: str) -> None:
        r = await client.post(path, json=body, headers=headers)
        assert r.status == status, await r.text()
        assert words in (await r.json())["error"]["message"]
        assert snapshot(gateway, alarm_id) == before

    base = f"/api/alarms/{alarm_id}"
    await refused("/api/alarms/01NOSUCHALARM0000000000000/confirm", {}, cb, 404, "no alarm")
    await refused(f"{base}/dispose", {"handler": "Li", "result": "x"}, cb, 409, "confirm alarm")
    await refused(f"{base}/close", {}, cb, 409, "before closing")
    await refused(f"{base}/reject", {}, cb, 422, "reason")
    await refused(f"{base}/confirm", {"verdict": "yes"}, cb, 422, "unknown field")
    await refused(f"{base}/confirm", {}, {"Authorization": "Bearer vgl_not-a-token"}, 401, "token")
    viewer = await client.post("/api/auth/login", json={"username": "viewer", "password": PASSWORD})
    viewer_auth = {"Authorization": f"Bearer {(await viewer.json())['token']}"}
    await refused(f"{base}/confirm", {}, viewer_auth, 403, "alarms:write")
    read_only = callback_token(gateway, {"alarms:read"})
    await refused(f"{base}/confirm", {}, read_only, 403, "alarms:write")

    await client.post(f"{base}/confirm", json={}, headers=cb)
    before = snapshot(gateway, alarm_id)
    big = base64.b64encode(b"\xff\xd8\xff" + b"\0" * (1100 * 1024)).decode()
    r = await client.post(
        f"{base}/dispose", json={"handler": "Li", "result": "x", "photos": [{"data": big}]}, headers=cb
    )
    assert r.status == 413 and snapshot(gateway, alarm_id) == before  # body limit or photo limit: both 413
    await refused(
        f"{base}/dispose", {"handler": "Li", "result": "x", "photos": [{"data": "@@@"}]}, cb, 422, "base64"
    )
    not_image = base64.b64encode(b"GIF89a" + b"\0" * 100).decode()
    await refused(
        f"{base}/dispose",
        {"handler": "Li", "result": "x", "photos": [{"data": not_image}]},
        cb,
        422,
        "JPEG or PNG",
    )
    broken = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x13" * 200).decode()
    await refused(
        f"{base}/dispose", {"handler": "Li", "result": "x", "photos": [{"data": broken}]}, cb, 422, "damaged"
    )
    await refused(
        f"{base}/dispose",
        {"handler": "Li", "result": "x", "handled_at": "2999-01-01T00:00:00Z"},
        cb,
        422,
        "future",
    )
