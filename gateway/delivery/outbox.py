"""The transactional outbox: routing an alarm revision to its targets, and the admin's replay and backfill.

A revision and its outbox rows are written in the caller's transaction, so an alarm is never stored
without its deliveries (or the reverse). Dispatchers (gateway/delivery/dispatch.py) drain the rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.db.schema import Alarm, Camera, OutboxRow, UplinkTarget, utcnow
from gateway.delivery.alarm_types import AlarmTypeTable, default_table
from gateway.delivery.canonical import canonical

# Actions a target receives unless its `actions` setting narrows them.
ALL_ACTIONS = ("raised", "updated", "confirmed", "rejected", "disposed", "cleared", "closed", "escalated")


def routes_to(target: UplinkTarget, alarm: Alarm, action: str, camera: Camera | None) -> bool:
    """The routing filter: the target's tier settings, then the camera's alarm configuration."""
    s = target.settings or {}
    if s.get("scenes") and alarm.scene not in s["scenes"]:
        return False
    if s.get("cameras") and alarm.camera_id not in s["cameras"]:
        return False
    if alarm.priority < int(s.get("min_priority") or 0):
        return False
    if action not in (s.get("actions") or ALL_ACTIONS):
        return False
    if camera is not None:
        cam = camera.alarm_settings or {}
        if cam.get("push") and target.name not in cam["push"]:
            return False
        if alarm.priority < int(cam.get("min_priority") or 0):
            return False
    return True


class Outbox:
    """Builds the canonical record once per revision and adds one row per matching target."""

    def __init__(self, site: dict[str, str] | None = None, types: AlarmTypeTable | None = None) -> None:
        self.site = dict(site or {})
        self.types = types or default_table()
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Called (from any thread) after a transaction that queued rows has committed."""
        with self._lock:
            self._listeners.append(wake)

    def notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    def enqueue(
        self,
        session: Session,
        alarm: Alarm,
        action: str,
        only: Callable[[UplinkTarget], bool] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Add the revision's outbox rows in the caller's transaction; returns how many. ``only``
        narrows the targets further (an escalation's tiers and people); ``extra`` replaces or adds
        fields of the record (an escalation's recipients)."""
        session.flush()
        camera = session.get(Camera, alarm.camera_id) if alarm.camera_id else None
        payload: dict[str, Any] | None = None
        count = 0
        for target in session.scalars(select(UplinkTarget).where(UplinkTarget.enabled.is_(True))):
            if not routes_to(target, alarm, action, camera) or (only is not None and not only(target)):
                continue
            if payload is None:
                payload = {**canonical(session, alarm, action, self.site, self.types), **(extra or {})}
            session.add(
                OutboxRow(
                    target_id=target.id,
                    alarm_id=alarm.id,
                    alarm_revision=alarm.revision,
                    idempotency_key=f"{alarm.id}:{alarm.revision}",
                    payload=payload,
                )
            )
            count += 1
        return count


def replay_dead(session: Session, target_id: int | None = None, row_ids: list[int] | None = None) -> int:
    """Put dead-lettered rows back in the queue (an admin decided the cause is fixed)."""
    stmt = update(OutboxRow).where(OutboxRow.status == "dead")
    if target_id is not None:
        stmt = stmt.where(OutboxRow.target_id == target_id)
    if row_ids:
        stmt = stmt.where(OutboxRow.id.in_(row_ids))
    result = session.execute(
        stmt.values(status="pending", attempts=0, next_attempt_at=utcnow(), last_error="replayed by an admin")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def backfill(
    session: Session, outbox: Outbox, target: UplinkTarget, since: dt.datetime, until: dt.datetime
) -> dict[str, int]:
    """补传: send again every alarm that occurred in [since, until] to one target.

    Rows already delivered are queued again (the upstream's idempotency key makes a repeat harmless);
    alarms the target never had (it was added later, or filtered then) get a row for their current
    revision. Routing filters still apply.
    """
    requeued = created = 0
    alarms = session.scalars(
        select(Alarm)
        .where(Alarm.occurred_at >= since, Alarm.occurred_at <= until, Alarm.video_ts.is_(None))
        .order_by(Alarm.id)
    )
    for alarm in alarms:
        camera = session.get(Camera, alarm.camera_id) if alarm.camera_id else None
        rows = list(
            session.scalars(
                select(OutboxRow).where(OutboxRow.target_id == target.id, OutboxRow.alarm_id == alarm.id)
            )
        )
        if rows:
            for row in rows:
                if row.status != "pending":
                    row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
                    row.last_error = "backfill (补传) requested"
                    requeued += 1
            continue
        last_action = alarm.revisions[-1].action if alarm.revisions else "raised"
        if not routes_to(target, alarm, last_action, camera):
            continue
        session.add(
            OutboxRow(
                target_id=target.id,
                alarm_id=alarm.id,
                alarm_revision=alarm.revision,
                idempotency_key=f"{alarm.id}:{alarm.revision}",
                payload=canonical(session, alarm, last_action, outbox.site, outbox.types),
            )
        )
        created += 1
    return {"requeued": requeued, "created": created}


def backlog(session: Session) -> dict[int, dict[str, Any]]:
    """Per target: rows pending, dead, delivered, and the oldest pending row's age."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(OutboxRow.target_id, OutboxRow.status, func.count(), func.min(OutboxRow.created_at)).group_by(
            OutboxRow.target_id, OutboxRow.status
        )
    )
    for target_id, status, count, oldest in rows:
        entry = out.setdefault(target_id, {"pending": 0, "dead": 0, "delivered": 0, "oldest_pending": None})
        entry[status] = int(count)
        if status == "pending":
            entry["oldest_pending"] = oldest
    return out
