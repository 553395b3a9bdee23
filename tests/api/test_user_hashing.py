"""Issue 19 item 12: adding a user through the API hashes the password on the dedicated HashPool (its
bounded waiting line refuses at once when full), not on the shared worker threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

import gateway.auth as auth
from gateway.api.keys import HASH_POOL
from gateway.app import Gateway
from gateway.db.schema import User
from tests.conftest import login, make_gateway

NEW_USER = {"username": "li.ming", "password": "a long enough password", "role": "operator"}


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    server = {"hash_workers": 1, "hash_queue": 0}
    gw: Gateway = make_gateway(tmp_path, users=("admin",), server=server)
    return gw


def user_exists(gw: Gateway, username: str) -> bool:
    with gw.db.session() as s:
        return s.scalar(select(User.id).where(User.username == username)) is not None


async def test_adding_a_user_hashes_on_the_hash_pool(
    client: TestClient, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await login(client, "admin")
    pool = client.app[HASH_POOL]
    release, taken = threading.Event(), threading.Event()

    def occupy() -> None:  # the pool's one thread, held
        taken.set()
        release.wait(30)

    holder = asyncio.ensure_future(pool.run(occupy))
    await asyncio.to_thread(taken.wait, 30)
    try:
        r = await client.post("/api/users", json=NEW_USER, headers=admin)
        assert r.status == 503, await r.text()  # refused at once: the pool is full, nothing queued elsewhere
        assert "error" in await r.json()
        assert not user_exists(gateway, NEW_USER["username"])
    finally:
        release.set()
        await holder

    threads: list[str] = []
    real_hash = auth.hash_password

    def recording_hash(password: str) -> str:
        threads.append(threading.current_thread().name)
        return real_hash(password)

    monkeypatch.setattr("gateway.api.users.hash_password", recording_hash)
    r = await client.post("/api/users", json=NEW_USER, headers=admin)
    assert r.status == 201, await r.text()
    assert threads and all(name.startswith("vigil-hash") for name in threads)
    assert user_exists(gateway, NEW_USER["username"])
    r = await client.post("/api/auth/login", json={"username": "li.ming", "password": NEW_USER["password"]})
    assert r.status == 200  # the stored hash is the real one
