"""The one door alarms are written through: the alarm row, its first revision ("raised"), its evidence
rows and its outbox rows, in the caller's transaction. Scenes (AlarmRecorder), GB/T 28181 device
alarms (GbService.store_device_alarm) and the storage alarm (retention) all raise alarms here; each
keeps its own rule for what counts as a repeat, checked in the same transaction before writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gateway.db.schema import Alarm, AlarmRevision, Evidence
from gateway.delivery.outbox import Outbox
from gateway.ids import new_ulid


@dataclass(frozen=True)
class EvidenceFile:
    """A file already in the evidence store that the alarm keeps."""

    kind: str  # snapshot, snapshot_raw, ...
    sha256: str
    path: str
    size: int
    media_type: str = "image/jpeg"


@dataclass(frozen=True)
class NewAlarm:
    """What a source knows of an alarm it raises."""

    scene: str  # the alarm type code (config/alarm_types.yaml)
    event_key: str
    message: str
    actor: str  # who raised it: analyzer, device:<id>, gateway
    occurred_at: dt.datetime
    raised_at: dt.datetime
    camera_id: str | None = None
    camera_scene_id: int | None = None
    region: str = ""
    priority: int = 2
    score: float = 1.0
    details: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    video_ts: float | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # beside the status, in the first revision
    evidence: Sequence[EvidenceFile] = ()
    retain_until: dt.datetime | None = None  # of the evidence
    uplink: bool = True  # queue it for the uplink targets (offline analysis is not pushed)
    video_job_id: str | None = None  # an offline video job's alarm (source "video"), else a live one
    kind: str = "event"  # event | flood (a camera-scene's flood alarm, repeats merged into it)


def write_alarm(session: Session, outbox: Outbox, new: NewAlarm, now: dt.datetime) -> Alarm:
    """Add the alarm, its "raised" revision, its evidence and (``uplink``) its outbox rows to the
    session; the caller commits and then calls ``outbox.notify()``."""
    alarm = Alarm(
        id=new_ulid(),
        camera_id=new.camera_id,
        camera_scene_id=new.camera_scene_id,
        scene=new.scene,
        region=new.region,
        event_key=new.event_key,
        status="raised",
        priority=new.priority,
        score=new.score,
        message=new.message,
        details=new.details,
        tags=new.tags,
        occurred_at=new.occurred_at,
        raised_at=new.raised_at,
        video_ts=new.video_ts,
        source="live" if new.video_job_id is None else "video",
        video_job_id=new.video_job_id,
        kind=new.kind,
        repeats=0,
        escalation_level=0,
        revision=1,
    )
    session.add(alarm)
    session.add(
        AlarmRevision(
            alarm=alarm,
            revision=1,
            action="raised",
            actor=new.actor,
            at=now,
            changes={"status": [None, "raised"], **new.changes},
        )
    )
    for f in new.evidence:
        session.add(
            Evidence(
                alarm=alarm,
                kind=f.kind,
                sha256=f.sha256,
                path=f.path,
                media_type=f.media_type,
                size=f.size,
                created_at=now,
                retain_until=new.retain_until if new.retain_until is not None else now,
            )
        )
    if new.uplink:
        outbox.enqueue(session, alarm, "raised")
    return alarm
