"""Escalation: an alarm nobody confirmed (or disposed) in time is pushed to the next people.

The steps of ``alarms.escalation`` that apply to an alarm's scene and priority are its ladder, in the
order configured. A step of the ladder at or after the alarm's ``escalation_level`` fires when its
condition still holds and its time has passed since the alarm was raised:

- ``unconfirmed_s``: nobody confirmed or rejected the alarm (no verdict) and it is still open;
- ``undisposed_min``: it was confirmed true and has no disposal record yet, and is still open.

Firing writes an ``escalated`` revision (level, reason, roles, tiers and the recipients chosen: the
camera's recipients with those roles) and routes it through the outbox, in one transaction, to the
targets of those tiers and to the people targets (WeCom, DingTalk, e-mail, SMS), which address the
chosen recipients. Offline video alarms are never escalated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.alarms.recorder import OPEN_STATUSES
from gateway.config.alarm_policy import AlarmPolicy, EscalationStep
from gateway.db import Database
from gateway.db.schema import Alarm, AlarmRevision, Camera, Disposal, UplinkTarget, utcnow
from gateway.delivery.outbox import Outbox
from gateway.times import as_utc
from uplink.targets import KINDS

log = logging.getLogger(__name__)

ESCALATED = "escalated"


def _holds(step: EscalationStep, alarm: Alarm, disposed: bool) -> bool:
    if step.unconfirmed_s is not None:
        return alarm.verdict is None
    return alarm.verdict == "true_positive" and not disposed


def next_step(
    steps: list[EscalationStep], alarm: Alarm, disposed: bool, now: dt.datetime
) -> tuple[int, EscalationStep] | None:
    """The first step of the alarm's ladder, from its level on, whose condition holds and is due."""
    ladder = [s for s in steps if s.applies(alarm.scene, alarm.priority)]
    for index in range(alarm.escalation_level, len(ladder)):
        step = ladder[index]
        if _holds(step, alarm, disposed) and now - as_utc(alarm.raised_at) >= dt.timedelta(
            seconds=step.due_s
        ):
            return index, step
    return None


def _to_people(target: UplinkTarget) -> bool:
    kind = KINDS.get(target.kind)
    return kind is not None and kind.to_people


class Escalation:
    """Checks the open alarms every ``escalation_check_s`` and escalates those overdue."""

    def __init__(self, db: Database, outbox: Outbox, policy: AlarmPolicy) -> None:
        self.db = db
        self.outbox = outbox
        self.policy = policy

    def check(self, now: dt.datetime | None = None) -> list[str]:
        """Escalate every overdue alarm by one step; returns the ids escalated."""
        steps = self.policy.escalation
        if not steps:
            return []
        now = now or utcnow()
        done: list[str] = []
        with self.db.session() as s:
            alarms = s.scalars(
                select(Alarm)
                .where(Alarm.status.in_(OPEN_STATUSES), Alarm.source == "live", Alarm.camera_id.is_not(None))
                .order_by(Alarm.raised_at)
                .limit(1000)
                .with_for_update(skip_locked=True)
            ).all()
            for alarm in alarms:
                disposed = (
                    s.scalar(select(Disposal.id).where(Disposal.alarm_id == alarm.id).limit(1)) is not None
                )
                found = next_step(steps, alarm, disposed, now)
                if found is not None:
                    self._escalate(s, alarm, found[0], found[1], now)
                    done.append(alarm.id)
        if done:
            self.outbox.notify()
        return done

    def _escalate(self, s: Session, alarm: Alarm, index: int, step: EscalationStep, now: dt.datetime) -> None:
        camera = s.get(Camera, alarm.camera_id) if alarm.camera_id else None
        everyone: list[dict[str, Any]] = list(
            ((camera.alarm_settings or {}) if camera else {}).get("recipients", [])
        )
        chosen = [r for r in everyone if r.get("role") in step.roles]
        reason = "unconfirmed" if step.unconfirmed_s is not None else "undisposed"
        escalation = {
            "level": index + 1,
            "reason": reason,
            "after_s": step.due_s,
            "roles": list(step.roles),
            "tiers": list(step.tiers),
            "recipients": chosen,
        }
        alarm.escalation_level = index + 1
        alarm.revision += 1
        note = (
            None
            if chosen or not step.roles
            else f"the camera has no recipient with role {', '.join(step.roles)}"
        )
        s.add(
            AlarmRevision(
                alarm_id=alarm.id,
                revision=alarm.revision,
                action=ESCALATED,
                actor="gateway",
                at=now,
                changes={"escalation": escalation},
                note=note,
            )
        )

        def wanted(target: UplinkTarget) -> bool:
            return target.tier in step.tiers or (bool(chosen) and _to_people(target))

        count = self.outbox.enqueue(
            s, alarm, ESCALATED, only=wanted, extra={"recipients": chosen, "escalation": escalation}
        )
        log.warning(
            "alarm %s escalated to level %d (%s after %.0f s): %d recipient(s), %d target(s)",
            alarm.id,
            index + 1,
            reason,
            step.due_s,
            len(chosen),
            count,
        )

    async def run(self, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Check forever (a task of the serving loop); a failed check is logged and retried."""
        if not self.policy.escalation:
            return
        while True:
            try:
                await asyncio.to_thread(self.check)
            except Exception:
                log.exception("alarm escalation check failed")
            await sleep(self.policy.escalation_check_s)
