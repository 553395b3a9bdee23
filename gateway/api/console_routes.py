"""Routes the web console needs beyond the core API: edit and remove cameras, the scene catalogue,
ONVIF discovery, GB/T 28181 devices, and user changes (the video library: video_routes.py)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from adapters import redact_url
from adapters.onvif import OnvifError, discover, probe
from adapters.onvif.client import insert_credentials
from analyzers.scenes import CATALOGUE, Scene, SceneConfig, SceneError, SceneInfo, scene_class
from gateway.alarm_types import AlarmTypeTable
from gateway.api.http import ApiError, parse_body, query_int, route
from gateway.api.routes import camera_out, principal
from gateway.api.stats_routes import scene_names
from gateway.auth import ROLES, check_password_strength, hash_password
from gateway.cameras import camera_config
from gateway.config import CameraConfig
from gateway.db.schema import ApiToken, Camera, Source, User, utcnow
from gateway.keys import GATEWAY
from gateway.times import iso

# --- cameras ------------------------------------------------------------------------------------


def _camera_row(s: Session, camera_id: str) -> Camera:
    """The camera's row; 404 for none or a removed one (kept only for its alarms)."""
    row = s.get(Camera, camera_id)
    if row is None or row.status == "removed":
        raise ApiError(404, f"no camera {camera_id}")
    return row


@route(
    "GET",
    "/api/cameras/{camera_id}/config",
    scope="cameras:read",
    tag="cameras",
    summary="A camera's full configuration (as PUT takes it); stream credentials shown as ***",
)
async def get_camera_config(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            row = _camera_row(s, camera_id)
            cam = camera_config(row)
        out = cam.model_dump(mode="json")
        out["url"] = redact_url(cam.url)
        out["sub_url"] = redact_url(cam.sub_url) if cam.sub_url else None
        return out

    return web.json_response(await asyncio.to_thread(work))


@route(
    "PUT",
    "/api/cameras/{camera_id}",
    scope="cameras:write",
    body=CameraConfig,
    tag="cameras",
    summary="Replace a camera's configuration (scenes, regions, thresholds, schedules, alarm settings) "
    "and restart it; a stream URL sent back as shown (user:password as ***) keeps the stored one",
)
async def put_camera(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    cam = await parse_body(request, CameraConfig)
    if cam.id != camera_id:
        raise ApiError(
            422,
            f"the body's id {cam.id!r} differs from the camera in the path {camera_id!r}; ids cannot change",
            [{"field": "id", "problem": "must equal the id in the path"}],
        )

    def keep_secrets() -> CameraConfig:
        with gw.db.session() as s:
            row = _camera_row(s, camera_id)
            changes: dict[str, Any] = {}
            if cam.url == redact_url(row.stream_url):  # the console sends back what it was shown
                changes["url"] = row.stream_url
            if cam.sub_url and row.sub_stream_url and cam.sub_url == redact_url(row.sub_stream_url):
                changes["sub_url"] = row.sub_stream_url
            return cam.model_copy(update=changes) if changes else cam

    full = await asyncio.to_thread(keep_secrets)
    try:
        await gw.update_camera(full)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    return web.json_response(await asyncio.to_thread(camera_out, gw, camera_id))


@route(
    "DELETE",
    "/api/cameras/{camera_id}",
    scope="cameras:write",
    tag="cameras",
    summary="Stop and remove a camera; its alarms stay (a camera with alarms is kept as 'removed')",
)
async def delete_camera(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    try:
        return web.json_response(await gw.remove_camera(camera_id))
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc


# --- scene catalogue ----------------------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema node with its local `$ref`s replaced by the definitions they name."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_inline(defs[ref[8:]], defs), **_inline(rest, defs)}
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


def _flatten(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(property, nullable): `X | None` (anyOf [X, null]) becomes X's schema with the property's own
    title, description and default."""
    branches = [b for b in prop.get("anyOf", []) if isinstance(b, dict)]
    real = [b for b in branches if b.get("type") != "null"]
    if len(real) == 1:
        own = {k: v for k, v in prop.items() if k != "anyOf"}
        return {**real[0], **own}, len(real) < len(branches)
    return prop, False


def scene_params(params: type[BaseModel]) -> list[dict[str, Any]]:
    """A scene's parameters for a form, from its pydantic Params model: one entry per field with the
    label (schema title) and description, the JSON type, bounds, choices and the default it applies."""
    schema = params.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    out = []
    for key, raw in schema.get("properties", {}).items():
        prop, nullable = _flatten(_inline(raw, defs))
        kind = prop.get("type") or ("string" if "enum" in prop else None)
        field = params.model_fields.get(key)
        default = None
        if field is not None and not field.is_required():
            default = to_jsonable_python(field.get_default(call_default_factory=True, validated_data={}))
        out.append(
            {
                "key": key,
                "label": prop.get("title", key),
                "description": prop.get("description"),
                "type": kind,
                "nullable": nullable,
                "required": key in required,
                "default": default,
                "enum": prop.get("enum"),
                "items": prop.get("items"),
                "minimum": prop.get("minimum"),
                "maximum": prop.get("maximum"),
                "exclusive_minimum": prop.get("exclusiveMinimum"),
                "exclusive_maximum": prop.get("exclusiveMaximum"),
                "schema": prop,
            }
        )
    return out


def scene_entry(key: str, info: SceneInfo, types: AlarmTypeTable) -> dict[str, Any]:
    """What the console needs of one catalogue scene: names, defaults, alarm type and parameters."""
    try:
        cls: type[Scene] | None = scene_class(key)
    except SceneError:
        cls = None
    zh, en = scene_names(key)
    alarm_type = types.get(key)
    return {
        "key": key,
        "name_zh": zh,
        "name_en": en,
        "catalogue_zh": info.name_zh,
        "catalogue_en": info.name_en,
        "sample_fps": info.sample_fps,
        "implemented": cls is not None,
        "default_model": cls.default_model if cls else None,
        "uses_pose": cls.uses_pose if cls else False,
        "labels": sorted(cls.labels) if cls else [],
        "alarm_types": [
            {
                "code": alarm_type.code,
                "zh": alarm_type.zh,
                "en": alarm_type.en,
                "gb_alarm_method": alarm_type.gb_alarm_method,
                "gb_alarm_type": alarm_type.gb_alarm_type,
            }
        ],
        "params": scene_params(cls.Params) if cls else [],
        "params_schema": cls.Params.model_json_schema() if cls else None,
    }


@route(
    "GET",
    "/api/scenes",
    scope="cameras:read",
    tag="cameras",
    summary="The scene catalogue: per scene its names (zh/en), default sampling rate and model, pose use, "
    "alarm type code(s), and its parameters (label, description, type, bounds, default) with their JSON "
    "schema; the alarm type table and the JSON schema of a scene configuration",
)
async def list_scenes(request: web.Request) -> web.Response:
    types: AlarmTypeTable = request.app[GATEWAY].outbox.types
    items = [scene_entry(key, info, types) for key, info in CATALOGUE.items()]
    return web.json_response(
        {
            "items": items,
            "alarm_types": {
                "version": types.version,
                "items": [{"code": t.code, "zh": t.zh, "en": t.en} for t in types.types.values()],
            },
            "scene_config_schema": SceneConfig.model_json_schema(),
        }
    )


# --- discovery ----------------------------------------------------------------------------------


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiError(400, f"target must be HOST:PORT, not {text!r}")
    return host, int(port)


@route(
    "GET",
    "/api/discovery/onvif",
    scope="cameras:write",
    tag="cameras",
    summary="Find ONVIF cameras by WS-Discovery (multicast, or unicast to the given targets)",
    query=(
        ("wait_ms", "integer", "how long to listen for answers, 200..10000 (default 2000)"),
        ("target", "string", "HOST:PORT to probe by unicast instead of multicast (repeatable, up to 32)"),
    ),
)
async def discover_onvif(request: web.Request) -> web.Response:
    wait_s = query_int(request, "wait_ms", 2000, 200, 10000) / 1000
    targets = [_target(t) for t in request.query.getall("target", [])][:32]
    try:
        devices = await discover(wait_s, multicast=not targets, targets=targets)
    except OSError as exc:
        raise ApiError(503, f"WS-Discovery could not run on this host: {exc}") from exc
    known = await asyncio.to_thread(_known_hosts, request.app[GATEWAY])
    items = [
        {
            "endpoint": d.endpoint,
            "host": d.host,
            "port": d.port,
            "xaddrs": list(d.xaddrs),
            "name": d.name,
            "location": d.location,
            "hardware": d.hardware,
            "mac": d.mac,
            "source": d.source,
            "added": [c for c, host in known if host and host == d.host],
        }
        for d in devices
    ]
    return web.json_response({"items": items, "wait_ms": int(wait_s * 1000)})


def _known_hosts(gw: Any) -> list[tuple[str, str | None]]:
    from urllib.parse import urlsplit

    with gw.db.session() as s:
        rows = s.execute(select(Camera.id, Camera.stream_url).where(Camera.status != "removed"))
        return [(cid, urlsplit(url).hostname) for cid, url in rows]


class ProbeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(80, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(max_length=256)


@route(
    "POST",
    "/api/discovery/onvif/probe",
    scope="cameras:write",
    body=ProbeBody,
    tag="cameras",
    summary="Read a found ONVIF device with its credentials: model, profiles, stream addresses, PTZ; "
    "returns a camera configuration ready for POST /api/cameras",
)
async def probe_onvif(request: web.Request) -> web.Response:
    body = await parse_body(request, ProbeBody)
    try:
        cam = await probe(body.host, body.port, body.username, body.password, timeout_s=8.0)
    except (OnvifError, OSError, TimeoutError) as exc:
        raise ApiError(502, f"the device at {body.host}:{body.port} did not answer as ONVIF: {exc}") from exc
    url = insert_credentials(cam.main_stream_uri, body.username, body.password)
    sub = insert_credentials(cam.sub_stream_uri, body.username, body.password) if cam.sub_stream_uri else None
    return web.json_response(
        {
            "manufacturer": cam.info.manufacturer,
            "model": cam.info.model,
            "firmware": cam.info.firmware,
            "main": {"width": cam.main.width, "height": cam.main.height, "encoding": cam.main.encoding},
            "main_stream_uri": redact_url(url),
            "sub_stream_uri": redact_url(sub) if sub else None,
            "ptz": cam.ptz is not None,
            # The caller typed these credentials; the suggestion carries them so it can be POSTed as is.
            "camera": {
                "name": cam.info.model,
                "url": url,
                "sub_url": sub,
                "quality": f"{cam.main.width}x{cam.main.height} {cam.main.encoding}",
            },
        }
    )


# --- GB/T 28181 devices -------------------------------------------------------------------------


@route(
    "GET",
    "/api/gb28181/devices",
    scope="cameras:read",
    tag="cameras",
    summary="GB/T 28181 devices registered to this gateway, online state and catalog channels",
)
async def gb_devices(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    upper = gw.gb28181.upper
    if upper is None:
        raise ApiError(
            503,
            "the GB/T 28181 upper-platform role is off: configure gb28181.server in the gateway "
            "configuration and restart to let devices register",
        )
    live = {d.device_id: d for d in list(upper.devices.values())}

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            sources = {r.id: r for r in s.scalars(select(Source).where(Source.kind == "gb28181"))}
            cams = list(s.scalars(select(Camera).where(Camera.source_id.in_(set(sources) | set(live)))))
        out = []
        for device_id in sorted(set(sources) | set(live)):
            src, dev = sources.get(device_id), live.get(device_id)
            rows = {c.gb_channel_id or c.id: c for c in cams if c.source_id == device_id}
            channel_ids = sorted(set(rows) | set(dev.channels if dev else {}))
            channels = []
            for ch in channel_ids:
                item = dev.channels.get(ch) if dev else None
                row = rows.get(ch)
                channels.append(
                    {
                        "id": ch,
                        "name": (item.name if item else None) or (row.name if row else ch),
                        "status": item.status if item else None,
                        "manufacturer": item.manufacturer if item else None,
                        "model": item.model if item else None,
                        "address": item.address if item else None,
                        "ptz_type": item.ptz_type if item else None,
                        "camera_id": row.id if row else None,
                        "camera_status": row.status if row else None,
                        "analysed": bool(row and row.id in gw.analytics.runners),
                    }
                )
            out.append(
                {
                    "id": device_id,
                    "name": (src.name if src else None) or device_id,
                    "online": bool(dev and dev.online),
                    "registered": dev is not None,
                    "address": f"{dev.address.host}:{dev.address.port}"
                    if dev
                    else (src.address if src else None),
                    "status": src.status if src else ("online" if dev and dev.online else "unknown"),
                    "info": dict(dev.info) if dev else {},
                    "channels": channels,
                }
            )
        return out

    return web.json_response({"items": await asyncio.to_thread(work)})


# --- users --------------------------------------------------------------------------------------


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "operator", "viewer"] | None = None
    disabled: bool | None = Field(None, description="true: the user can no longer log in")
    enabled: bool | None = Field(None, description="the opposite of disabled (as GET /api/users shows it)")
    password: str | None = Field(None, min_length=10, max_length=256)
    display_name: str | None = Field(None, max_length=100)


@route(
    "PATCH",
    "/api/users/{user_id}",
    scope="users:write",
    body=UserPatch,
    tag="users",
    summary="Change a user's role, disable or enable them, set a new password; their other sessions end",
)
async def patch_user(request: web.Request) -> web.Response:
    gw, who = request.app[GATEWAY], principal(request)
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError as exc:
        raise ApiError(400, "user id must be an integer (see GET /api/users)") from exc
    body = await parse_body(request, UserPatch)
    if body.disabled is not None and body.enabled is not None and body.disabled == body.enabled:
        raise ApiError(422, "disabled and enabled contradict each other; send one of them")
    enabled = (
        body.enabled if body.enabled is not None else None if body.disabled is None else not body.disabled
    )
    if body.password is not None:
        try:
            check_password_strength(body.password)
        except ValueError as exc:
            raise ApiError(422, str(exc), [{"field": "password", "problem": str(exc)}]) from exc
    assert body.role is None or body.role in ROLES

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise ApiError(404, f"no user {user_id}")
            role = body.role or user.role
            active = user.enabled if enabled is None else enabled
            if user.role == "admin" and user.enabled and (role != "admin" or not active):
                others = s.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == "admin", User.enabled.is_(True), User.id != user.id)
                )
                if not others:
                    raise ApiError(
                        409, f"{user.username} is the last enabled admin; make another user admin first"
                    )
            changed = []
            if role != user.role:
                user.role = role
                changed.append("role")
            if active != user.enabled:
                user.enabled = active
                changed.append("enabled")
            if body.password is not None:
                user.password_hash = hash_password(body.password)
                changed.append("password")
            if body.display_name is not None and body.display_name != user.display_name:
                user.display_name = body.display_name
                changed.append("display_name")
            ended = 0
            if {"role", "enabled", "password"} & set(changed):
                # Sessions carry the role they were issued with: end them (the caller's own stays).
                result = s.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.user_id == user.id,
                        ApiToken.kind == "session",
                        ApiToken.revoked_at.is_(None),
                        ApiToken.id != who.token_id,
                    )
                    .values(revoked_at=utcnow())
                )
                ended = int(getattr(result, "rowcount", 0) or 0)  # an UPDATE's CursorResult
            return {
                "id": user.id,
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
                "enabled": user.enabled,
                "last_login_at": iso(user.last_login_at),
                "changed": changed,
                "sessions_ended": int(ended or 0),
            }

    return web.json_response(await asyncio.to_thread(work))
