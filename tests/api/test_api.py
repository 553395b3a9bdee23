"""The HTTP API: authentication and roles, scoped tokens, JSON errors, size limits, no half-stored input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.db.schema import Camera, CameraScene, User
from tests.conftest import PASSWORD, login, make_gateway

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, users=("admin", "operator", "viewer"))
    gw.config.server.max_body_mb = 0.01  # 10 KB: small enough to test the limit
    return gw


def token(
    gw: Gateway, role: str, scopes: set[str] | None = None, ttl: dt.timedelta | None = None
) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, f"t-{role}", "machine", role, scopes, ttl=ttl)
    return {"Authorization": f"Bearer {secret}"}


CAMERA = {
    "id": "gate-1",
    "name": "Gate",
    "url": "rtsp://viewer:s3cret-pw@127.0.0.1:9/main",
    "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": [[0, 0], [1, 0], [1, 1]]}]}],
}


async def test_health_is_public(client: Client) -> None:
    r = await client.get("/healthz")
    assert r.status == 200
    assert (await r.json())["database"] == "ok"


@pytest.mark.parametrize(
    "path", ["/api/alarms", "/api/cameras", "/metrics", "/api/openapi.json", "/api/users"]
)
async def test_no_token_is_401(client: Client, path: str) -> None:
    r = await client.get(path)
    assert r.status == 401
    body = await r.json()
    assert "Authorization: Bearer" in body["error"]["message"]


async def test_bad_and_expired_tokens_are_401(client: Client, gateway: Gateway) -> None:
    r = await client.get("/api/alarms", headers={"Authorization": "Bearer vgl_nope"})
    assert r.status == 401
    expired = token(gateway, "viewer", ttl=dt.timedelta(seconds=-1))
    r = await client.get("/api/alarms", headers=expired)
    assert r.status == 401 and "expired" in (await r.json())["error"]["message"]


async def test_wrong_role_is_403(client: Client) -> None:
    viewer = await login(client, "viewer")
    assert (await client.get("/api/alarms", headers=viewer)).status == 200
    r = await client.post("/api/cameras", json=CAMERA, headers=viewer)
    assert r.status == 403
    assert "role 'viewer'" in (await r.json())["error"]["message"]
    operator = await login(client, "operator")
    assert (await client.get("/api/users", headers=operator)).status == 403


async def test_token_scopes(client: Client, gateway: Gateway) -> None:
    alarms_only = token(gateway, "admin", {"alarms:read"})
    assert (await client.get("/api/alarms", headers=alarms_only)).status == 200
    r = await client.get("/api/cameras", headers=alarms_only)
    assert r.status == 403 and "scope 'cameras:read'" in (await r.json())["error"]["message"]
    metrics = token(gateway, "viewer", {"metrics:read"})
    r = await client.get("/metrics", headers=metrics)
    assert r.status == 200 and "vigil_uptime_seconds" in await r.text()


async def test_token_scopes_cannot_exceed_role(client: Client) -> None:
    admin = await login(client, "admin")
    r = await client.post(
        "/api/tokens", json={"name": "x", "role": "viewer", "scopes": ["users:write"]}, headers=admin
    )
    assert r.status == 422 and "cannot hold" in (await r.json())["error"]["message"]
    r = await client.post(
        "/api/tokens",
        json={"name": "cb", "role": "operator", "kind": "callback", "scopes": ["alarms:write"]},
        headers=admin,
    )
    assert r.status == 201
    created = await r.json()
    cb = {"Authorization": f"Bearer {created['token']}"}
    assert (await client.get("/api/alarms", headers=cb)).status == 403  # write scope only
    listed = await (await client.get("/api/tokens", headers=admin)).json()
    assert all("token" not in t and "token_hash" not in t for t in listed["items"])
    assert (await client.delete(f"/api/tokens/{created['id']}", headers=admin)).status == 200
    assert (await client.post("/api/alarms/x/clear", json={}, headers=cb)).status == 401


async def test_login_wrong_password_and_guard(client: Client) -> None:
    for _ in range(5):  # server.login_failures_per_account
        r = await client.post("/api/auth/login", json={"username": "admin", "password": "wrong password"})
        assert r.status == 401
    r = await client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status == 429 and "try again" in (await r.json())["error"]["message"]


async def test_logout_revokes_session(client: Client) -> None:
    headers = await login(client, "operator")
    assert (await client.post("/api/auth/logout", headers=headers)).status == 200
    assert (await client.get("/api/me", headers=headers)).status == 401


async def test_malformed_json_is_400(client: Client) -> None:
    admin = await login(client, "admin")
    r = await client.post(
        "/api/cameras", data=b'{"id": "x",', headers={**admin, "Content-Type": "application/json"}
    )
    assert r.status == 400
    assert "malformed JSON" in (await r.json())["error"]["message"]


async def test_oversized_body_is_413(client: Client) -> None:
    admin = await login(client, "admin")
    big = {**CAMERA, "name": "x" * 20_000}
    r = await client.post("/api/cameras", json=big, headers=admin)
    assert r.status == 413
    assert "too large" in (await r.json())["error"]["message"]


async def test_unknown_fields_rejected_and_nothing_stored(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    bad = {**CAMERA, "scenes": [{**CAMERA["scenes"][0], "threshhold": 0.5}]}  # type: ignore[dict-item]
    r = await client.post("/api/cameras", json=bad, headers=admin)
    assert r.status == 422
    body = await r.json()
    assert body["error"]["details"][0] == {"field": "scenes.0.threshhold", "problem": "unknown field"}
    bad_polygon = {
        **CAMERA,
        "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": [[0, 0]]}]}],
    }
    assert (await client.post("/api/cameras", json=bad_polygon, headers=admin)).status == 422
    with gateway.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Camera)) == 0
        assert s.scalar(select(func.count()).select_from(CameraScene)) == 0


async def test_camera_created_and_credentials_never_returned(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    r = await client.post("/api/cameras", json=CAMERA, headers=admin)
    assert r.status == 201, await r.text()
    text = await (await client.get("/api/cameras", headers=admin)).text()
    assert "s3cret-pw" not in text and "viewer:" not in text
    assert "rtsp://***@127.0.0.1:9/main" in text
    assert (await client.post("/api/cameras", json=CAMERA, headers=admin)).status == 409


async def test_openapi_lists_every_route(client: Client) -> None:
    viewer = await login(client, "viewer")
    doc: dict[str, Any] = await (await client.get("/api/openapi.json", headers=viewer)).json()
    assert doc["openapi"].startswith("3.")
    for path in ("/healthz", "/api/alarms", "/api/cameras", "/api/auth/login", "/metrics"):
        assert path in doc["paths"]
    assert doc["paths"]["/api/auth/login"]["post"]["security"] == []
    assert "CameraConfig" in doc["components"]["schemas"]


async def test_unknown_route_is_json_404(client: Client) -> None:
    r = await client.get("/api/nothing-here")
    assert r.status == 404
    assert (await r.json())["error"]["status"] == 404


async def test_users_admin_only_and_password_hashed(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    r = await client.post(
        "/api/users", json={"username": "li.wei", "password": "short", "role": "operator"}, headers=admin
    )
    assert r.status == 422
    r = await client.post(
        "/api/users",
        json={"username": "li.wei", "password": "a long passphrase", "role": "operator"},
        headers=admin,
    )
    assert r.status == 201
    with gateway.db.session() as s:
        stored = s.scalar(select(User.password_hash).where(User.username == "li.wei"))
    assert stored is not None and stored.startswith("$argon2id$")
    listed = await (await client.get("/api/users", headers=admin)).text()
    assert "argon2" not in listed and "passphrase" not in listed
