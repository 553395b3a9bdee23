"""Shared fixtures: the model pack and sample video from ../shared, real PostgreSQL and RTSP peers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from gateway.db import Database

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("VIGIL_MODELS_DIR", ROOT.parent / "shared" / "models"))
MEDIA_DIR = Path(os.environ.get("VIGIL_MEDIA_DIR", ROOT.parent / "shared" / "media"))
VTEST = MEDIA_DIR / "vtest.avi"
ARTIFACTS = ROOT / "test-artifacts"


def need_models() -> Path:
    if not (MODELS_DIR / "yolox_nano" / "yolox_nano.onnx").is_file():
        pytest.fail(f"model pack not found at {MODELS_DIR}; set VIGIL_MODELS_DIR")
    return MODELS_DIR


def need_video() -> Path:
    if not VTEST.is_file():
        pytest.fail(f"sample video not found at {VTEST}; set VIGIL_MEDIA_DIR")
    return VTEST


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return need_models()


@pytest.fixture(scope="session")
def vtest() -> Path:
    return need_video()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    from tests.peers.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def device() -> AsyncIterator[Any]:
    """A loopback ONVIF device (tests/peers/onvif_device.py): SOAP, events, PTZ, WS-Discovery."""
    from tests.peers.onvif_device import OnvifDevice

    peer = OnvifDevice()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture(scope="session")
def rtsp(vtest: Path) -> Iterator[Any]:
    """The sample RTSP camera serving the first 30 s of vtest.avi (H.264, 1 s GOP) in a loop."""
    from adapters.rtsp.sample_camera import SampleRtspServer

    with SampleRtspServer({"vtest": vtest}, max_seconds=30) as server:
        yield server


def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """An empty database for a test parametrised with "sqlite" / "postgres" (the shared PostgreSQL
    session database is emptied first)."""
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'v.db'}")
    database = Database(request.getfixturevalue("pg_url"))
    with database.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    return database


def write_config(tmp: Path, **sections: Any) -> Path:
    """A gateway config in a temp folder with its own SQLite database and storage."""
    data: dict[str, Any] = {
        "database": {"url": "sqlite:///vigil.db"},
        "storage": {"root": "storage"},
        "server": {"host": "127.0.0.1", "port": 18080},
    }
    data.update(sections)
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


DEMO_SCENES = [
    {
        "scene": "intrusion",
        "regions": [{"name": "lawn-east", "polygon": [[0.62, 0.5], [1.0, 0.5], [1.0, 1.0], [0.62, 1.0]]}],
        "min_duration_s": 3,
    },
    {
        "scene": "crowd",
        "regions": [{"name": "walkway", "polygon": [[0.15, 0.28], [1.0, 0.28], [1.0, 1.0], [0.15, 1.0]]}],
        "params": {"min_people": 5},
        "min_duration_s": 5,
    },
]

# Two more on the same stream: a duty box on the empty lawn at the left (nobody there: off post)
# and the walkway as a lifting zone rated for one person (two or more walk there at once).
MORE_SCENES = [
    {
        "scene": "off_post",
        "regions": [{"name": "duty-box", "polygon": [[0.0, 0.75], [0.12, 0.75], [0.12, 1.0], [0.0, 1.0]]}],
        "min_duration_s": 4,
    },
    {
        "scene": "lifting_zone",
        "regions": [{"name": "crane-area", "polygon": [[0.15, 0.28], [1.0, 0.28], [1.0, 1.0], [0.15, 1.0]]}],
        "params": {"rated_people": 1},
        "min_duration_s": 3,
    },
]


async def wait_until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``check`` (in a thread: it may query the database) until it is truthy; returns its value."""
    deadline = time.monotonic() + seconds
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- the HTTP API of a module's own `gateway` fixture ---------------------------------------------

PASSWORD = "correct horse battery"  # what the API tests give the users they create


def make_gateway(
    tmp: Path, *, users: tuple[str, ...] = (), start: bool = False, migrate: bool = True, **sections: Any
) -> Any:
    """The one gateway factory of the tests: a config from ``write_config(tmp, **sections)``, no
    analysis, the schema migrated, one user per role in ``users`` (password PASSWORD), and
    ``start()`` (syncs cameras and targets) when asked."""
    from gateway.app import Gateway
    from gateway.auth import create_user
    from gateway.config.schema import load_config
    from gateway.db import upgrade

    gw = Gateway(load_config(write_config(tmp, **sections), environ={}), analyse=False)
    if migrate:
        upgrade(gw.db.engine)
    if start:
        gw.start()
    with gw.db.session() as s:
        for role in users:
            create_user(s, role, PASSWORD, role)
    return gw


@pytest.fixture
async def client(gateway: Any, aiohttp_client: Callable[..., Any]) -> Any:
    """A test client of the API of the requesting module's `gateway` fixture."""
    from gateway.api import create_app

    return await aiohttp_client(create_app(gateway))


async def login(client: Any, username: str) -> dict[str, str]:
    """Log in as ``username`` (password PASSWORD); the bearer header of the session."""
    r = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()
    return {"Authorization": f"Bearer {(await r.json())['token']}"}
