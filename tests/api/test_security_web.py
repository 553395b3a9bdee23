"""Issue 19 items 17 and 18: security headers and no version banner, CSRF (Origin) on cookie writes, the
WebSocket feed refuses a foreign Origin, 405 says what is allowed, an Idempotency-Key reused for another
action is refused, a camera through the API is a network stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway.app import Gateway
from gateway.db.schema import Alarm
from tests.conftest import PASSWORD, login, make_gateway

Client = TestClient
EVIL = "https://evil.example"


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    screen = {"name": "screen", "kind": "websocket", "tier": "big_screen"}
    gw: Gateway = make_gateway(tmp_path, users=("admin", "operator"), uplink=[screen], start=True)
    return gw


def own_origin(client: Client) -> str:
    return f"http://{client.server.host}:{client.server.port}"


CAMERA = {
    "id": "gate-1",
    "name": "Gate",
    "url": "rtsp://127.0.0.1:9/main",
    "enabled": False,
    "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": [[0, 0], [1, 0], [1, 1]]}]}],
}


# --- item 17 -------------------------------------------------------------------------------------


async def test_security_headers_on_every_answer_and_no_version_banner(client: Client) -> None:
    admin = await login(client, "admin")
    for path, headers in (("/", {}), ("/healthz", {}), ("/api/alarms", admin), ("/api/nope", admin)):
        r = await client.get(path, headers=headers)
        h = r.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
        assert "default-src 'self'" in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Server"] == "vigil"  # no Python/aiohttp versions
        assert "Strict-Transport-Security" not in h  # HSTS only under TLS (tests/security/test_tls.py)


async def test_cookie_authenticated_writes_need_our_origin(client: Client, gateway: Gateway) -> None:
    r = await client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status == 200 and "vigil_session" in r.cookies  # the cookie jar sends it from now on
    # a write that only the cookie authenticates, from no page we know: refused
    r = await client.post("/api/cameras", json=CAMERA)
    assert r.status == 403 and "Origin" in (await r.json())["error"]["message"]
    r = await client.post("/api/cameras", json=CAMERA, headers={"Origin": EVIL})
    assert r.status == 403 and "evil.example" in (await r.json())["error"]["message"]
    r = await client.post("/api/cameras", json=CAMERA, headers={"Referer": f"{EVIL}/x"})
    assert r.status == 403
    # the console's own page: passes
    assert (await client.get("/api/cameras")).status == 200  # reads need no Origin
    r = await client.post("/api/cameras", json=CAMERA, headers={"Origin": own_origin(client)})
    assert r.status == 201, await r.text()
    r = await client.delete("/api/cameras/gate-1", headers={"Referer": own_origin(client) + "/#/cameras"})
    assert r.status == 200
    # a machine with a bearer token sends no Origin: not a browser, no CSRF
    client.session.cookie_jar.clear()
    admin = await login(client, "admin")
    client.session.cookie_jar.clear()
    assert (await client.post("/api/cameras", json=CAMERA, headers=admin)).status == 201
    # a foreign page cannot log a victim into the attacker's account either
    r = await client.post(
        "/api/auth/login", json={"username": "admin", "password": PASSWORD}, headers={"Origin": EVIL}
    )
    assert r.status == 403
    refused = [e for e in gateway_audit(gateway) if e["event"] == "origin_refused"]
    assert len(refused) == 4 and {e.get("origin") for e in refused} >= {EVIL}


def gateway_audit(gw: Gateway) -> list[dict[str, Any]]:
    from gateway.security_log import SecurityLog

    return SecurityLog(gw.config.storage.root / "security.log").read(limit=0)


async def test_the_websocket_feed_refuses_a_foreign_origin(client: Client) -> None:
    admin = await login(client, "admin")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/feed/ws", headers={**admin, "Origin": EVIL})
    assert refused.value.status == 403
    ws = await client.ws_connect("/api/feed/ws", headers={**admin, "Origin": own_origin(client)})
    await ws.close()
    ws = await client.ws_connect("/api/feed/ws", headers=admin)  # a program: no Origin
    await ws.close()


# --- item 18 -------------------------------------------------------------------------------------


async def test_405_says_which_methods_are_allowed(client: Client) -> None:
    admin = await login(client, "admin")
    r = await client.delete("/api/alarms", headers=admin)
    assert r.status == 405
    assert "GET" in r.headers["Allow"]
    assert "not allowed" in (await r.json())["error"]["message"]


async def test_an_idempotency_key_reused_for_another_action_is_refused(
    client: Client, gateway: Gateway
) -> None:
    from gateway.cli.seed import seed

    seed(gateway.db, gateway.store, cameras=1, alarms=40, days=1, seed_value=3, timezone="UTC")
    with gateway.db.session() as s:
        alarm_id = s.scalars(select(Alarm.id).where(Alarm.status == "raised")).first()
    assert alarm_id is not None
    op = await login(client, "operator")
    key = {"Idempotency-Key": "cb-0001"}
    r = await client.post(f"/api/alarms/{alarm_id}/confirm", json={}, headers={**op, **key})
    assert r.status == 200 and (await r.json())["changed"] is True
    r = await client.post(f"/api/alarms/{alarm_id}/confirm", json={}, headers={**op, **key})
    assert r.status == 200 and (await r.json())["changed"] is False  # the retry: nothing new
    r = await client.post(f"/api/alarms/{alarm_id}/reject", json={"reason": "no"}, headers={**op, **key})
    assert r.status == 409
    assert "Idempotency-Key 'cb-0001' was already used" in (await r.json())["error"]["message"]
    with gateway.db.session() as s:
        assert s.get(Alarm, alarm_id).status == "confirmed"  # type: ignore[union-attr]


async def test_a_camera_through_the_api_is_a_network_stream(client: Client, tmp_path: Path) -> None:
    admin = await login(client, "admin")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really")
    for url in ("", "   ", str(video), f"file://{video}", "./clip.mp4"):
        r = await client.post("/api/cameras", json={**CAMERA, "url": url}, headers=admin)
        assert r.status == 422, (url, await r.text())
    r = await client.post("/api/cameras", json={**CAMERA, "sub_url": "/etc/passwd.mp4"}, headers=admin)
    assert r.status == 422 and "local file" in (await r.json())["error"]["message"]
    r = await client.post("/api/cameras/test", json={"url": "/etc/hosts.mp4"}, headers=admin)
    assert r.status == 422
