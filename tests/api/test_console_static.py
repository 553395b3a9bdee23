"""The gateway serves the built web console (gateway/web/dist) without authentication: index.html is
revalidated on every load, hashed assets are cached for a year, and a missing build falls back to the
minimal page with a hint how to build it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.api import app as app_module
from gateway.api import create_app
from gateway.app import Gateway
from tests.conftest import make_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, migrate=False)
    return gw


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text('<div id="app"></div><script src="./assets/index-abc123.js"></script>')
    (folder / "assets" / "index-abc123.js").write_text("console.log('vigil')")
    (tmp_path / "secret.txt").write_text("not for the web")
    monkeypatch.setattr(app_module, "WEB_DIST", folder)
    return folder


Client = TestClient
MakeClient = Callable[..., Awaitable[Client]]


async def test_built_console_is_served_without_login(
    gateway: Gateway, dist: Path, aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(gateway, start_gateway=False))
    page = await client.get("/")
    assert page.status == 200
    assert page.headers["Cache-Control"] == "no-cache"
    assert "index-abc123.js" in await page.text()
    asset = await client.get("/assets/index-abc123.js")
    assert asset.status == 200
    assert "immutable" in asset.headers["Cache-Control"]
    assert await asset.text() == "console.log('vigil')"
    # The API behind the page still wants a login.
    assert (await client.get("/api/alarms")).status == 401


async def test_assets_stay_inside_the_build(gateway: Gateway, dist: Path, aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(create_app(gateway, start_gateway=False))
    for path in ("/assets/missing.js", "/assets/..%2F..%2Fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "not for the web" not in await response.text()


async def test_missing_build_falls_back_with_a_hint(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: MakeClient
) -> None:
    monkeypatch.setattr(app_module, "WEB_DIST", tmp_path / "no-dist")
    client = await aiohttp_client(create_app(gateway, start_gateway=False))
    page = await client.get("/")
    assert page.status == 200
    text = await page.text()
    assert "npm ci &amp;&amp; npm run build" in text and "make demo" in text
    assert 'id="login"' in text  # the minimal console still works
