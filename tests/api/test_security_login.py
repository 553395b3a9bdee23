"""Issue 19 items 11, 12 and 16: login protection that holds under parallel attempts, per account and
per address with backoff, without locking out a NAT; audited; password hashing on its own bounded
pool; token scopes per route (callback tokens) and a demoted user's own session."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

import gateway.auth as auth
from gateway.api.guard import LoginGuard, LoginRefused
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cli.main import main
from tests.conftest import PASSWORD, login, make_gateway

Client = TestClient
WRONG = "not the password"


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    server = {
        "host": "127.0.0.1",
        "port": 18080,
        "login_failures_per_account": 5,
        "login_failures_per_address": 7,
        "hash_workers": 1,
        "hash_queue": 2,
    }
    gw: Gateway = make_gateway(tmp_path, users=("admin", "operator", "viewer"), server=server)
    return gw


async def attempt(client: Client, username: str, password: str = WRONG) -> int:
    r = await client.post("/api/auth/login", json={"username": username, "password": password})
    return r.status


# --- item 11 -------------------------------------------------------------------------------------


async def test_parallel_wrong_logins_get_no_more_tries_than_the_limit(client: Client) -> None:
    statuses = await asyncio.gather(*(attempt(client, "admin") for _ in range(100)))
    # 5 places for the account: the other 95 are refused before any password is checked (a place
    # given back by a 503 "busy hashing" is not a failure)
    assert statuses.count(401) + statuses.count(503) <= 5
    assert statuses.count(429) >= 95
    wrong = statuses.count(401)
    while (status := await attempt(client, "admin")) == 401:
        wrong += 1
    assert status == 429 and wrong == 5
    assert await attempt(client, "admin", PASSWORD) == 429  # even the right password waits now


async def test_a_success_on_another_account_does_not_reset_the_count(client: Client) -> None:
    for _ in range(5):
        assert await attempt(client, "admin") == 401
    assert await attempt(client, "admin") == 429
    await login(client, "viewer")  # the attacker's own account
    assert await attempt(client, "admin") == 429


async def test_many_accounts_from_one_address_hit_the_address_limit_but_not_a_known_user(
    client: Client,
) -> None:
    await login(client, "operator")  # logged in from this address before: a colleague behind the NAT
    statuses = [await attempt(client, f"guess{i}") for i in range(8)]
    assert statuses == [401] * 7 + [429]
    assert await attempt(client, "someone-new") == 429  # the address waits...
    r = await client.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    assert r.status == 200  # ...but not everyone behind it


async def test_failed_logins_and_lockouts_are_in_the_security_log(
    client: Client, gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(6):
        await attempt(client, "admin")
    admin = await login(client, "viewer")
    assert (await client.get("/api/audit", headers=admin)).status == 403  # users:read only
    with gateway.db.session() as s:
        secret, _ = issue_token(s, "auditor", "machine", "admin", {"users:read"})
    r = await client.get("/api/audit?event=login_failed", headers={"Authorization": f"Bearer {secret}"})
    items = (await r.json())["items"]
    assert len(items) == 5 and all(i["username"] == "admin" and i["address"] == "127.0.0.1" for i in items)
    assert all(WRONG not in str(i) for i in items)  # never the password tried
    assert main(["--config", str(tmp_path / "gateway.yaml"), "audit", "--event", "login_locked"]) == 0
    out = capsys.readouterr().out
    assert "login_locked" in out and "account=admin" in out and "seconds=2.0" in out


def test_backoff_doubles_and_allows_one_probe_after_each_lock() -> None:
    now = [1000.0]
    guard = LoginGuard(per_account=3, per_address=100, window_s=900, first_lock_s=2, clock=lambda: now[0])
    for _ in range(2):
        guard.failed(guard.admit("admin", "10.0.0.1"))
    locks = guard.failed(guard.admit("admin", "10.0.0.1"))
    assert [(lk.key, lk.seconds) for lk in locks] == [("account:admin", 2.0)]
    with pytest.raises(LoginRefused, match="account; try again in 2 s"):
        guard.admit("admin", "10.0.0.2")  # another address: the account's lock holds
    now[0] += 2.5
    probe = guard.admit("admin", "10.0.0.2")  # one probe after the lock
    with pytest.raises(LoginRefused):
        guard.admit("admin", "10.0.0.3")  # a second one while the probe is out
    assert [lk.seconds for lk in guard.failed(probe)] == [4.0]  # doubled
    now[0] += 4.5
    assert [lk.seconds for lk in guard.failed(guard.admit("admin", "10.0.0.4"))] == [8.0]
    now[0] += 8.5
    guard.succeeded(guard.admit("admin", "10.0.0.4"))  # the right password: forgiven
    for _ in range(2):
        guard.failed(guard.admit("admin", "10.0.0.4"))
    guard.admit("admin", "10.0.0.4")


# --- item 12 -------------------------------------------------------------------------------------


class BlockedHasher(PasswordHasher):
    """argon2 whose checks wait until the test lets them go (a flood of slow hashing)."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.waiting = 0

    def verify(self, hash: Any, password: Any) -> Literal[True]:  # noqa: A002 (argon2's name)
        self.waiting += 1
        assert self.go.wait(30), "the test never released the hashing"
        return super().verify(hash, password)


async def test_a_login_flood_does_not_queue_the_alarm_list_behind_hashing(
    client: Client, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await login(client, "admin")
    hasher = BlockedHasher()
    monkeypatch.setattr(auth, "_hasher", hasher)
    try:
        flood = [asyncio.ensure_future(attempt(client, f"nobody{i}")) for i in range(60)]
        await asyncio.to_thread(wait_for_hashing, hasher)  # the hashing thread is taken
        # While every hashing thread is stuck, the admin's list is answered: it does not queue there.
        r = await asyncio.wait_for(client.get("/api/alarms", headers=admin), timeout=20)
        assert r.status == 200
        assert not hasher.go.is_set() and not all(f.done() for f in flood)
        busy = [f.result() for f in flood if f.done()]
        assert 503 in busy  # admission control: refused at once, not queued
    finally:
        hasher.go.set()
    statuses = await asyncio.gather(*flood)
    # 1 thread + 2 waiting were admitted (401); the rest got 503 or the address limit's 429
    assert statuses.count(401) == 3
    assert statuses.count(503) + statuses.count(429) == 57


def wait_for_hashing(hasher: BlockedHasher) -> None:
    deadline = time.monotonic() + 30
    while hasher.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)


# --- item 16 -------------------------------------------------------------------------------------


async def test_a_callback_token_may_only_call_back(client: Client, gateway: Gateway) -> None:
    with gateway.db.session() as s:
        secret, _ = issue_token(s, "sms", "callback", "operator", {"alarms:read", "alarms:write"})
    cb = {"Authorization": f"Bearer {secret}"}
    refused = [
        ("GET", "/api/alarms"),
        ("GET", "/api/alarms/01ABC/evidence/1"),
        ("GET", "/api/feed/sse"),
        ("GET", "/api/stats/summary"),
        ("GET", "/api/videos"),
    ]
    for method, path in refused:
        r = await client.request(method, path, headers=cb)
        assert r.status == 403, (path, r.status)
        assert "callback token" in (await r.json())["error"]["message"]
    for action in ("confirm", "reject", "dispose", "clear", "update", "close"):
        r = await client.post(f"/api/alarms/01NOPE/{action}", json={}, headers=cb)
        assert r.status in (404, 422), (action, r.status)  # passed auth: the alarm does not exist
    assert (await client.get("/api/alarms/01NOPE", headers=cb)).status == 404


async def test_a_user_who_demotes_themselves_loses_admin_rights_at_once(
    client: Client, gateway: Gateway
) -> None:
    with gateway.db.session() as s:
        auth.create_user(s, "admin2", PASSWORD, "admin")
    me = await login(client, "admin2")
    users = await (await client.get("/api/users", headers=me)).json()
    my_id = next(u["id"] for u in users["items"] if u["username"] == "admin2")
    r = await client.patch(f"/api/users/{my_id}", json={"role": "viewer"}, headers=me)
    assert r.status == 200
    assert (await client.get("/api/users", headers=me)).status == 403
    who = await (await client.get("/api/me", headers=me)).json()
    assert who["role"] == "viewer" and "users:write" not in who["scopes"]
    assert (await client.get("/api/alarms", headers=me)).status == 200  # still a viewer
    from gateway.security_log import SecurityLog

    changes = SecurityLog(gateway.config.storage.root / "security.log").read(event="user_changed")
    assert [(c["by"], c["username"], c["changed"], c["role"]) for c in changes] == [
        ("admin2", "admin2", "role", "viewer")
    ]
