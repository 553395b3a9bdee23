"""Statistics for the console: summary, overview, alarm counts by camera/scene/time, disposal performance.

Counting happens in SQL. Times of day and weekdays are the site's (config.site.timezone): the
database groups by UTC hour (quarter hour for zones with such offsets), a few thousand rows at most,
and Python moves each bucket into the local calendar, so DST and any zone are exact on SQLite and
PostgreSQL alike. Every route answers CSV with ``format=csv``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Float, Integer, String, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.alarms import kpi
from gateway.alarms.recorder import OPEN_STATUSES
from gateway.api.alarms import alarm_json, parse_time
from gateway.api.answers import StatsAlarms, StatsDisposal, StatsKpi, StatsOverview
from gateway.api.cache import cached_json
from gateway.api.http import ApiError, route
from gateway.api.keys import GATEWAY
from gateway.api.names import scene_names, site_zone
from gateway.db.schema import Alarm, Camera, Disposal
from gateway.i18n import t_request
from gateway.times import iso

GROUPS = ("camera", "scene", "hour", "day", "weekday", "region")
MAX_RANGE = dt.timedelta(days=732)  # two years: bounds the work of one request
DEFAULT_RANGE = dt.timedelta(days=30)
LATEST = 12

TIME_QUERY = (
    ("since", "string", "ISO 8601 start (default: until minus 30 days)"),
    ("until", "string", "ISO 8601 end (default: now)"),
    ("format", "string", "json (default) or csv"),
    ("source", "string", "live (default: running cameras), video (offline video jobs) or all"),
)
SOURCES = ("live", "video", "all")


# --- helpers ------------------------------------------------------------------------------------


def period(request: web.Request) -> tuple[dt.datetime, dt.datetime]:
    until = parse_time(request, "until") or dt.datetime.now(dt.UTC)
    since = parse_time(request, "since") or until - DEFAULT_RANGE
    if since >= until:
        raise ApiError(400, t_request("api.since_before_until"))
    if until - since > MAX_RANGE:
        raise ApiError(400, t_request("api.period_too_long", days=MAX_RANGE.days))
    return since, until


def alarm_source(request: web.Request) -> str:
    """Which alarms count: live ones by default (offline video alarms are not today's alarms)."""
    source = request.query.get("source", "live")
    if source not in SOURCES:
        raise ApiError(400, t_request("api.stats_source"))
    return source


def want_csv(request: web.Request) -> bool:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, t_request("api.stats_format"))
    return fmt == "csv"


def csv_response(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> web.Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    # A BOM so that spreadsheet programs read the Chinese scene names as UTF-8.
    return web.Response(
        body=("\ufeff" + buf.getvalue()).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


def stamp(when: dt.datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y%m%d")


def _whole_hours(tz: ZoneInfo, since: dt.datetime, until: dt.datetime) -> bool:
    """Whether the zone's offset is a whole number of hours on every day of the period."""
    day = since
    while True:
        offset = tz.utcoffset(day.replace(tzinfo=None))
        if offset is None or offset.total_seconds() % 3600:
            return False
        if day >= until:
            return True
        day = min(until, day + dt.timedelta(days=1))


def utc_bucket(session: Session, column: Any, quarter: bool) -> ColumnElement[Any]:
    """The UTC hour of a timestamp as 'YYYY-MM-DD HH' (plus ':Q', the quarter hour 0-3, when asked)."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC (gateway.times: all stored times are UTC).
        hour: ColumnElement[Any] = func.substr(column, 1, 13)
        minute: ColumnElement[Any] = cast(func.substr(column, 15, 2), Integer)
    else:
        utc_col = func.timezone("UTC", column)
        hour = func.to_char(utc_col, "YYYY-MM-DD HH24")
        minute = cast(func.extract("minute", utc_col), Integer)
    if not quarter:
        return hour
    return cast(hour, String) + ":" + cast(minute // 15, String)


def bucket_time(key: str) -> dt.datetime:
    """'YYYY-MM-DD HH[:Q]' (UTC) -> the bucket's start as an aware UTC time."""
    hour = dt.datetime.strptime(key[:13], "%Y-%m-%d %H").replace(tzinfo=dt.UTC)
    if len(key) > 13:
        hour += dt.timedelta(minutes=15 * int(key[14:]))
    return hour


def _filters(
    since: dt.datetime, until: dt.datetime, scene: str | None, camera_id: str | None, source: str = "live"
) -> list[Any]:
    out: list[Any] = [Alarm.occurred_at >= since, Alarm.occurred_at < until]
    if source != "all":
        out.append(Alarm.source == source)
    if scene:
        out.append(Alarm.scene == scene)
    if camera_id:
        out.append(Alarm.camera_id == camera_id)
    return out


def seconds_between(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.extract("epoch", later - earlier), Float)  # a float, not a Decimal


def summary(values: list[float]) -> dict[str, Any]:
    """count, mean, p50, p90 (nearest rank) in seconds of non-negative values; None where there are none."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p90": None}
    values = sorted(values)  # runs of sorted lists merge fast (timsort)

    def pct(p: float) -> float:
        return round(values[max(0, math.ceil(p * len(values)) - 1)], 1)

    return {
        "count": len(values),
        "mean": round(sum(values) / len(values), 1),
        "p50": pct(0.5),
        "p90": pct(0.9),
    }


# --- overview -----------------------------------------------------------------------------------


def camera_health(gw: Any, session: Session) -> dict[str, int]:
    """Cameras by state: a running camera's live health, else the state saved last."""
    out = {"total": 0, "online": 0, "offline": 0, "error": 0, "other": 0, "disabled": 0}
    runners = dict(gw.analytics.runners)
    for cam_id, status, enabled in session.execute(select(Camera.id, Camera.status, Camera.enabled)):
        if not enabled:
            out["disabled"] += 1
            continue
        out["total"] += 1
        runner = runners.get(cam_id)
        state = runner.health.state if runner is not None else status
        out[state if state in ("online", "offline", "error") else "other"] += 1
    return out


def uplink_health(gw: Any) -> dict[str, Any]:
    targets = gw.uplinks.status()
    for t in targets:
        if not t["enabled"]:
            t["state"] = "disabled"
        elif t["circuit"] == "open" or not t["available"]:
            t["state"] = "down"
        elif t["dead"] or (t["oldest_pending_s"] or 0) > 60:
            t["state"] = "degraded"
        else:
            t["state"] = "ok"
    states = {t["state"] for t in targets if t["state"] != "disabled"}
    overall = (
        "none" if not states else "down" if "down" in states else "degraded" if "degraded" in states else "ok"
    )
    return {
        "state": overall,
        "pending": sum(t["pending"] for t in targets),
        "dead": sum(t["dead"] for t in targets),
        "targets": targets,
    }


def overview(gw: Any) -> dict[str, Any]:
    tz = site_zone(gw)
    now = dt.datetime.now(dt.UTC)
    local = now.astimezone(tz)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - dt.timedelta(days=today.weekday())  # the calendar week, from Monday
    today_utc, week_utc = today.astimezone(dt.UTC), week.astimezone(dt.UTC)
    is_open = Alarm.status.in_(OPEN_STATUSES)
    live = Alarm.source == "live"  # offline video alarms are no part of today's or this week's
    in_today = case((Alarm.occurred_at >= today_utc, 1), else_=0)
    opened = case((is_open, 1), else_=0)
    with gw.db.session() as s:
        rows = s.execute(
            # Grouped by the output names: PostgreSQL sees two copies of an expression with bound
            # parameters as different expressions.
            select(Alarm.scene, in_today.label("in_today"), opened.label("opened"), func.count())
            .where(Alarm.occurred_at >= week_utc, live)
            .group_by(Alarm.scene, "in_today", "opened")
        ).all()
        open_total = s.scalar(select(func.count()).select_from(Alarm).where(is_open, live)) or 0
        latest = list(s.scalars(select(Alarm).where(live).order_by(Alarm.id.desc()).limit(LATEST)))
        names = _camera_names(s, {a.camera_id for a in latest if a.camera_id})
        cameras = camera_health(gw, s)
    totals = {name: Counter[str]() for name in ("today", "week")}
    scenes = {name: Counter[str]() for name in ("today", "week")}
    for scene, today_row, open_row, count in rows:
        for name in ("week", "today") if today_row else ("week",):
            totals[name]["total"] += count
            totals[name]["open" if open_row else "handled"] += count
            scenes[name][scene] += count
    periods = {
        name: {
            "since": iso(start),
            "total": totals[name]["total"],
            "open": totals[name]["open"],
            "handled": totals[name]["handled"],
            "by_scene": dict(scenes[name].most_common()),
        }
        for name, start in (("today", today_utc), ("week", week_utc))
    }
    return {
        "timezone": gw.config.site.timezone,
        "generated_at": iso(now),
        **periods,
        "open_total": open_total,
        "cameras": cameras,
        "uplinks": uplink_health(gw),
        "latest": [_with_camera(alarm_json(a), names) for a in latest],
    }


def _camera_names(session: Session, ids: set[str]) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    rows = session.execute(select(Camera.id, Camera.name, Camera.location).where(Camera.id.in_(ids)))
    return {cid: (name, location) for cid, name, location in rows}


def _with_camera(item: dict[str, Any], names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    name, location = names.get(item["camera_id"] or "", (None, None))
    item["camera_name"], item["camera_location"] = name, location
    return item


@route(
    "GET",
    "/api/stats/overview",
    response=StatsOverview,
    scope="stats:read",
    tag="stats",
    summary="Home page: today's and this week's alarms by scene, open vs handled, camera and uplink "
    "health, latest alarms",
    query=(("format", "string", "json (default) or csv (counts by scene)"),),
)
async def stats_overview(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    if not want_csv(request):  # cached, invalidated by alarm writes (issue 19 item 19)
        return await cached_json(request, "overview", lambda: overview(gw))
    data = await asyncio.to_thread(overview, gw)
    scenes = sorted(set(data["week"]["by_scene"]) | set(data["today"]["by_scene"]))
    rows = [
        (key, *scene_names(key), data["today"]["by_scene"].get(key, 0), data["week"]["by_scene"].get(key, 0))
        for key in scenes
    ]
    rows.append(("(total)", "合计", "total", data["today"]["total"], data["week"]["total"]))
    rows.append(("(open)", "未处理", "open", data["today"]["open"], data["week"]["open"]))
    rows.append(("(handled)", "已处理", "handled", data["today"]["handled"], data["week"]["handled"]))
    now = dt.datetime.now(dt.UTC)
    return csv_response(
        f"vigil-overview-{stamp(now, site_zone(gw))}.csv",
        ("scene", "name_zh", "name_en", "today", "week"),
        rows,
    )


# --- alarms by group ----------------------------------------------------------------------------


def grouped(
    gw: Any,
    group: str,
    since: dt.datetime,
    until: dt.datetime,
    scene: str | None,
    camera_id: str | None,
    source: str = "live",
) -> tuple[dict[str, int], int]:
    """Counts per group key in [since, until) and the total."""
    tz = site_zone(gw)
    where = _filters(since, until, scene, camera_id, source)
    with gw.db.session() as s:
        if group in ("camera", "scene", "region"):
            column = {"camera": Alarm.camera_id, "scene": Alarm.scene, "region": Alarm.region}[group]
            rows = s.execute(select(column, func.count()).where(*where).group_by(column)).all()
            plain = {("" if k is None else str(k)): int(n) for k, n in rows}
            return plain, sum(plain.values())
        quarter = not _whole_hours(tz, since, until)
        bucket = utc_bucket(s, Alarm.occurred_at, quarter)
        rows = s.execute(select(bucket.label("bucket"), func.count()).where(*where).group_by("bucket")).all()
    counts: Counter[str] = Counter()
    for key, n in rows:
        local = bucket_time(str(key)).astimezone(tz)
        if group == "hour":
            counts[f"{local.hour:02d}"] += n
        elif group == "weekday":
            counts[str(local.isoweekday())] += n
        else:
            counts[local.date().isoformat()] += n
    return dict(counts), sum(counts.values())


def local_days(since: dt.datetime, until: dt.datetime, tz: ZoneInfo) -> list[str]:
    first = since.astimezone(tz).date()
    last = (until - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def alarm_groups(
    gw: Any,
    group: str,
    since: dt.datetime,
    until: dt.datetime,
    compare: bool,
    scene: str | None,
    camera_id: str | None,
    source: str = "live",
) -> dict[str, Any]:
    tz = site_zone(gw)
    counts, total = grouped(gw, group, since, until, scene, camera_id, source)
    prev_since, prev_until = since - (until - since), since
    prev: dict[str, int] = {}
    prev_total = 0
    if compare:
        prev, prev_total = grouped(gw, group, prev_since, prev_until, scene, camera_id, source)
    out: dict[str, Any] = {
        "group": group,
        "timezone": gw.config.site.timezone,
        "since": iso(since),
        "until": iso(until),
        "total": total,
    }
    items: list[dict[str, Any]]
    if group == "hour":
        items = [{"key": f"{h:02d}", "count": counts.get(f"{h:02d}", 0)} for h in range(24)]
        for it in items:
            it["previous"] = prev.get(it["key"], 0)
    elif group == "weekday":
        items = [{"key": str(d), "count": counts.get(str(d), 0)} for d in range(1, 8)]
        for it in items:
            it["previous"] = prev.get(it["key"], 0)
    elif group == "day":
        days = local_days(since, until, tz)
        before = local_days(prev_since, prev_until, tz)[-len(days) :] if compare else []
        items = []
        for i, day in enumerate(days):  # day i of this period against day i of the previous one
            item: dict[str, Any] = {"key": day, "count": counts.get(day, 0)}
            if compare:
                j = i - (len(days) - len(before))
                item["previous_key"] = before[j] if 0 <= j < len(before) else None
                item["previous"] = prev.get(before[j], 0) if 0 <= j < len(before) else 0
            items.append(item)
    else:
        keys = sorted(set(counts) | set(prev), key=lambda k: (-counts.get(k, 0), -prev.get(k, 0), k))
        items = [{"key": k, "count": counts.get(k, 0), "previous": prev.get(k, 0)} for k in keys]
        if group == "scene":
            for it in items:
                it["name_zh"], it["name_en"] = scene_names(it["key"])
        elif group == "camera":
            with gw.db.session() as s:
                names = _camera_names(s, {it["key"] for it in items if it["key"]})
            for it in items:
                it["camera_id"] = it["key"] or None
                it["name"], it["location"] = names.get(it["key"], (None, None))
    if not compare:
        for it in items:
            it.pop("previous", None)
    else:
        out["previous"] = {"since": iso(prev_since), "until": iso(prev_until), "total": prev_total}
        out["change"] = round((total - prev_total) / prev_total, 4) if prev_total else None
    out["items"] = items
    return out


@route(
    "GET",
    "/api/stats/alarms",
    response=StatsAlarms,
    scope="stats:read",
    tag="stats",
    summary="Alarm counts per camera, scene, region, local hour, day or weekday; optionally against the "
    "previous period of equal length",
    query=(
        ("group", "string", "camera, scene, hour, day, weekday or region (default scene)"),
        *TIME_QUERY,
        ("compare", "integer", "1: also count the previous period of equal length"),
        ("scene", "string", "only this scene"),
        ("camera_id", "string", "only this camera"),
    ),
)
async def stats_alarms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    group = request.query.get("group", "scene")
    if group not in GROUPS:
        raise ApiError(400, t_request("api.stats_group", groups=", ".join(GROUPS)))
    since, until = period(request)
    compare = request.query.get("compare", "0") in ("1", "true", "yes")
    as_csv = want_csv(request)
    scene, camera_id = request.query.get("scene") or None, request.query.get("camera_id") or None
    source = alarm_source(request)
    if not as_csv:  # cached, invalidated by alarm writes (issue 19 item 19)
        return await cached_json(
            request,
            "stats_alarms",
            lambda: alarm_groups(gw, group, since, until, compare, scene, camera_id, source),
        )
    data = await asyncio.to_thread(alarm_groups, gw, group, since, until, compare, scene, camera_id, source)
    extra = {"camera": ["name", "location"], "scene": ["name_zh", "name_en"]}.get(group, [])
    header = ["key", *extra, "count"] + (["previous"] if compare else [])
    rows = [[it.get(h) for h in header] for it in data["items"]]
    tz = site_zone(gw)
    return csv_response(f"vigil-alarms-by-{group}-{stamp(since, tz)}-{stamp(until, tz)}.csv", header, rows)


# --- disposal -----------------------------------------------------------------------------------

COUNT_FIELDS = (
    "total",
    "verified",
    "confirmed_true",
    "rejected_false",
    "unverified",
    "disposed",
    "cleared",
    "closed",
    "open",
    "handled",
)


def disposal_stats(
    gw: Any, since: dt.datetime, until: dt.datetime, scene: str | None, source: str = "live"
) -> dict[str, Any]:
    """One pass over the period's alarms: percentiles need every duration, and counting the same
    rows in Python is cheaper than scanning them again in SQL."""
    where = _filters(since, until, scene, None, source)
    first_disposal = (
        select(func.min(Disposal.handled_at))
        .where(Disposal.alarm_id == Alarm.id)
        .correlate(Alarm)
        .scalar_subquery()
    )
    per: dict[str, dict[str, Any]] = {}
    confirm_by: dict[str, list[float]] = {}
    dispose_by: dict[str, list[float]] = {}
    with gw.db.session() as s:
        result = s.connection().execute(
            select(
                Alarm.scene,
                Alarm.verdict,
                Alarm.status,
                Alarm.cleared_at.is_not(None),
                seconds_between(s, Alarm.confirmed_at, Alarm.raised_at),
                seconds_between(s, first_disposal, Alarm.raised_at),
            ).where(*where)
        )
        # The driver's plain tuples (strings, numbers: nothing to convert): building 200,000 Row
        # objects would cost as much as the query.
        rows: list[Any] = list(result.cursor.fetchall()) if result.cursor is not None else list(result.all())
    rows.sort(key=itemgetter(0))
    # Per scene, one comprehension per figure: far cheaper than a Python loop doing all per row.
    for key, group in groupby(rows, itemgetter(0)):
        g = list(group)
        verdicts, statuses = Counter(r[1] for r in g), Counter(r[2] for r in g)
        confirm_by[key] = [r[4] if r[4] > 0 else 0.0 for r in g if r[4] is not None]  # clocks may disagree
        dispose_by[key] = [r[5] if r[5] > 0 else 0.0 for r in g if r[5] is not None]
        per[key] = {
            "total": len(g),
            "confirmed_true": verdicts["true_positive"],
            "rejected_false": verdicts["false_positive"],
            "disposed": len(dispose_by[key]),
            "cleared": sum(1 for r in g if r[3]),
            "closed": statuses["closed"],
            "open": sum(statuses[st] for st in OPEN_STATUSES),
        }
    total: dict[str, Any] = dict.fromkeys(COUNT_FIELDS, 0)
    for row in per.values():
        row["verified"] = row["confirmed_true"] + row["rejected_false"]
        row["unverified"] = row["total"] - row["verified"]
        row["handled"] = row["total"] - row["open"]
        for f in COUNT_FIELDS:
            total[f] += row[f]
    items = []
    for key in sorted(per, key=lambda k: -per[k]["total"]):
        zh, en = scene_names(key)
        items.append(
            {
                "scene": key,
                "name_zh": zh,
                "name_en": en,
                **per[key],
                "time_to_confirm_s": summary(confirm_by.get(key, [])),
                "time_to_dispose_s": summary(dispose_by.get(key, [])),
            }
        )
    total["time_to_confirm_s"] = summary([v for vs in confirm_by.values() for v in vs])
    total["time_to_dispose_s"] = summary([v for vs in dispose_by.values() for v in vs])
    return {
        "timezone": gw.config.site.timezone,
        "since": iso(since),
        "until": iso(until),
        "total": total,
        "items": items,
    }


@route(
    "GET",
    "/api/stats/disposal",
    response=StatsDisposal,
    scope="stats:read",
    tag="stats",
    summary="Disposal statistics per scene: verified, true/false, disposed, cleared, closed, open; time to "
    "confirm and to dispose (mean, p50, p90 seconds)",
    query=(*TIME_QUERY, ("scene", "string", "only this scene")),
)
async def stats_disposal(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    since, until = period(request)
    as_csv = want_csv(request)
    scene, source = request.query.get("scene") or None, alarm_source(request)
    data = await asyncio.to_thread(disposal_stats, gw, since, until, scene, source)
    if not as_csv:
        return web.json_response(data)
    times = [f"{w}_{m}" for w in ("confirm", "dispose") for m in ("mean_s", "p50_s", "p90_s")]
    header = ["scene", "name_zh", "name_en", *COUNT_FIELDS, *times]

    def line(key: str, zh: str, en: str, row: dict[str, Any]) -> list[Any]:
        c, d = row["time_to_confirm_s"], row["time_to_dispose_s"]
        return [
            key,
            zh,
            en,
            *(row[f] for f in COUNT_FIELDS),
            c["mean"],
            c["p50"],
            c["p90"],
            d["mean"],
            d["p50"],
            d["p90"],
        ]

    rows = [line(it["scene"], it["name_zh"], it["name_en"], it) for it in data["items"]]
    rows.append(line("(total)", "合计", "total", data["total"]))
    tz = site_zone(gw)
    return csv_response(f"vigil-disposal-{stamp(since, tz)}-{stamp(until, tz)}.csv", header, rows)


@route(
    "GET", "/api/stats/summary", scope="stats:read", summary="Alarm counts per scene and status", tag="stats"
)
async def stats_summary(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            rows = s.execute(
                select(Alarm.scene, Alarm.status, func.count()).group_by(Alarm.scene, Alarm.status)
            )
            out: dict[str, dict[str, int]] = {}
            for scene, status, count in rows:
                out.setdefault(scene, {})[status] = count
            return {"by_scene": out}

    return web.json_response(await asyncio.to_thread(work))


# --- KPIs -----------------------------------------------------------------------------------------


@route(
    "GET",
    "/api/stats/kpi",
    response=StatsKpi,
    scope="stats:read",
    tag="stats",
    summary="Alarm KPIs per camera, area, scene or local day: alarms per hour, confirmed within 30 s, "
    "disposed within 30 min, open over 24 h, 10-minute peak, chattering targets, flood periods",
    query=(("group", "string", "camera, area, scene or period (local days; default scene)"), *TIME_QUERY),
)
async def stats_kpi(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    group = request.query.get("group", "scene")
    if group not in kpi.GROUPS:
        raise ApiError(400, t_request("api.stats_group", groups=", ".join(kpi.GROUPS)))
    since, until = period(request)
    source, as_csv = alarm_source(request), want_csv(request)
    tz = site_zone(gw)

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            data = kpi.alarm_kpis(s, group, since, until, tz, source)
            names = _camera_names(s, {it["key"] for it in data["items"]}) if group == "camera" else {}
        for it in data["items"]:
            if group == "scene":
                it["name_zh"], it["name_en"] = scene_names(it["key"])
            elif group == "camera":
                it["name"] = names.get(it["key"], (None, None))[0]
        return {
            "timezone": gw.config.site.timezone,
            "since": iso(since),
            "until": iso(until),
            "source": source,
            **data,
        }

    data = await asyncio.to_thread(work)
    if not as_csv:
        return web.json_response(data)
    extra = {"camera": ["name"], "scene": ["name_zh", "name_en"]}.get(group, [])
    header = ["key", *extra, *kpi.FIELDS]
    rows = [[it.get(h) for h in header] for it in data["items"]]
    rows.append(["(total)", *([""] * len(extra)), *(data["total"][f] for f in kpi.FIELDS)])
    return csv_response(f"vigil-kpi-by-{group}-{stamp(since, tz)}-{stamp(until, tz)}.csv", header, rows)
