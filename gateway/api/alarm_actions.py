"""Alarm lifecycle actions for the console and for safety-management systems' callbacks.

Callbacks authenticate with a scoped token (``vigil tokens create --kind callback --scopes
alarms:read,alarms:write``). Send ``Idempotency-Key`` to make a retried call safe: a key already
applied changes nothing and answers with the alarm as it is (``changed: false``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.http import ApiError, parse_body, route
from gateway.api.routes import load_alarm, principal
from gateway.keys import GATEWAY
from gateway.lifecycle import (
    MAX_PHOTOS,
    AlarmNotFound,
    BadEvidence,
    Change,
    TransitionRefused,
    decode_picture,
)
from gateway.times import as_utc

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
        raise ApiError(400, f"Idempotency-Key must be 1..{MAX_KEY} characters")
    return key


async def _apply(request: web.Request, change: Change) -> web.Response:
    gw = request.app[GATEWAY]
    alarm_id = request.match_info["alarm_id"]
    try:
        _, changed = await asyncio.to_thread(gw.lifecycle.apply, alarm_id, change)
    except AlarmNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except TransitionRefused as exc:
        raise ApiError(409, str(exc)) from exc
    body: dict[str, Any] = await asyncio.to_thread(load_alarm, gw, alarm_id)
    body["changed"] = changed
    return web.json_response(body)


def _picture(b64: str, what: str) -> Any:
    try:
        return decode_picture(b64, what)
    except BadEvidence as exc:
        raise ApiError(413 if exc.too_large else 422, str(exc)) from exc


def _when(value: dt.datetime | None, what: str) -> dt.datetime | None:
    value = as_utc(value)
    if value is not None and value > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise ApiError(422, f"{what} is in the future; send the time it happened")
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
