"""Migrations up from empty on SQLite and PostgreSQL; alarms stored whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from analyzers import AlarmEvent, Detection, Region
from gateway.alarms.lifecycle import AlarmLifecycle, Change
from gateway.alarms.recorder import AlarmRecorder, SceneContext
from gateway.db import Base, Database, current_revision, head_revision, upgrade
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, AlarmRevision, Camera, Evidence, OutboxRow, UplinkTarget
from tests.conftest import fresh_database

TABLES = {
    "cameras",
    "camera_scenes",
    "alarms",
    "alarm_revisions",
    "alarm_disposals",
    "evidence",
    "users",
    "api_tokens",
    "models",
    "model_versions",
    "datasets",
    "dataset_samples",
    "samples",
    "detection_tasks",
    "uplink_targets",
    "outbox",
    "sources",
}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(request, tmp_path)
    yield database
    database.dispose()


def test_migrations_from_empty_match_the_models(db: Database) -> None:
    assert current_revision(db.engine) is None
    with pytest.raises(RuntimeError, match="vigil db upgrade"):
        db.ensure_current()
    upgrade(db.engine)
    assert current_revision(db.engine) == head_revision(db.engine)
    db.ensure_current()
    assert TABLES <= set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations differ: add a migration for {diff}"
    upgrade(db.engine)  # idempotent


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def event(camera: str = "cam1", region: str = "r") -> AlarmEvent:
    return AlarmEvent(
        camera,
        "intrusion",
        region,
        occurred_at=1_763_700_000.0,
        raised_at=1_763_700_003.0,
        score=0.9,
        message="1 person(s) entered region 'r'",
        detections=(Detection((10, 10, 40, 90), 0.9, 0, "person"),),
    )


@pytest.fixture
def recorder(db: Database, tmp_path: Path) -> AlarmRecorder:
    upgrade(db.engine)
    with db.session() as s:
        s.add(Camera(id="cam1", name="Gate", stream_url="rtsp://x/y"))
        s.add(UplinkTarget(name="park", kind="http", tier="park", settings={"scenes": ["intrusion"]}))
        s.add(UplinkTarget(name="city", kind="http", tier="city", settings={"scenes": ["flame"]}))
    return AlarmRecorder(db, EvidenceStore(tmp_path / "storage"), retention_days=183)


CTX = SceneContext(None, {"area": "gate"}, "demo", [Region("r", [(0, 0), (1, 0), (1, 1)])])
IMAGE = np.full((120, 160, 3), 80, dtype=np.uint8)


def counts(db: Database) -> tuple[int, ...]:
    with db.session() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t)) or 0  # type: ignore[arg-type]
            for t in (Alarm, AlarmRevision, Evidence, OutboxRow)
        )


def test_alarm_stored_with_revision_evidence_and_routed_outbox(recorder: AlarmRecorder) -> None:
    alarm_id = recorder.record(event(), IMAGE, CTX)
    assert alarm_id is not None and len(alarm_id) == 26
    assert counts(recorder.db) == (1, 1, 2, 1)  # only the park target takes intrusion
    with recorder.db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None
        assert alarm.tags == {"area": "gate", "scene_tag": "demo"}
        assert alarm.details["boxes"][0]["label"] == "person"
        paths = [e.path for e in alarm.evidence]
        outbox = s.scalars(select(OutboxRow)).one()
        assert outbox.idempotency_key == f"{alarm_id}:1" and outbox.payload["scene"] == "intrusion"
    for rel in paths:
        data = recorder.store.path(rel).read_bytes()
        assert data[:3] == b"\xff\xd8\xff"  # JPEG
        assert rel.endswith(".jpg") and Path(rel).stem in rel


def test_one_open_alarm_per_event(recorder: AlarmRecorder) -> None:
    first = recorder.record(event(), IMAGE, CTX)
    assert recorder.record(event(), IMAGE, CTX) is None  # counted on the open alarm (a repeat)
    assert recorder.record(event(region="other"), IMAGE, CTX) is not None
    assert recorder.open_event_keys() == {"cam1/intrusion/r", "cam1/intrusion/other"}
    assert first is not None
    lifecycle = AlarmLifecycle(recorder.db, recorder.store, recorder.outbox, 183)
    cleared, changed = lifecycle.apply(first, Change("clear", "operator", "checked on site"))
    assert changed and cleared.status == "cleared" and cleared.revision == 3 and cleared.repeats == 1
    assert lifecycle.apply(first, Change("clear", "operator"))[1] is False  # already cleared: no-op
    with recorder.db.session() as s:
        trail = [
            (r.revision, r.action, r.actor)
            for r in s.scalars(
                select(AlarmRevision).where(AlarmRevision.alarm_id == first).order_by(AlarmRevision.revision)
            )
        ]
    assert trail == [(1, "raised", "analyzer"), (2, "repeated", "analyzer"), (3, "cleared", "operator")]
    assert recorder.record(event(), IMAGE, CTX) is not None  # re-armed


def test_failure_mid_transaction_stores_nothing(
    recorder: AlarmRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("disk full while writing the outbox")

    monkeypatch.setattr(recorder.outbox, "enqueue", broken)
    with pytest.raises(RuntimeError):
        recorder.record(event(), IMAGE, CTX)
    assert counts(recorder.db) == (0, 0, 0, 0)


def test_ulids_sort_by_creation_and_never_repeat() -> None:
    import time

    from gateway.ids import new_ulid, ulid_time

    ids = [new_ulid() for _ in range(2000)]  # many within the same millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert abs(ulid_time(ids[-1]) - time.time()) < 5
