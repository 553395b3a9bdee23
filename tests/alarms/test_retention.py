"""Evidence retention and the disk quota: nothing younger than its retention is ever deleted; over
the quota mark the storage alarm is raised and clips stop."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db.schema import Alarm, Evidence, OutboxRow, utcnow
from tests.alarms.test_alarm_lifecycle import raise_alarm
from tests.conftest import make_gateway, write_config


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(
        tmp_path,
        start=True,
        storage={"root": "storage", "quota_gb": 1e-6 * 200, "quota_alarm_percent": 50},  # ~215 KB quota
        cameras=[{"id": "gate-1", "name": "Gate", "url": "rtsp://127.0.0.1:9/x", "enabled": False}],
        uplink=[{"name": "park", "kind": "http", "tier": "park", "http": {"url": "http://127.0.0.1:9/a"}}],
    )
    return gw


def add_evidence(gw: Gateway, alarm_id: str, data: bytes, age_days: float, kind: str = "clip") -> str:
    """A synthetic evidence file created ``age_days`` ago with the configured retention."""
    digest, rel, _ = gw.store.put(data, "mp4")
    created = utcnow() - dt.timedelta(days=age_days)
    with gw.db.session() as s:
        s.add(
            Evidence(
                alarm_id=alarm_id,
                kind=kind,
                sha256=digest,
                path=rel,
                media_type="video/mp4",
                size=len(data),
                created_at=created,
                retain_until=created + dt.timedelta(days=183),
            )
        )
    return rel


def test_sweep_keeps_everything_within_retention_even_over_quota(gateway: Gateway) -> None:
    alarm_id = raise_alarm(gateway)
    old = add_evidence(gateway, alarm_id, os.urandom(60_000), age_days=200)  # past 183 days
    shared = os.urandom(50_000)
    old_shared = add_evidence(gateway, alarm_id, shared, age_days=300)
    add_evidence(gateway, alarm_id, shared, age_days=10)  # the same bytes, still needed
    young = [add_evidence(gateway, alarm_id, os.urandom(70_000), age_days=d) for d in (1, 90, 182.5)]
    orphan = gateway.store.root / "evidence" / "ff" / "ff" / ("f" * 64 + ".jpg")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    os.utime(orphan, (time.time() - 2 * 86400,) * 2)

    report = gateway.retention.sweep()

    assert not gateway.store.path(old).exists()
    assert gateway.store.path(old_shared).exists()  # its bytes are also a young row's evidence
    assert all(gateway.store.path(rel).exists() for rel in young)
    assert not orphan.exists() and report.orphans_removed == 1
    assert report.expired_rows == 2 and report.files_removed == 1
    with gateway.db.session() as s:
        kinds = sorted(e.kind for e in s.scalars(select(Evidence).where(Evidence.alarm_id == alarm_id)))
        assert kinds == ["clip", "clip", "clip", "clip", "snapshot", "snapshot_raw"]
        # Still over the mark with only young evidence left: raise the alarm, stop clips, delete nothing.
        assert report.over_mark and report.alarm_id is not None
        alarm = s.get(Alarm, report.alarm_id)
        assert alarm is not None and alarm.scene == "storage" and alarm.camera_id is None
        assert "quota" in alarm.message
        pushed = s.scalars(select(OutboxRow).where(OutboxRow.alarm_id == alarm.id)).one()
        assert pushed.payload["type"]["zh"] == "存储空间不足"
    assert gateway.retention.clips_allowed is False
    again = gateway.retention.sweep()
    assert again.alarm_id == report.alarm_id  # one open storage alarm, not one per sweep
    usage = gateway.retention.usage()
    assert usage["clips_kept"] is False and usage["percent"] > 50 and usage["retention_days"] == 183


def test_retention_below_six_months_is_refused(tmp_path: Path) -> None:
    from gateway.config.schema import ConfigError

    path = write_config(tmp_path, storage={"root": "storage", "evidence_retention_days": 30})
    with pytest.raises(ConfigError, match="183"):
        load_config(path, environ={})
