"""`vigil discover` against the loopback ONVIF device: find it, probe it, add it with its location."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cameras.registry import camera_json
from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import Database
from gateway.db.schema import Camera
from tests.conftest import write_config
from tests.peers.onvif_device import OnvifDevice

pytestmark = pytest.mark.timeout(60)


async def test_discover_probe_and_add(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert await asyncio.to_thread(main, ["--config", str(config), "db", "upgrade"]) == 0
    monkeypatch.setenv("TEST_ONVIF_PASSWORD", device.password)
    args = [
        "--config",
        str(config),
        "discover",
        "--wait",
        "1",
        "--target",
        f"127.0.0.1:{device.discovery_port}",
        "--user",
        device.user,
        "--password-env",
        "TEST_ONVIF_PASSWORD",
        "--add",
        "tank-gate",
        "--name",
        "Tank farm gate",
        "--location",
        "T-2 east gate",
    ]
    # The CLI runs its own event loop: run it in a thread while this loop serves the device.
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "[1] 127.0.0.1:" in out and "1920x1080" in out and "camera tank-gate added" in out
    assert device.password not in out

    db = Database(load_config(config, environ={}).database.url)
    with db.session() as s:
        row = s.scalars(select(Camera)).one()
        assert (row.id, row.name, row.location, row.origin) == (
            "tank-gate",
            "Tank farm gate",
            "T-2 east gate",
            "discovered",
        )
        assert f"{device.user}:Fl4re-Stack%21@" in row.stream_url  # kept (percent-encoded) for the analyzers
        shown = camera_json(row, None)
    assert device.password not in str(shown) and shown["stream_url"].startswith("rtsp://***@")


async def test_discover_without_credentials_lists_only(
    device: OnvifDevice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    args = [
        "--config",
        str(config),
        "discover",
        "--wait",
        "1",
        "--target",
        f"127.0.0.1:{device.discovery_port}",
    ]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr().out
    assert "127.0.0.1" in out and "not probed: no credentials given" in out
