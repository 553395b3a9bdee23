"""GB/T 28181 administration: the devices the gateway knows and those held for approval
(``gb28181.server.unknown_devices: hold``). PTZ and recordings live with the cameras (cameras.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from gateway.api.http import ApiError, parse_body, route
from gateway.api.keys import GATEWAY, PRINCIPAL
from gateway.db.schema import Source
from gateway.gb28181.links import device_cameras, parse_channel_url, source_devices

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
            # A configured source standing for a device (its cameras address it) is that device, not
            # a second one; a source nothing links yet is listed under its own id, not registered.
            linked = source_devices(s)
            sources = {r.id: r for r in s.scalars(select(Source).where(Source.kind == "gb28181"))}
            by_device: dict[str, list[Source]] = {}
            for source_id, device_id in linked.items():
                by_device.setdefault(device_id or source_id, []).append(sources[source_id])
            cams = {
                device_id: device_cameras(
                    s, device_id, set(live[device_id].channels) if device_id in live else set()
                )
                for device_id in set(by_device) | set(live)
            }
            s.expunge_all()
        out = []
        for device_id in sorted(set(by_device) | set(live)):
            rows_src = sorted(by_device.get(device_id, []), key=lambda r: r.id == device_id)
            src, dev = (rows_src[0] if rows_src else None), live.get(device_id)
            rows = {
                c.gb_channel_id or parse_channel_url(c.stream_url or "")[1] or c.id: c
                for c in cams[device_id]
            }
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
            stored = dict((src.settings or {}).get("device_info") or {}) if src else {}
            out.append(
                {
                    "id": device_id,
                    "name": (src.name if src else None) or device_id,
                    "source": src.id if src else None,
                    "online": bool(dev and dev.online),
                    "registered": dev is not None,
                    "address": f"{dev.address.host}:{dev.address.port}"
                    if dev
                    else (src.address if src else None),
                    "status": src.status if src else ("online" if dev and dev.online else "unknown"),
                    "info": {**stored, **(dict(dev.info) if dev else {})},
                    "channels": channels,
                }
            )
        return out

    return web.json_response({"items": await asyncio.to_thread(work)})
