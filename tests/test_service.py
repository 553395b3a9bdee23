"""Start-up sync: configured cameras and targets into the database, bootstrap users from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Camera, UplinkTarget, User
from tests.conftest import DEMO_SCENES, write_config

CAM = {"id": "gate", "name": "Gate", "url": "rtsp://127.0.0.1:9/x", "scenes": DEMO_SCENES}


def start(tmp_path: Path, **sections: object) -> Gateway:
    gw = Gateway(load_config(write_config(tmp_path, **sections), environ={}), analyse=False)
    upgrade(gw.db.engine)
    gw.start()
    return gw


def test_cameras_and_targets_synced_and_removed_ones_kept(tmp_path: Path) -> None:
    target = {
        "name": "park",
        "kind": "http",
        "tier": "park",
        "http": {"url": "https://park.example/api"},
        "scenes": ["crowd"],
    }
    gw = start(tmp_path, cameras=[CAM, {**CAM, "id": "yard", "name": "Yard"}], uplink=[target])
    with gw.db.session() as s:
        assert {c.id: len(c.tasks) for c in s.scalars(select(Camera))} == {"gate": 2, "yard": 2}
        row = s.scalars(select(UplinkTarget)).one()
        assert (row.kind, row.tier, row.settings["scenes"]) == ("http", "park", ["crowd"])
        assert row.enabled
    gw.stop()
    gw = start(tmp_path, cameras=[{**CAM, "scenes": DEMO_SCENES[:1]}])
    with gw.db.session() as s:
        cams = {c.id: c for c in s.scalars(select(Camera))}
        assert [t.scene for t in cams["gate"].tasks] == ["intrusion"]
        assert (cams["yard"].enabled, cams["yard"].status) == (False, "removed")
        assert not s.scalars(select(UplinkTarget)).one().enabled  # out of the file: kept, not used
    gw.stop()


def test_bootstrap_users_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEST_MANAGER_PASSWORD", "manager password 1")
    monkeypatch.delenv("TEST_VIEWER_PASSWORD", raising=False)
    gw = start(
        tmp_path,
        users=[
            {"username": "manager", "role": "operator", "password_env": "TEST_MANAGER_PASSWORD"},
            {"username": "screen", "role": "viewer", "password_env": "TEST_VIEWER_PASSWORD"},
        ],
    )
    with gw.db.session() as s:
        assert [(u.username, u.role) for u in s.scalars(select(User))] == [("manager", "operator")]
    assert "user screen not created: set TEST_VIEWER_PASSWORD" in caplog.text
    assert "manager password 1" not in caplog.text
    gw.stop()


def test_sources_synced_before_their_cameras_without_passwords(tmp_path: Path) -> None:
    from gateway.db.schema import Source

    source = {
        "id": "nvr-1",
        "kind": "onvif",
        "name": "Tank NVR",
        "address": "127.0.0.1:8899",
        "username": "viewer",
        "password_env": "NVR_PASSWORD",
    }
    gw = start(tmp_path, sources=[source], cameras=[{**CAM, "source": "nvr-1"}])
    with gw.db.session() as s:
        row = s.get(Source, "nvr-1")
        assert row is not None and (row.kind, row.address, row.settings) == (
            "onvif",
            "127.0.0.1:8899",
            {"username": "viewer"},
        )
        assert s.get(Camera, "gate").source_id == "nvr-1"  # type: ignore[union-attr]
    gw.stop()
