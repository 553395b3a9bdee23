"""gateway/cameras/registry.py: the one check of "is this camera a GB/T 28181 channel"."""

from __future__ import annotations

from pathlib import Path

from gateway.cameras.registry import camera_is_gb, gb_source_ids, is_gb_camera
from gateway.config.schema import CameraConfig
from gateway.db import Database, upgrade
from gateway.db.schema import Source


def test_is_gb_camera() -> None:
    assert is_gb_camera("gb28181://34020000001110000001/34020000001310000001")
    assert is_gb_camera("rtsp://10.0.0.9/live", source_kind="gb28181")
    assert is_gb_camera("", gb_channel_id="34020000001310000001")
    assert not is_gb_camera("rtsp://10.0.0.9/live")
    assert not is_gb_camera("rtsp://10.0.0.9/live", source_kind="onvif")
    assert not is_gb_camera(None, None, None)
    assert not is_gb_camera("/videos/gb28181://not-a-scheme.mp4")


def test_camera_is_gb_reads_the_source_kind(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'vigil.db'}")
    upgrade(db.engine)
    with db.session() as s:
        s.add(Source(id="34020000001110000001", kind="gb28181"))
        s.add(Source(id="nvr-1", kind="onvif"))
    url = "rtsp://10.0.0.9/live"
    with db.session() as s:
        assert gb_source_ids(s) == {"34020000001110000001"}
        assert camera_is_gb(s, CameraConfig(id="a", name="a", url=url, source="34020000001110000001"))
        assert not camera_is_gb(s, CameraConfig(id="b", name="b", url=url, source="nvr-1"))
        assert not camera_is_gb(s, CameraConfig(id="c", name="c", url=url, source="unknown"))
        assert not camera_is_gb(s, CameraConfig(id="d", name="d", url=url))
        assert camera_is_gb(s, CameraConfig(id="e", name="e", url="gb28181://34020000001110000001/x"))
