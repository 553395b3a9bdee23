"""Repeat rules of scene alarms: which event raises a new alarm and which is merged into one already raised.

Checked in the recorder's transaction, against the camera-scene's recent alarms of the same source (the
live camera, or one offline video job, whose clock is the video's), in this order:

1. flood: a flood alarm of the camera-scene has had an event within ``flood_minutes``: merge into it;
2. same target: an alarm raised within ``merge_window_s`` whose target was within ``merge_distance``
   (share of the frame diagonal) of this event's: the same person re-acquired by the tracker, merge;
3. cooldown: an alarm of the camera-scene raised within ``cooldown_s``: merge;
4. flood guard: ``flood_alarms`` or more alarms raised within ``flood_minutes``: this event raises the
   camera-scene's flood alarm (kind ``flood``) and the next ones are merged into it;
5. otherwise a new alarm.

A merge counts the event on the alarm (``repeats``, ``last_repeat_at``) and records a ``repeated``
revision whose note says why (flood, same_target, cooldown): the chattering KPI reads them. Merges are
not pushed to the uplink targets: the alarm they join already was.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config.alarm_policy import ResolvedPolicy
from gateway.db.schema import Alarm, AlarmRevision
from gateway.times import as_utc, iso

Reason = Literal["flood", "same_target", "cooldown"]
REPEATED = "repeated"  # the revision action of a merged event
FLOOD_KEY = "~flood"  # the hold key in a flood alarm's event key: <camera>/<scene>/~flood
MAX_MERGED_KEYS = 100  # event keys kept on an alarm, to re-arm their scene holds when it is closed


@dataclass(frozen=True)
class Arrival:
    """What the rules need of an event before it is stored."""

    camera_id: str | None
    scene: str
    at: dt.datetime  # when the event raised (video time for an offline video)
    centre: tuple[float, float] | None  # the target's box centre, 0..1 of width and height
    aspect: float  # frame width / height: distances are taken in the frame's own proportions
    video_job_id: str | None = None
    target: str | None = None
    event_key: str = ""  # the event's own key (camera/scene/hold key), latched in its scene


def with_merged_key(details: dict[str, Any] | None, event_key: str) -> dict[str, Any]:
    """The alarm's details with ``event_key`` among its ``merged_keys`` (once, at most MAX_MERGED_KEYS)."""
    out = dict(details or {})
    keys = [k for k in out.get("merged_keys") or [] if isinstance(k, str)]
    if event_key and event_key not in keys and len(keys) < MAX_MERGED_KEYS:
        keys.append(event_key)
    out["merged_keys"] = keys
    return out


@dataclass(frozen=True)
class Verdict:
    """``raise`` a new alarm (``flood``: as the camera-scene's flood alarm), or ``merge`` into ``into``."""

    action: Literal["raise", "merge"]
    into: Alarm | None = None
    reason: Reason | None = None
    flood: bool = False
    recent: int = 0  # alarms of the camera-scene within the flood window


def centre_of(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2 / max(width, 1), (box[1] + box[3]) / 2 / max(height, 1))


def _distance(a: tuple[float, float], b: tuple[float, float], aspect: float) -> float:
    """Distance of two points as a share of the frame diagonal."""
    dx, dy = (a[0] - b[0]) * aspect, a[1] - b[1]
    return math.hypot(dx, dy) / math.hypot(aspect, 1.0)


def _last_event(alarm: Alarm) -> dt.datetime:
    return as_utc(alarm.last_repeat_at or alarm.raised_at)


def judge(session: Session, policy: ResolvedPolicy, arrival: Arrival) -> Verdict:
    """Decide under the camera-scene's repeat rules (the caller holds the transaction)."""
    at = arrival.at
    horizon = max(policy.cooldown_s, policy.merge_window_s, policy.flood_minutes * 60)
    stmt = select(Alarm).where(
        Alarm.scene == arrival.scene,
        Alarm.raised_at <= at,
        Alarm.status != "closed",
    )
    stmt = stmt.where(
        Alarm.camera_id == arrival.camera_id if arrival.camera_id else Alarm.camera_id.is_(None)
    )
    if arrival.video_job_id is None:
        stmt = stmt.where(Alarm.source == "live")
    else:
        stmt = stmt.where(Alarm.video_job_id == arrival.video_job_id)
    # Flood alarms stay current as long as events keep coming: look back from their last event.
    flood_window = dt.timedelta(minutes=policy.flood_minutes)
    floods = session.scalars(
        stmt.where(Alarm.kind == "flood").order_by(Alarm.raised_at.desc()).limit(1)
    ).all()
    if floods and at - _last_event(floods[0]) < flood_window:
        return Verdict("merge", floods[0], "flood")
    recent = list(
        session.scalars(
            stmt.where(Alarm.kind == "event", Alarm.raised_at >= at - dt.timedelta(seconds=horizon)).order_by(
                Alarm.raised_at.desc()
            )
        )
    )
    if arrival.centre is not None and policy.merge_distance > 0:
        window = dt.timedelta(seconds=policy.merge_window_s)
        for alarm in recent:
            if at - _last_event(alarm) > window:
                continue
            seen = (alarm.details or {}).get("centre")
            if (
                seen
                and _distance(arrival.centre, (seen[0], seen[1]), arrival.aspect) <= policy.merge_distance
            ):
                return Verdict("merge", alarm, "same_target")
    cooldown = dt.timedelta(seconds=policy.cooldown_s)
    if recent and policy.cooldown_s > 0 and at - as_utc(recent[0].raised_at) < cooldown:
        return Verdict("merge", recent[0], "cooldown")
    in_window = len([a for a in recent if at - as_utc(a.raised_at) < flood_window])
    return Verdict("raise", flood=in_window >= policy.flood_alarms, recent=in_window)


def merge(session: Session, alarm: Alarm, arrival: Arrival, reason: Reason, now: dt.datetime) -> None:
    """Count the event on the alarm and record why (a ``repeated`` revision, not pushed upstream)."""
    before = alarm.repeats or 0
    alarm.repeats = before + 1
    alarm.last_repeat_at = arrival.at
    details = with_merged_key(alarm.details, arrival.event_key)
    if reason == "same_target" and arrival.centre is not None:
        # The target moved: the next re-acquisition is compared with where it was seen last.
        details["centre"] = [round(v, 4) for v in arrival.centre]
    alarm.details = details
    alarm.revision += 1
    session.add(
        AlarmRevision(
            alarm_id=alarm.id,
            revision=alarm.revision,
            action=REPEATED,
            actor="analyzer",
            at=now,
            changes={
                "repeats": [before, before + 1],
                "event_at": iso(arrival.at),
                **({"target": arrival.target} if arrival.target is not None else {}),
            },
            note=reason,
        )
    )
