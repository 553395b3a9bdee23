"""GB/T 28181 administration: devices held for approval (``gb28181.server.unknown_devices: hold``),
PTZ control and the recordings a device holds for a channel."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from adapters.gb28181.common import GbError
from adapters.gb28181.manscdp import ptz_cmd
from gateway.api.http import ApiError, parse_body, route
from gateway.keys import GATEWAY, PRINCIPAL

GB_ID = re.compile(r"^\d{20}$")


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(
        min_length=1,
        max_length=128,
        description="the SIP digest password the device registers with (stored only as its digest "
        "HA1 for the server's realm, kept across restarts, never returned)",
    )


def _device_id(request: web.Request) -> str:
    device_id = request.match_info["device_id"]
    if not GB_ID.match(device_id):
        raise ApiError(400, f"{device_id!r} is not a GB/T 28181 device id: use its 20 digits")
    return device_id


def _not_held(device_id: str) -> ApiError:
    return ApiError(
        404, f"device {device_id} is not waiting for approval; GET /api/gb28181/pending lists those that are"
    )


@route(
    "GET",
    "/api/gb28181/pending",
    scope="cameras:read",
    tag="gb28181",
    summary="Devices that tried to register without a configured password, held for approval",
)
async def list_pending(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    server = gw.config.gb28181.server
    return web.json_response(
        {
            "items": gw.gb28181.pending(),
            "unknown_devices": server.unknown_devices if server is not None else None,
        }
    )


@route(
    "POST",
    "/api/gb28181/pending/{device_id}/approve",
    scope="cameras:write",
    body=ApproveBody,
    tag="gb28181",
    summary="Admit a held device with a password; its next REGISTER (with digest) is accepted",
)
async def approve_device(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    device_id = _device_id(request)
    body = await parse_body(request, ApproveBody)
    try:
        await gw.gb28181.approve(device_id, body.password, request[PRINCIPAL].name)
    except KeyError as exc:
        raise _not_held(device_id) from exc
    return web.json_response({"device_id": device_id, "status": "approved"})


@route(
    "POST",
    "/api/gb28181/pending/{device_id}/refuse",
    scope="cameras:write",
    tag="gb28181",
    summary="Refuse a held device: its REGISTERs are answered 403 from now on (kept across restarts)",
)
async def refuse_device(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    device_id = _device_id(request)
    try:
        await gw.gb28181.refuse(device_id, request[PRINCIPAL].name)
    except KeyError as exc:
        raise _not_held(device_id) from exc
    return web.json_response({"device_id": device_id, "status": "refused"})


class PtzBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal[
        "stop",
        "left",
        "right",
        "up",
        "down",
        "upleft",
        "upright",
        "downleft",
        "downright",
        "zoom_in",
        "zoom_out",
        "preset_set",
        "preset_goto",
        "preset_delete",
    ] = Field(description="a move (runs until `stop`), a zoom, or a preset operation")
    speed: int = Field(128, ge=0, le=255, description="pan/tilt speed")
    zoom_speed: int = Field(8, ge=0, le=15)
    preset: int = Field(0, ge=0, le=255, description="preset number (1-255) for the preset actions")


@route(
    "POST",
    "/api/cameras/{camera_id}/ptz",
    scope="cameras:write",
    body=PtzBody,
    tag="gb28181",
    summary="PTZ control of a GB/T 28181 channel (DeviceControl PTZCmd); moves run until action stop",
)
async def camera_ptz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    camera_id = request.match_info["camera_id"]
    body = await parse_body(request, PtzBody)
    try:
        ptz_cmd(body.action, body.speed, body.zoom_speed, body.preset)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    try:
        command = await gw.gb28181.ptz(camera_id, body.action, body.speed, body.zoom_speed, body.preset)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    except GbError as exc:
        raise ApiError(502, f"the device did not take the command: {exc}") from exc
    return web.json_response({"camera_id": camera_id, "action": body.action, "ptz_cmd": command})


def _time(request: web.Request, name: str) -> dt.datetime:
    raw = request.query.get(name)
    if raw is None:
        raise ApiError(400, f"give `{name}` as an ISO 8601 time, e.g. 2026-11-21T08:00:00+08:00")
    try:
        when = dt.datetime.fromisoformat(raw[:40])
    except ValueError as exc:
        raise ApiError(400, f"`{name}` is not an ISO 8601 time: {raw[:40]!r}") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@route(
    "GET",
    "/api/cameras/{camera_id}/records",
    scope="cameras:read",
    tag="gb28181",
    query=(
        ("start", "string", "ISO 8601 start (UTC unless it names a zone)"),
        ("end", "string", "ISO 8601 end; at most 31 days after start"),
    ),
    summary="Recordings a GB/T 28181 device holds for a channel (RecordInfo query)",
)
async def camera_records(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    camera_id = request.match_info["camera_id"]
    start, end = _time(request, "start"), _time(request, "end")
    if not start < end <= start + dt.timedelta(days=31):
        raise ApiError(400, "`end` must be after `start`, and at most 31 days later")
    try:
        items = await gw.gb28181.records(camera_id, start, end)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    except GbError as exc:
        raise ApiError(502, f"the device did not answer: {exc}") from exc
    return web.json_response({"camera_id": camera_id, "items": [dataclasses.asdict(i) for i in items]})
