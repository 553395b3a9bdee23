"""Alarm KPIs (the process-alarm management guide's measures applied to video alarms), per camera, area,
scene or period (the site's local day).

For the alarms that occurred in [since, until) (live ones by default):

- ``alarms``, ``alarms_per_hour``: alarms raised, and per hour of the period;
- ``confirmed_30s_rate``: share of the alarms that a person confirmed or rejected within 30 s of raising;
- ``disposed_30min_rate``: share of the alarms confirmed true whose first disposal was within 30 min;
- ``open_over_24h``: alarms still open (raised, confirmed, disposed) more than 24 h after raising;
- ``peak_10min``: the most alarms raised within any 10 minutes;
- ``chattering``: alarms whose target was re-raised (merged as the same target) more than 3 times
  within a minute;
- ``flood_periods``, ``flood_minutes``: flood alarms (a camera-scene over its flood guard) and how
  long they lasted (raise to their last merged event).

One query for the alarms and one for their repeats; the figures are counted in Python, the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.alarms.recorder import OPEN_STATUSES
from gateway.alarms.repeats import REPEATED
from gateway.db.schema import Alarm, AlarmRevision, Disposal
from gateway.times import as_utc

Group = Literal["camera", "area", "scene", "period"]
GROUPS: tuple[Group, ...] = ("camera", "area", "scene", "period")
CONFIRM_WITHIN = dt.timedelta(seconds=30)
DISPOSE_WITHIN = dt.timedelta(minutes=30)
STANDING_AFTER = dt.timedelta(hours=24)
PEAK_WINDOW = dt.timedelta(minutes=10)
CHATTER_WINDOW = dt.timedelta(minutes=1)
CHATTER_MORE_THAN = 3
FIELDS = (
    "alarms",
    "alarms_per_hour",
    "confirmed_30s",
    "confirmed_30s_rate",
    "confirmed_true",
    "disposed_30min",
    "disposed_30min_rate",
    "open_over_24h",
    "peak_10min",
    "chattering",
    "flood_periods",
    "flood_minutes",
)


@dataclass
class _Row:
    id: str
    camera_id: str | None
    scene: str
    area: str
    raised_at: dt.datetime
    confirmed_at: dt.datetime | None
    verdict: str | None
    status: str
    kind: str
    last_repeat_at: dt.datetime | None
    disposed_at: dt.datetime | None
    repeats: list[dt.datetime] = field(default_factory=list)


def most_within(times: Iterable[dt.datetime], window: dt.timedelta) -> int:
    """The most of ``times`` inside any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max((bisect_left(ordered, start + window) - i for i, start in enumerate(ordered)), default=0)


def _rows(session: Session, since: dt.datetime, until: dt.datetime, source: str) -> list[_Row]:
    first_disposal = (
        select(func.min(Disposal.handled_at))
        .where(Disposal.alarm_id == Alarm.id)
        .correlate(Alarm)
        .scalar_subquery()
    )
    where: list[Any] = [Alarm.occurred_at >= since, Alarm.occurred_at < until]
    if source != "all":
        where.append(Alarm.source == source)
    result = session.execute(
        select(
            Alarm.id,
            Alarm.camera_id,
            Alarm.scene,
            Alarm.tags,
            Alarm.raised_at,
            Alarm.confirmed_at,
            Alarm.verdict,
            Alarm.status,
            Alarm.kind,
            Alarm.last_repeat_at,
            first_disposal,
        ).where(*where)
    )
    rows = {
        r[0]: _Row(
            r[0],
            r[1],
            r[2],
            str((r[3] or {}).get("area") or ""),
            as_utc(r[4]),
            as_utc(r[5]),
            r[6],
            r[7],
            r[8],
            as_utc(r[9]),
            as_utc(r[10]),
        )
        for r in result
    }
    repeats = session.execute(
        select(AlarmRevision.alarm_id, AlarmRevision.at)
        .join(Alarm, Alarm.id == AlarmRevision.alarm_id)
        .where(*where, AlarmRevision.action == REPEATED, AlarmRevision.note == "same_target")
    )
    for alarm_id, at in repeats:
        rows[alarm_id].repeats.append(as_utc(at))
    return list(rows.values())


def _figures(rows: list[_Row], hours: float, now: dt.datetime) -> dict[str, Any]:
    events = rows
    confirmed_fast = sum(
        1 for r in events if r.confirmed_at is not None and r.confirmed_at - r.raised_at <= CONFIRM_WITHIN
    )
    true = [r for r in events if r.verdict == "true_positive"]
    disposed_fast = sum(
        1 for r in true if r.disposed_at is not None and r.disposed_at - r.raised_at <= DISPOSE_WITHIN
    )
    floods = [r for r in events if r.kind == "flood"]
    flood_s = sum(((r.last_repeat_at or r.raised_at) - r.raised_at).total_seconds() for r in floods)
    n = len(events)
    return {
        "alarms": n,
        "alarms_per_hour": round(n / hours, 3) if hours > 0 else None,
        "confirmed_30s": confirmed_fast,
        "confirmed_30s_rate": round(confirmed_fast / n, 4) if n else None,
        "confirmed_true": len(true),
        "disposed_30min": disposed_fast,
        "disposed_30min_rate": round(disposed_fast / len(true), 4) if true else None,
        "open_over_24h": sum(
            1 for r in events if r.status in OPEN_STATUSES and now - r.raised_at > STANDING_AFTER
        ),
        "peak_10min": most_within((r.raised_at for r in events), PEAK_WINDOW),
        "chattering": sum(1 for r in events if most_within(r.repeats, CHATTER_WINDOW) > CHATTER_MORE_THAN),
        "flood_periods": len(floods),
        "flood_minutes": round(flood_s / 60, 1),
    }


def _key(row: _Row, group: Group, tz: ZoneInfo) -> str:
    if group == "camera":
        return row.camera_id or ""
    if group == "area":
        return row.area
    if group == "scene":
        return row.scene
    return row.raised_at.astimezone(tz).date().isoformat()


def alarm_kpis(
    session: Session,
    group: Group,
    since: dt.datetime,
    until: dt.datetime,
    tz: ZoneInfo,
    source: str = "live",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """KPIs of the period per ``group`` key (sorted by alarms, then key) and for the whole period."""
    now = now or dt.datetime.now(dt.UTC)
    rows = _rows(session, since, until, source)
    end = min(until, now) if now > since else until  # a period reaching into the future ends now
    hours = (end - since).total_seconds() / 3600
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        groups[_key(row, group, tz)].append(row)
    items = []
    for key, members in groups.items():
        span = hours
        if group == "period":  # a local day's own hours (within the period)
            day = dt.date.fromisoformat(key)
            start = max(since, dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC))
            midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
            span = max((min(end, midnight) - start).total_seconds() / 3600, 1 / 60)
        items.append({"key": key, **_figures(members, span, now)})
    if group == "period":
        items.sort(key=lambda it: it["key"])
    else:
        items.sort(key=lambda it: (-it["alarms"], it["key"]))
    floods = sorted((r for r in rows if r.kind == "flood"), key=lambda r: r.raised_at)
    return {
        "group": group,
        "hours": round(hours, 3),
        "total": _figures(rows, hours, now),
        "items": items,
        "floods": [
            {
                "alarm_id": r.id,
                "camera_id": r.camera_id,
                "scene": r.scene,
                "start": r.raised_at.isoformat(),
                "end": (r.last_repeat_at or r.raised_at).isoformat(),
            }
            for r in floods
        ],
    }
