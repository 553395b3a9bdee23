"""Production units (装置) and their run states: the plant's real-time systems set states with a token
that holds only ``units:write``; the console reads units, their cameras and the audit trail."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from analyzers.scenes.unit_rules import UnitState
from gateway.api.answers import UnitList
from gateway.api.http import ApiError, parse_body, query_int, route
from gateway.api.keys import GATEWAY, principal
from gateway.units.states import UnitError, UnitStates

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: UnitState = Field(description="running, shut_down, maintenance, hot_work or lifting")
    actor: str | None = Field(None, max_length=100, description="who or what set it (DCS tag, permit system)")


class UnitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200, description="unit name, e.g. 常减压装置")


def _units(request: web.Request) -> UnitStates:
    return request.app[GATEWAY].units


def _unit_id(request: web.Request) -> str:
    unit_id = request.match_info["unit_id"]
    if not ID_RE.match(unit_id):
        raise ApiError(
            400,
            "a unit id is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            {"message_zh": "装置编号为 1-64 个字母、数字、'.'、'_' 或 '-'，以字母或数字开头"},
        )
    return unit_id


def _unit_error(exc: UnitError) -> ApiError:
    return ApiError(exc.status, str(exc), {"message_zh": exc.zh})


def _cameras_by_unit(request: web.Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cam in request.app[GATEWAY].config.cameras:
        if cam.unit is not None:
            out.setdefault(cam.unit, []).append(cam.id)
    for runner_id, runner in list(request.app[GATEWAY].analytics.runners.items()):
        unit = runner.camera.unit
        if unit is not None and runner_id not in out.get(unit, []):
            out.setdefault(unit, []).append(runner_id)
    return out


@route(
    "GET",
    "/api/units",
    response=UnitList,
    scope="units:read",
    tag="units",
    summary="Production units with their run state and cameras",
)
async def list_units(request: web.Request) -> web.Response:
    cameras = _cameras_by_unit(request)
    items: list[dict[str, Any]] = [
        {**u.json(), "cameras": sorted(cameras.get(u.id, []))} for u in _units(request).all()
    ]
    return web.json_response({"items": items})


@route(
    "PUT",
    "/api/units/{unit_id}",
    scope="units:write",
    tag="units",
    body=UnitBody,
    summary="Add a unit (state running) or rename it",
)
async def put_unit(request: web.Request) -> web.Response:
    unit_id = _unit_id(request)
    body = await parse_body(request, UnitBody)
    units = _units(request)
    await asyncio.to_thread(units.rename, unit_id, body.name)
    view = units.get(unit_id)
    assert view is not None
    return web.json_response(view.json())


@route(
    "PUT",
    "/api/units/{unit_id}/state",
    scope="units:write",
    tag="units",
    body=StateBody,
    summary="Set a unit's run state (audited); scenes switch by their unit_rules",
)
async def put_state(request: web.Request) -> web.Response:
    unit_id = _unit_id(request)
    body = await parse_body(request, StateBody)
    who = principal(request)
    actor = f"{who.name}: {body.actor}" if body.actor else who.name
    units = _units(request)
    try:
        changed = await asyncio.to_thread(units.set_state, unit_id, body.state, actor, "http")
    except UnitError as exc:
        raise _unit_error(exc) from exc
    view = units.get(unit_id)
    assert view is not None
    return web.json_response({**view.json(), "changed": changed})


@route(
    "GET",
    "/api/units/audit",
    scope="units:read",
    tag="units",
    query=(
        ("unit", "string", "only this unit"),
        ("limit", "integer", "newest first, at most 1000 (default 100)"),
    ),
    summary="Audit trail: state changes and the alarms a state suppressed or re-prioritised",
)
async def unit_audit(request: web.Request) -> web.Response:
    unit = request.query.get("unit")
    if unit is not None and not ID_RE.match(unit):
        raise ApiError(400, "query parameter unit is not a unit id", {"message_zh": "参数 unit 不是装置编号"})
    limit = query_int(request, "limit", 100, 1, 1000)
    items = await asyncio.to_thread(_units(request).audit, unit, limit)
    return web.json_response({"items": items})
