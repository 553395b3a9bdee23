"""Alarms: list and show (with evidence, revisions, disposals), snapshots and evidence files, and
the lifecycle actions for the console and for safety-management systems' callbacks.

Callbacks authenticate with a scoped token (``vigil tokens create --kind callback --scopes
alarms:read,alarms:write``). Send ``Idempotency-Key`` to make a retried call safe: a key already
applied changes nothing and answers with the alarm as it is (``changed: false``).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from gateway.alarms.lifecycle import (
    MAX_PHOTOS,
    AlarmNotFound,
    BadEvidence,
    Change,
    TransitionRefused,
    decode_picture,
)
from gateway.alarms.recorder import OPEN_STATUSES
from gateway.api.answers import AlarmDetail, AlarmList
from gateway.api.cache import cached_json
from gateway.api.http import ApiError, parse_body, query_int, route
from gateway.api.keys import GATEWAY, principal
from gateway.api.names import scene_names, site_zone
from gateway.db.schema import (
    Alarm,
    Camera,
    Disposal,
    Evidence,
)
from gateway.i18n import current_lang, t_request
from gateway.i18n.alarm_text import alarm_text
from gateway.times import as_utc, iso

MAX_KEY = 100


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="free text kept in the audit trail")


class ConfirmBody(Body):
    pass


class RejectBody(Body):
    reason: str = Field(min_length=1, max_length=500, description="why this is a false positive")


class Photo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str = Field(description="base64 JPEG or PNG, at most 1 MiB decoded")


class DisposeBody(Body):
    handler: str = Field(min_length=1, max_length=100, description="who handled it")
    handled_at: dt.datetime | None = Field(None, description="when (ISO 8601; default now)")
    result: str = Field(min_length=1, max_length=2000, description="what was found and done")
    measures: str | None = Field(None, max_length=2000, description="corrective measures")
    photos: list[Photo] = Field(default_factory=list, max_length=MAX_PHOTOS)


class ClearBody(Body):
    cleared_at: dt.datetime | None = Field(None, description="销警 time (ISO 8601; default now)")
    picture: str | None = Field(
        None, description="base64 JPEG/PNG at clear; default: the camera's current picture"
    )


class UpdateBody(Body):
    priority: int | None = Field(None, ge=0, le=4)


class CloseBody(Body):
    pass


def _request_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_KEY:
        raise ApiError(400, t_request("api.idempotency_key", max=MAX_KEY))
    return key


async def _apply(request: web.Request, change: Change) -> web.Response:
    gw = request.app[GATEWAY]
    alarm_id = request.match_info["alarm_id"]
    try:
        _, changed = await asyncio.to_thread(gw.lifecycle.apply, alarm_id, change)
    except AlarmNotFound as exc:
        raise ApiError(404, _worded(exc)) from exc
    except TransitionRefused as exc:
        raise ApiError(409, _worded(exc)) from exc
    body: dict[str, Any] = await asyncio.to_thread(load_alarm, gw, alarm_id)
    body["changed"] = changed
    return web.json_response(body)


def _worded(exc: AlarmNotFound | TransitionRefused) -> str:
    """A refusal in the user's language where it has a translation key (else as raised)."""
    return t_request(exc.key, **exc.params) if exc.key else str(exc)


def _picture(b64: str, what: str) -> Any:
    try:
        return decode_picture(b64, what)
    except BadEvidence as exc:
        raise ApiError(413 if exc.too_large else 422, str(exc)) from exc


def _when(value: dt.datetime | None, what: str) -> dt.datetime | None:
    value = as_utc(value)
    if value is not None and value > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise ApiError(422, t_request("api.in_future", what=what))
    return value


@route(
    "POST",
    "/api/alarms/{alarm_id}/confirm",
    scope="alarms:write",
    body=ConfirmBody,
    tag="alarms",
    summary="Confirm the alarm as true",
)
async def confirm(request: web.Request) -> web.Response:
    body = await parse_body(request, ConfirmBody)
    return await _apply(request, Change("confirm", principal(request).name, body.note, _request_key(request)))


@route(
    "POST",
    "/api/alarms/{alarm_id}/reject",
    scope="alarms:write",
    body=RejectBody,
    tag="alarms",
    summary="Reject the alarm as a false positive, with the reason",
)
async def reject(request: web.Request) -> web.Response:
    body = await parse_body(request, RejectBody)
    change = Change("reject", principal(request).name, body.note, _request_key(request), reason=body.reason)
    return await _apply(request, change)


@route(
    "POST",
    "/api/alarms/{alarm_id}/dispose",
    scope="alarms:write",
    body=DisposeBody,
    tag="alarms",
    summary="Record the disposal (handler, time, result, measures, photos) of a confirmed alarm",
)
async def dispose(request: web.Request) -> web.Response:
    body = await parse_body(request, DisposeBody)
    photos = [_picture(p.data, f"photo {i + 1}") for i, p in enumerate(body.photos)]
    change = Change(
        "dispose",
        principal(request).name,
        body.note,
        _request_key(request),
        handler=body.handler,
        handled_at=_when(body.handled_at, "handled_at"),
        result=body.result,
        measures=body.measures,
        photos=photos,
    )
    return await _apply(request, change)


@route(
    "POST",
    "/api/alarms/{alarm_id}/clear",
    scope="alarms:write",
    body=ClearBody,
    tag="alarms",
    summary="Clear (销警) an open alarm with its time and picture; its rule re-arms",
)
async def clear(request: web.Request) -> web.Response:
    body = await parse_body(request, ClearBody)
    change = Change(
        "clear",
        principal(request).name,
        body.note,
        _request_key(request),
        picture=_picture(body.picture, "picture") if body.picture else None,
        cleared_at=_when(body.cleared_at, "cleared_at"),
    )
    return await _apply(request, change)


@route(
    "POST",
    "/api/alarms/{alarm_id}/update",
    scope="alarms:write",
    body=UpdateBody,
    tag="alarms",
    summary="Change an alarm's priority or add a note",
)
async def update(request: web.Request) -> web.Response:
    body = await parse_body(request, UpdateBody)
    change = Change(
        "update", principal(request).name, body.note, _request_key(request), priority=body.priority
    )
    return await _apply(request, change)


@route(
    "POST",
    "/api/alarms/{alarm_id}/close",
    scope="alarms:write",
    body=CloseBody,
    tag="alarms",
    summary="Close a cleared or rejected alarm (needs a verdict, and a disposal when true)",
)
async def close(request: web.Request) -> web.Response:
    body = await parse_body(request, CloseBody)
    return await _apply(request, Change("close", principal(request).name, body.note, _request_key(request)))


def has_snapshot(a: Alarm, full: bool) -> bool:
    """Whether the alarm has a snapshot to link: from its evidence when loaded (``full``), else every
    alarm but a device's own (GB/T 28181 device alarms carry no frame)."""
    if full:
        return any(e.kind == "snapshot" for e in a.evidence)
    return (a.details or {}).get("source") != "gb28181"


def alarm_json(a: Alarm, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "camera_id": a.camera_id,
        "scene": a.scene,
        "region": a.region,
        "status": a.status,
        "priority": a.priority,
        "score": a.score,
        # in the user's language (the request's, gateway.i18n); the stored text is the canonical English
        "message": alarm_text(a.scene, a.region, a.message, a.details, current_lang()),
        "tags": a.tags,
        "occurred_at": iso(a.occurred_at),
        "raised_at": iso(a.raised_at),
        "confirmed_at": iso(a.confirmed_at),
        "cleared_at": iso(a.cleared_at),
        "closed_at": iso(a.closed_at),
        "verdict": a.verdict,
        "verdict_reason": a.verdict_reason,
        "revision": a.revision,
        # no link for an alarm without a frame (a GB/T 28181 device's own alarm): none rather than a 404
        "snapshot": f"/api/alarms/{a.id}/snapshot" if has_snapshot(a, full) else None,
        # live | video (an offline video job's: its job and the seconds into the video)
        "source": a.source,
        "video_job_id": a.video_job_id,
        "video_ts": a.video_ts,
        "kind": a.kind,  # event | flood (repeats of a flooding camera-scene merged into it)
        "repeats": a.repeats,
        "last_repeat_at": iso(a.last_repeat_at),
        "escalation_level": a.escalation_level,
    }
    if full:
        out["details"] = a.details
        out["revisions"] = [
            {
                "revision": r.revision,
                "action": r.action,
                "actor": r.actor,
                "at": iso(r.at),
                "changes": r.changes,
                "note": r.note,
            }
            for r in a.revisions
        ]
        out["evidence"] = [
            {
                "kind": e.kind,
                "sha256": e.sha256,
                "media_type": e.media_type,
                "size": e.size,
                "retain_until": iso(e.retain_until),
                "url": f"/api/alarms/{a.id}/evidence/{e.sha256}",
            }
            for e in a.evidence
        ]
    return out


def disposal_json(d: Disposal) -> dict[str, Any]:
    return {
        "handler": d.handler,
        "handled_at": iso(d.handled_at),
        "result": d.result,
        "measures": d.measures,
        "photos": list(d.photos or []),
        "recorded_at": iso(d.created_at),
    }


def parse_time(request: web.Request, name: str) -> dt.datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(400, t_request("api.time_format", name=name)) from exc
    if not 1970 <= value.year <= 2200:  # beyond this, period arithmetic overflows
        raise ApiError(400, t_request("api.time_range", name=name))
    # In UTC: SQLite compares the stored UTC times as text, so a bound with another offset
    # (2026-12-08T00:00:00+08:00, as the console sends) would be read 8 hours off.
    return as_utc(value).astimezone(dt.UTC)


@route(
    "GET",
    "/api/alarms",
    response=AlarmList,
    scope="alarms:read",
    summary="List alarms, newest first",
    tag="alarms",
    query=(
        ("camera_id", "string", "only this camera"),
        ("scene", "string", "only this scene"),
        ("status", "string", "raised, confirmed, rejected, disposed, cleared, closed, or open"),
        ("since", "string", "ISO 8601 lower bound of occurrence time"),
        ("until", "string", "ISO 8601 upper bound of occurrence time"),
        ("before", "string", "page cursor: alarm id to continue after"),
        ("limit", "integer", "page size, 1..500 (default 50)"),
        ("q", "string", "text in the message or the camera's name (up to 100 characters)"),
        ("region", "string", "only this region"),
        ("verdict", "string", "true_positive, false_positive, or none (not yet verified)"),
        ("count", "integer", "1: also return `total`, the number of alarms matching the filters"),
        ("source", "string", "live (running cameras) or video (offline video jobs); default both"),
        ("job", "string", "only this offline video job's alarms, in video time order (page with offset)"),
        ("offset", "integer", "with job: alarms to skip (the previous page's `next`)"),
    ),
)
async def list_alarms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    limit = query_int(request, "limit", 50, 1, 500)
    q = request.query
    stmt = filtered_alarms(request)

    def work() -> dict[str, Any]:
        nonlocal stmt
        with gw.db.session() as s:
            counted = stmt.with_only_columns(func.count(), maintain_column_froms=True)
            total = s.scalar(counted) if q.get("count") == "1" else None
            if q.get("job"):
                # One job's alarms in the order they happen in the video; the page cursor is an offset.
                offset = query_int(request, "offset", 0, 0, 1_000_000)
                ordered = stmt.order_by(Alarm.video_ts, Alarm.id).offset(offset).limit(limit)
                page = [alarm_json(a) for a in s.scalars(ordered)]
                more = str(offset + limit) if len(page) == limit else None
                job_out: dict[str, Any] = {"items": page, "next": more}
                if total is not None:
                    job_out["total"] = total
                return job_out
            if q.get("before"):
                stmt = stmt.where(Alarm.id < q["before"])
            rows = list(s.scalars(stmt.order_by(Alarm.id.desc()).limit(limit)))
            items = [alarm_json(a) for a in rows]
        out: dict[str, Any] = {"items": items, "next": items[-1]["id"] if len(items) == limit else None}
        if total is not None:
            out["total"] = total
        return out

    return await cached_json(request, "alarms", work)  # invalidated by alarm writes (issue 19 item 19)


def filtered_alarms(request: web.Request) -> Select[Alarm]:
    """The alarms the list's filters select (the list and the export share them)."""
    since, until = parse_time(request, "since"), parse_time(request, "until")
    q = request.query
    text = q.get("q", "").strip()
    if len(text) > 100:
        raise ApiError(400, t_request("api.q_too_long"))
    verdict = q.get("verdict")
    if verdict not in (None, "", "true_positive", "false_positive", "none"):
        raise ApiError(400, t_request("api.verdict"))
    stmt = select(Alarm)
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        named = select(Camera.id).where(Camera.name.ilike(like, escape="\\"))
        stmt = stmt.where(or_(Alarm.message.ilike(like, escape="\\"), Alarm.camera_id.in_(named)))
    if q.get("region"):
        stmt = stmt.where(Alarm.region == q["region"])
    if verdict == "none":
        stmt = stmt.where(Alarm.verdict.is_(None))
    elif verdict:
        stmt = stmt.where(Alarm.verdict == verdict)
    if q.get("camera_id"):
        stmt = stmt.where(Alarm.camera_id == q["camera_id"])
    if q.get("scene"):
        stmt = stmt.where(Alarm.scene == q["scene"])
    status = q.get("status")
    if status == "open":
        stmt = stmt.where(Alarm.status.in_(OPEN_STATUSES))
    elif status:
        stmt = stmt.where(Alarm.status == status)
    if since:
        stmt = stmt.where(Alarm.occurred_at >= since)
    if until:
        stmt = stmt.where(Alarm.occurred_at <= until)
    source, job = q.get("source") or None, q.get("job") or None
    if source not in (None, "live", "video"):
        raise ApiError(400, t_request("api.alarm_source"))
    if source:
        stmt = stmt.where(Alarm.source == source)
    if job is not None:
        if len(job) > 26:
            raise ApiError(400, t_request("api.video_job"))
        stmt = stmt.where(Alarm.video_job_id == job)
    return stmt


def load_alarm(gw: Any, alarm_id: str) -> dict[str, Any]:
    with gw.db.session() as s:
        alarm = s.scalar(
            select(Alarm)
            .where(Alarm.id == alarm_id)
            .options(selectinload(Alarm.revisions), selectinload(Alarm.evidence))
        )
        if alarm is None:
            raise ApiError(404, t_request("api.no_alarm", alarm=alarm_id))
        out = alarm_json(alarm, full=True)
        disposals = s.scalars(select(Disposal).where(Disposal.alarm_id == alarm_id).order_by(Disposal.id))
        out["disposals"] = [disposal_json(d) for d in disposals]
        return out


@route(
    "GET",
    "/api/alarms/{alarm_id}",
    response=AlarmDetail,
    scope="alarms:read",
    summary="One alarm with revisions and evidence",
    tag="alarms",
)
async def get_alarm(request: web.Request) -> web.Response:
    alarm_id = request.match_info["alarm_id"]
    return await cached_json(request, "alarm", lambda: load_alarm(request.app[GATEWAY], alarm_id))


@route(
    "GET",
    "/api/alarms/{alarm_id}/snapshot",
    scope="alarms:read",
    summary="The alarm picture (JPEG)",
    produces="image/jpeg",
    tag="alarms",
    query=(("kind", "string", "snapshot (annotated, default) or snapshot_raw"),),
)
async def alarm_snapshot(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    alarm_id, kind = request.match_info["alarm_id"], request.query.get("kind", "snapshot")
    if kind not in ("snapshot", "snapshot_raw", "clear_snapshot"):
        raise ApiError(400, t_request("api.evidence_kind"))

    def work() -> str | None:
        with gw.db.session() as s:
            return s.scalar(select(Evidence.path).where(Evidence.alarm_id == alarm_id, Evidence.kind == kind))

    rel = await asyncio.to_thread(work)
    if rel is None:
        raise ApiError(404, t_request("api.alarm_lacks", alarm=alarm_id, kind=kind))
    path = gw.store.path(rel)
    if not path.is_file():
        raise ApiError(410, t_request("api.alarm_file_missing", alarm=alarm_id, kind=kind))
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


@route(
    "GET",
    "/api/alarms/{alarm_id}/evidence/{sha256}",
    scope="alarms:read",
    tag="alarms",
    produces="application/octet-stream",
    summary="One evidence file of an alarm (picture, clip, photo)",
)
async def evidence_file(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    alarm_id, digest = request.match_info["alarm_id"], request.match_info["sha256"]

    def work() -> tuple[str, str] | None:
        with gw.db.session() as s:
            row = s.execute(
                select(Evidence.path, Evidence.media_type)
                .where(Evidence.alarm_id == alarm_id, Evidence.sha256 == digest)
                .limit(1)
            ).first()
            return (row[0], row[1]) if row else None

    found = await asyncio.to_thread(work)
    if found is None:
        raise ApiError(404, t_request("api.no_evidence", alarm=alarm_id, digest=digest))
    path = gw.store.path(found[0])
    if not path.is_file():
        raise ApiError(410, t_request("api.evidence_gone"))
    return web.FileResponse(
        path, headers={"Content-Type": found[1], "Cache-Control": "private, max-age=86400"}
    )


# --- export and batch actions (the console's alarm list) ----------------------------------------

EXPORT_LIMIT = 50_000
EXPORT_COLUMNS = {
    "zh": [
        "报警编号",
        "发生时间",
        "摄像机编号",
        "摄像机",
        "场景",
        "区域",
        "优先级",
        "置信度",
        "状态",
        "研判",
        "研判原因",
        "来源",
        "视频内时间(秒)",
        "描述",
    ],
    "en": [
        "Alarm id",
        "Occurred",
        "Camera id",
        "Camera",
        "Scene",
        "Region",
        "Priority",
        "Score",
        "Status",
        "Verdict",
        "Verdict reason",
        "Source",
        "Video time (s)",
        "Message",
    ],
}
STATUS_NAMES = {
    "zh": {
        "raised": "待确认",
        "confirmed": "已确认",
        "rejected": "误报",
        "disposed": "已处置",
        "cleared": "已销警",
        "closed": "已关闭",
    },
    "en": {
        "raised": "Raised",
        "confirmed": "Confirmed",
        "rejected": "False positive",
        "disposed": "Disposed",
        "cleared": "Cleared",
        "closed": "Closed",
    },
}
VERDICT_NAMES = {
    "zh": {"true_positive": "真实报警", "false_positive": "误报"},
    "en": {"true_positive": "True alarm", "false_positive": "False positive"},
}
SOURCE_NAMES = {"zh": {"live": "实时", "video": "离线视频"}, "en": {"live": "Live", "video": "Offline video"}}


def _export_rows(gw: Any, stmt: Select[Alarm], lang: str) -> tuple[list[str], list[list[Any]]]:
    """The header (naming the site's zone) and one row per alarm, newest first, times on the site's clock."""
    tz = site_zone(gw)
    zh = lang == "zh"
    header = list(EXPORT_COLUMNS[lang])
    header[1] += f" ({gw.config.site.timezone})"
    with gw.db.session() as s:
        alarms = list(s.scalars(stmt.order_by(Alarm.id.desc()).limit(EXPORT_LIMIT)))
        names: dict[str, str] = {cid: name for cid, name in s.execute(select(Camera.id, Camera.name))}
    rows = []
    for a in alarms:
        scene = scene_names(a.scene)[0 if zh else 1]
        source = getattr(a, "source", "live") or "live"
        rows.append(
            [
                a.id,
                as_utc(a.occurred_at).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                a.camera_id or "",
                names.get(a.camera_id or "", ""),
                scene,
                a.region or "",
                a.priority,
                round(a.score, 3),
                STATUS_NAMES[lang].get(a.status, a.status),
                VERDICT_NAMES[lang].get(a.verdict or "", ""),
                a.verdict_reason or "",
                SOURCE_NAMES[lang].get(source, source),
                round(a.video_ts, 1) if a.video_ts is not None else "",
                a.message,
            ]
        )
    return header, rows


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM lets Excel read the Chinese as UTF-8


def _xlsx(header: list[str], rows: list[list[Any]], title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@route(
    "GET",
    "/api/alarms/export",
    scope="alarms:read",
    summary="The alarms the list's filters select as a CSV or Excel file (times in the site's zone)",
    tag="alarms",
    produces="text/csv",
    query=(
        ("format", "string", "csv (default) or xlsx"),
        ("lang", "string", "zh (default) or en: column names, scene and status names"),
        (
            "camera_id",
            "string",
            "the list's filters: camera_id, scene, status, since, until, q, region, verdict",
        ),
    ),
)
async def export_alarms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    fmt, lang = request.query.get("format", "csv"), request.query.get("lang", "zh")
    if fmt not in ("csv", "xlsx"):
        raise ApiError(400, t_request("api.export_format"))
    if lang not in ("zh", "en"):
        raise ApiError(400, t_request("api.export_lang"))
    stmt = filtered_alarms(request)

    def work() -> bytes:
        header, rows = _export_rows(gw, stmt, lang)
        if fmt == "csv":
            return _csv(header, rows)
        return _xlsx(header, rows, "报警" if lang == "zh" else "Alarms")

    body = await asyncio.to_thread(work)
    stamp = dt.datetime.now(ZoneInfo(gw.config.site.timezone)).strftime("%Y%m%d-%H%M%S")
    media = "text/csv; charset=utf-8" if fmt == "csv" else XLSX_TYPE
    return web.Response(
        body=body,
        headers={
            "Content-Type": media,
            "Content-Disposition": f'attachment; filename="alarms-{stamp}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(min_length=1, max_length=200, description="the alarms (at most 200)")
    action: Literal["confirm", "reject"]
    reason: str | None = Field(
        None,
        max_length=500,
        description="one reason for all (required to reject; kept as the note of a confirm)",
    )


@route(
    "POST",
    "/api/alarms/batch",
    scope="alarms:write",
    body=BatchBody,
    tag="alarms",
    summary="Confirm or reject many alarms with one reason; answers per alarm (done, or why not)",
)
async def batch(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, BatchBody)
    reason = (body.reason or "").strip()
    if body.action == "reject" and not reason:
        raise ApiError(422, t_request("api.reject_reason"))
    actor = principal(request).name

    def work() -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for alarm_id in dict.fromkeys(body.ids):  # each alarm once, in the order given
            if body.action == "confirm":
                change = Change("confirm", actor, reason or None, None)
            else:
                change = Change("reject", actor, None, None, reason=reason)
            try:
                _, changed = gw.lifecycle.apply(alarm_id, change)
            except AlarmNotFound as exc:
                results.append({"id": alarm_id, "ok": False, "error": "not_found", "message": _worded(exc)})
            except TransitionRefused as exc:
                results.append({"id": alarm_id, "ok": False, "error": "refused", "message": _worded(exc)})
            else:
                results.append({"id": alarm_id, "ok": True, "changed": changed})
        return results

    results = await asyncio.to_thread(work)
    done = sum(1 for r in results if r["ok"])
    return web.json_response({"done": done, "failed": len(results) - done, "results": results})
