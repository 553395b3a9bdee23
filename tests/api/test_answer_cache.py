"""The cache of read answers (gateway/api/cache.py) and of resolved tokens (gateway/api/principal_cache.py):
a repeated request is served from the cache, and a write (a new alarm, a lifecycle action, a revoked
token) is visible on the very next request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from gateway.api.cache import CACHE
from gateway.app import Gateway
from gateway.db.changes import generation, written_group
from gateway.db.schema import Alarm, ApiToken
from tests.conftest import login, make_gateway

NEW_ID = "01KZZZZZZZZZZZZZZZZZZZZZZZ"  # sorts after every seeded or earlier id: first on the list


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return make_gateway(tmp_path, users=("admin", "viewer"))


def add_alarm(gw: Gateway, alarm_id: str, scene: str = "intrusion") -> None:
    now = dt.datetime.now(dt.UTC)
    with gw.db.session() as s:
        s.add(
            Alarm(
                id=alarm_id,
                scene=scene,
                region="r1",
                event_key=f"cam/{scene}/r1/{alarm_id}",
                message="1 person(s) entered region 'r1'",
                occurred_at=now,
                raised_at=now,
            )
        )


async def get_json(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    r = await client.get(path, headers=headers)
    assert r.status == 200, await r.text()
    return await r.json()


def test_write_statements_name_their_group() -> None:
    assert written_group("INSERT INTO alarms (id) VALUES (?)") == "alarms"
    assert written_group('UPDATE "alarm_revisions" SET note=?') == "alarms"
    assert written_group("delete from api_tokens where id = ?") == "auth"
    assert written_group("SELECT * FROM alarms") is None
    assert written_group("UPDATE outbox SET status=?") is None


async def test_new_alarm_shows_in_cached_overview_statistics_and_list(
    client: TestClient, gateway: Gateway
) -> None:
    viewer = await login(client, "viewer")
    add_alarm(gateway, "01KAAAAAAAAAAAAAAAAAAAAAAA")
    paths = ("/api/stats/overview", "/api/stats/alarms?group=scene", "/api/alarms?count=1")
    first = {p: await get_json(client, p, viewer) for p in paths}
    cache = client.app[CACHE]
    misses = cache.misses
    again = {p: await get_json(client, p, viewer) for p in paths}
    assert cache.misses == misses and cache.hits >= len(paths)  # served from the cache
    assert (
        again["/api/stats/overview"]["today"]["total"] == first["/api/stats/overview"]["today"]["total"] == 1
    )

    before = generation("alarms")
    add_alarm(gateway, NEW_ID, scene="helmet")
    assert generation("alarms") > before
    overview = await get_json(client, "/api/stats/overview", viewer)
    assert overview["today"]["total"] == 2 and overview["today"]["by_scene"] == {"intrusion": 1, "helmet": 1}
    assert overview["open_total"] == 2 and overview["latest"][0]["id"] == NEW_ID
    by_scene = await get_json(client, "/api/stats/alarms?group=scene", viewer)
    assert by_scene["total"] == 2 and {i["key"]: i["count"] for i in by_scene["items"]} == {
        "intrusion": 1,
        "helmet": 1,
    }
    listed = await get_json(client, "/api/alarms?count=1", viewer)
    assert listed["total"] == 2 and listed["items"][0]["id"] == NEW_ID


async def test_lifecycle_action_through_the_api_shows_at_once(client: TestClient, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    add_alarm(gateway, NEW_ID)
    assert (await get_json(client, "/api/alarms?status=open&count=1", admin))["total"] == 1
    assert (await get_json(client, "/api/stats/overview", admin))["today"]["open"] == 1
    assert (await get_json(client, f"/api/alarms/{NEW_ID}", admin))["status"] == "raised"
    r = await client.post(f"/api/alarms/{NEW_ID}/reject", json={"reason": "a shadow"}, headers=admin)
    assert r.status == 200, await r.text()
    assert (await get_json(client, "/api/alarms?status=open&count=1", admin))["total"] == 0
    overview = await get_json(client, "/api/stats/overview", admin)
    assert overview["today"]["open"] == 0 and overview["today"]["handled"] == 1
    detail = await get_json(client, f"/api/alarms/{NEW_ID}", admin)
    assert detail["status"] == "rejected" and [r["action"] for r in detail["revisions"]][-1] == "rejected"


async def test_revoked_token_is_refused_on_the_next_request(client: TestClient, gateway: Gateway) -> None:
    viewer = await login(client, "viewer")
    assert (await client.get("/api/me", headers=viewer)).status == 200
    assert (await client.get("/api/me", headers=viewer)).status == 200  # now from the principal cache
    with gateway.db.session() as s:
        s.execute(update(ApiToken).values(revoked_at=dt.datetime.now(dt.UTC)))
    r = await client.get("/api/me", headers=viewer)
    assert r.status == 401
