"""HTTP handlers. Each declares its scope; blocking database work runs in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from gateway.alarms import OPEN_STATUSES
from gateway.api.http import AUTHENTICATED, PUBLIC, ApiError, parse_body, query_int, route
from gateway.auth import (
    ALL_SCOPES,
    Principal,
    authenticate_user,
    create_user,
    issue_token,
)
from gateway.cameras import camera_json
from gateway.config import CameraConfig
from gateway.db.schema import Alarm, ApiToken, Camera, Disposal, Evidence, Model, ModelVersion, User, utcnow
from gateway.keys import GATEWAY, LOGIN_GUARD, OPENAPI, PRINCIPAL
from gateway.times import as_utc, iso

Role = Literal["admin", "operator", "viewer"]


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def alarm_json(a: Alarm, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "camera_id": a.camera_id,
        "scene": a.scene,
        "region": a.region,
        "status": a.status,
        "priority": a.priority,
        "score": a.score,
        "message": a.message,
        "tags": a.tags,
        "occurred_at": iso(a.occurred_at),
        "raised_at": iso(a.raised_at),
        "confirmed_at": iso(a.confirmed_at),
        "cleared_at": iso(a.cleared_at),
        "closed_at": iso(a.closed_at),
        "verdict": a.verdict,
        "verdict_reason": a.verdict_reason,
        "revision": a.revision,
        "snapshot": f"/api/alarms/{a.id}/snapshot",
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


# --- health, metrics, OpenAPI -------------------------------------------------------------------


@route("GET", "/healthz", scope=PUBLIC, summary="Liveness and database reachability", tag="system")
async def healthz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def check() -> None:
        with gw.db.session() as s:
            s.execute(select(1))

    try:
        await asyncio.to_thread(check)
    except Exception:
        return web.json_response({"status": "degraded", "database": "unreachable"}, status=503)
    states = [r.health.state for r in gw.analytics.runners.values()]
    return web.json_response(
        {
            "status": "ok",
            "database": "ok",
            "cameras": {"total": len(states), "online": states.count("online")},
        }
    )


@route(
    "GET", "/metrics", scope="metrics:read", summary="Prometheus metrics", produces="text/plain", tag="system"
)
async def metrics(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(generate_latest, request.app[GATEWAY].metrics)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


@route("GET", "/api/openapi.json", scope=AUTHENTICATED, summary="This API's OpenAPI document", tag="system")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


# --- authentication -----------------------------------------------------------------------------


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@route(
    "POST",
    "/api/auth/login",
    scope=PUBLIC,
    summary="Log in; returns a session token",
    body=LoginBody,
    tag="auth",
)
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginBody)
    gw = request.app[GATEWAY]
    guard = request.app[LOGIN_GUARD]
    client = request.remote or "?"
    guard.check(client)

    def work() -> dict[str, Any] | None:
        with gw.db.session() as s:
            user = authenticate_user(s, body.username, body.password)
            if user is None:
                return None
            ttl = dt.timedelta(hours=gw.config.server.session_hours)
            secret, row = issue_token(
                s, f"session:{user.username}", "session", user.role, user_id=user.id, ttl=ttl
            )
            return {
                "token": secret,
                "role": user.role,
                "username": user.username,
                "expires_at": iso(row.expires_at),
            }

    result = await asyncio.to_thread(work)
    if result is None:
        guard.failed(client)
        raise ApiError(401, "wrong username or password")
    guard.succeeded(client)
    response = web.json_response(result)
    response.set_cookie(
        "vigil_session",
        result["token"],
        httponly=True,
        samesite="Strict",
        max_age=int(gw.config.server.session_hours * 3600),
    )
    return response


@route(
    "POST", "/api/auth/logout", scope=AUTHENTICATED, summary="Revoke the calling session token", tag="auth"
)
async def logout(request: web.Request) -> web.Response:
    gw, who = request.app[GATEWAY], principal(request)

    def work() -> None:
        with gw.db.session() as s:
            row = s.get(ApiToken, who.token_id)
            if row is not None and row.kind == "session":
                row.revoked_at = utcnow()

    await asyncio.to_thread(work)
    response = web.json_response({"ok": True})
    response.del_cookie("vigil_session")
    return response


@route("GET", "/api/me", scope=AUTHENTICATED, summary="Who the token belongs to", tag="auth")
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response(
        {"name": who.name, "role": who.role, "kind": who.kind, "scopes": sorted(who.scopes)}
    )


# --- alarms -------------------------------------------------------------------------------------


def parse_time(request: web.Request, name: str) -> dt.datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(
            400, f"query parameter {name} must be an ISO 8601 time, e.g. 2026-11-21T08:00:00+08:00"
        ) from exc
    return as_utc(value)


@route(
    "GET",
    "/api/alarms",
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
    ),
)
async def list_alarms(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    limit = query_int(request, "limit", 50, 1, 500)
    since, until = parse_time(request, "since"), parse_time(request, "until")
    q = request.query
    text = q.get("q", "").strip()
    if len(text) > 100:
        raise ApiError(400, "query parameter q may have at most 100 characters")
    verdict = q.get("verdict")
    if verdict not in (None, "", "true_positive", "false_positive", "none"):
        raise ApiError(400, "verdict must be true_positive, false_positive or none")

    def work() -> dict[str, Any]:
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
        with gw.db.session() as s:
            counted = stmt.with_only_columns(func.count(), maintain_column_froms=True)
            total = s.scalar(counted) if q.get("count") == "1" else None
            if q.get("before"):
                stmt = stmt.where(Alarm.id < q["before"])
            rows = list(s.scalars(stmt.order_by(Alarm.id.desc()).limit(limit)))
            items = [alarm_json(a) for a in rows]
        out: dict[str, Any] = {"items": items, "next": items[-1]["id"] if len(items) == limit else None}
        if total is not None:
            out["total"] = total
        return out

    return web.json_response(await asyncio.to_thread(work))


def load_alarm(gw: Any, alarm_id: str) -> dict[str, Any]:
    with gw.db.session() as s:
        alarm = s.scalar(
            select(Alarm)
            .where(Alarm.id == alarm_id)
            .options(selectinload(Alarm.revisions), selectinload(Alarm.evidence))
        )
        if alarm is None:
            raise ApiError(404, f"no alarm {alarm_id}")
        out = alarm_json(alarm, full=True)
        disposals = s.scalars(select(Disposal).where(Disposal.alarm_id == alarm_id).order_by(Disposal.id))
        out["disposals"] = [disposal_json(d) for d in disposals]
        return out


@route(
    "GET",
    "/api/alarms/{alarm_id}",
    scope="alarms:read",
    summary="One alarm with revisions and evidence",
    tag="alarms",
)
async def get_alarm(request: web.Request) -> web.Response:
    alarm_id = request.match_info["alarm_id"]
    return web.json_response(await asyncio.to_thread(load_alarm, request.app[GATEWAY], alarm_id))


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
        raise ApiError(400, "kind must be snapshot, snapshot_raw or clear_snapshot")

    def work() -> str | None:
        with gw.db.session() as s:
            return s.scalar(select(Evidence.path).where(Evidence.alarm_id == alarm_id, Evidence.kind == kind))

    rel = await asyncio.to_thread(work)
    if rel is None:
        raise ApiError(404, f"alarm {alarm_id} has no {kind}")
    path = gw.store.path(rel)
    if not path.is_file():
        raise ApiError(410, f"the {kind} file of alarm {alarm_id} is missing from storage")
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


# --- cameras ------------------------------------------------------------------------------------


@route(
    "GET",
    "/api/cameras",
    scope="cameras:read",
    summary="Cameras with live status",
    tag="cameras",
    query=(("include_removed", "boolean", "also list removed cameras (kept for their alarms)"),),
)
async def list_cameras(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    include_removed = request.query.get("include_removed", "").lower() in ("1", "true", "yes")

    def work() -> list[dict[str, Any]]:
        stmt = select(Camera).options(selectinload(Camera.tasks)).order_by(Camera.id)
        if not include_removed:
            stmt = stmt.where(Camera.status != "removed")
        with gw.db.session() as s:
            rows = s.scalars(stmt)
            return [camera_json(r, *_live(gw, r.id), onvif=gw.onvif.state(r.id)) for r in rows]

    return web.json_response({"items": await asyncio.to_thread(work)})


def _live(gw: Any, camera_id: str) -> tuple[Any, dict[str, str] | None]:
    """The running camera's stream health and scene statuses (None when it does not run)."""
    runner = gw.analytics.runners.get(camera_id)
    return (runner.health, runner.scene_status()) if runner is not None else (None, None)


@route(
    "GET",
    "/api/cameras/{camera_id}",
    scope="cameras:read",
    summary="One camera with live status",
    tag="cameras",
)
async def get_camera(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    return web.json_response(await asyncio.to_thread(camera_out, gw, camera_id))


@route(
    "POST",
    "/api/cameras",
    scope="cameras:write",
    body=CameraConfig,
    tag="cameras",
    summary="Add a camera with its scenes; it starts at once",
)
async def add_camera(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    cam = await parse_body(request, CameraConfig)
    try:
        await asyncio.to_thread(gw.add_camera, cam)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    return web.json_response(await asyncio.to_thread(camera_out, gw, cam.id), status=201)


def camera_out(gw: Any, camera_id: str) -> dict[str, Any]:
    """One camera as GET /api/cameras/{id} shows it (with live status): the answer of every camera route."""
    with gw.db.session() as s:
        row = s.get(Camera, camera_id)
        if row is None:
            raise ApiError(404, f"no camera {camera_id}")
        return camera_json(row, *_live(gw, camera_id), onvif=gw.onvif.state(camera_id))


# --- models -------------------------------------------------------------------------------------


@route("GET", "/api/models", scope="models:read", summary="Imported models and their versions", tag="models")
async def list_models(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            models = s.scalars(select(Model).options(selectinload(Model.versions)).order_by(Model.name))
            return [
                {
                    "name": m.name,
                    "family": m.family,
                    "description": m.description,
                    "licence": m.licence,
                    "source": m.source,
                    "created_at": iso(m.created_at),
                    "versions": [_version_json(v, gw) for v in m.versions],
                }
                for m in models
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


def _version_json(v: ModelVersion, gw: Any) -> dict[str, Any]:
    handle = gw.analytics.models.get(v.model.name)
    return {
        "id": v.id,
        "version": v.version,
        "sha256": v.sha256,
        "status": v.status,
        "metrics": v.metrics,
        "created_at": iso(v.created_at),
        "provider": handle.provider if handle is not None and handle.version_id == v.id else None,
    }


# --- users and tokens ---------------------------------------------------------------------------


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    display_name: str = Field("", max_length=100)


@route("GET", "/api/users", scope="users:read", summary="List users", tag="users")
async def list_users(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            return [
                {
                    "id": u.id,
                    "username": u.username,
                    "display_name": u.display_name,
                    "role": u.role,
                    "enabled": u.enabled,
                    "last_login_at": iso(u.last_login_at),
                }
                for u in s.scalars(select(User).order_by(User.username))
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


@route("POST", "/api/users", scope="users:write", summary="Add a user", body=UserBody, tag="users")
async def add_user(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, UserBody)

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            user = create_user(s, body.username, body.password, body.role, body.display_name)
            return {"id": user.id, "username": user.username, "role": user.role}

    try:
        return web.json_response(await asyncio.to_thread(work), status=201)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role = "viewer"
    kind: Literal["machine", "callback"] = "machine"
    scopes: list[str] | None = Field(None, description=f"subset of: {', '.join(sorted(ALL_SCOPES))}")
    ttl_days: float | None = Field(None, gt=0, le=3650)


@route(
    "POST",
    "/api/tokens",
    scope="users:write",
    body=TokenBody,
    tag="users",
    summary="Create a scoped API token; the secret is returned only in this answer",
)
async def add_token(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, TokenBody)

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            ttl = dt.timedelta(days=body.ttl_days) if body.ttl_days else None
            secret, row = issue_token(
                s,
                body.name,
                body.kind,
                body.role,
                set(body.scopes) if body.scopes is not None else None,
                ttl=ttl,
            )
            return {
                "id": row.id,
                "name": row.name,
                "token": secret,
                "role": row.role,
                "scopes": row.scopes,
                "expires_at": iso(row.expires_at),
            }

    try:
        return web.json_response(await asyncio.to_thread(work), status=201)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc


@route("GET", "/api/tokens", scope="users:read", summary="List tokens (never their secrets)", tag="users")
async def list_tokens(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            rows = s.scalars(select(ApiToken).where(ApiToken.kind != "session").order_by(ApiToken.id))
            return [
                {
                    "id": t.id,
                    "name": t.name,
                    "kind": t.kind,
                    "prefix": t.prefix,
                    "role": t.role,
                    "scopes": t.scopes,
                    "created_at": iso(t.created_at),
                    "expires_at": iso(t.expires_at),
                    "last_used_at": iso(t.last_used_at),
                    "revoked": t.revoked_at is not None,
                }
                for t in rows
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


@route("DELETE", "/api/tokens/{token_id}", scope="users:write", summary="Revoke a token", tag="users")
async def revoke_token(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        token_id = int(request.match_info["token_id"])
    except ValueError as exc:
        raise ApiError(400, "token id must be an integer") from exc

    def work() -> bool:
        with gw.db.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                return False
            row.revoked_at = row.revoked_at or utcnow()
            return True

    if not await asyncio.to_thread(work):
        raise ApiError(404, f"no token {token_id}")
    return web.json_response({"ok": True})


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


# --- offline video ------------------------------------------------------------------------------

VIDEO_TYPES = ("application/octet-stream",)
UPLOAD_CHUNK = 1024 * 1024


@route(
    "POST",
    "/api/videos",
    scope="alarms:write",
    tag="videos",
    summary="Upload a video (raw body, video/* or application/octet-stream) into the library and "
    "analyse it as a job; 202",
    query=(
        ("camera_id", "string", "the camera whose scenes and models analyse the video"),
        ("start", "string", "ISO 8601 time of the video's first frame (without zone: UTC)"),
        (
            "model",
            "string",
            "model the scenes read instead of their own: NAME, VERSION_ID or NAME@VERSION_ID",
        ),
        ("filename", "string", "the file's original name, kept in the library (up to 255 characters)"),
    ),
)
async def upload_video(request: web.Request) -> web.Response:
    from gateway.video_import import find_camera
    from gateway.video_library import submit_upload

    gw = request.app[GATEWAY]
    camera_id = request.query.get("camera_id")
    if not camera_id:
        raise ApiError(400, "query parameter camera_id is required")
    start = parse_time(request, "start")
    if start is None:
        raise ApiError(400, "query parameter start is required: the ISO 8601 time of the first frame")
    if not (request.content_type.startswith("video/") or request.content_type in VIDEO_TYPES):
        raise ApiError(
            415, "send the video as the raw body with Content-Type video/* or application/octet-stream"
        )
    camera = await asyncio.to_thread(find_camera, gw, camera_id)
    if camera is None:
        raise ApiError(404, f"no camera {camera_id}: configure it or add it (POST /api/cameras) first")
    model = request.query.get("model") or None
    filename = request.query.get("filename", "")
    if len(filename) > 255:
        raise ApiError(400, "query parameter filename may have at most 255 characters")
    limit_mb = gw.config.server.max_upload_mb
    limit = int(limit_mb * 1024 * 1024)
    too_large = f"video too large: the limit is {limit_mb:g} MB (server.max_upload_mb)"
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, too_large)
    uploads = gw.config.storage.root / "uploads"
    await asyncio.to_thread(uploads.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=uploads, prefix="video-", suffix=".upload")
    tmp = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, too_large)
                await asyncio.to_thread(fh.write, chunk)
        if size == 0:
            raise ApiError(400, "the request body is empty: send the video file as the body")
    except BaseException:  # too large, empty, or the client went away: nothing is left behind
        _discard(tmp)
        raise
    # Kept in the library (the same bytes for the same camera and start once); a file that is not a
    # video is removed and its job fails at once, saying why.
    args = (gw, tmp, camera_id, start, model, filename, principal(request).name)
    job = await asyncio.to_thread(submit_upload, *args)
    body = job.as_json()
    body["url"] = f"/api/jobs/{job.id}"
    return web.json_response(body, status=202, headers={"Location": body["url"]})


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@route("GET", "/api/jobs/{job_id}", scope="alarms:read", summary="An offline analysis job", tag="videos")
async def get_job(request: web.Request) -> web.Response:
    from gateway.video_library import serving

    job_id = request.match_info["job_id"]
    gw = request.app[GATEWAY]
    job = await asyncio.to_thread(lambda: serving(gw).get(job_id))
    if job is None:
        raise ApiError(404, f"no job {job_id}")
    return web.json_response(job.as_json())
