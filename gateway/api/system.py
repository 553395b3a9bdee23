"""The gateway itself: health, Prometheus metrics, the OpenAPI document and evidence storage.

Each handler declares its scope; blocking database work runs in a worker thread.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import select

from gateway.api.http import AUTHENTICATED, PUBLIC, route
from gateway.api.keys import GATEWAY, OPENAPI

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


@route("GET", "/api/site", scope=AUTHENTICATED, summary="The site: name and time zone", tag="system")
async def site(request: web.Request) -> web.Response:
    """The console shows every time in the site's zone (the zone statistics group by), and says which."""
    cfg = request.app[GATEWAY].config.site
    return web.json_response({"name": cfg.name, "timezone": cfg.timezone})


# --- offline video ------------------------------------------------------------------------------


@route(
    "GET",
    "/api/storage",
    scope="stats:read",
    tag="system",
    summary="Evidence storage: usage, quota, retention, clips kept or not",
)
async def storage(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(await asyncio.to_thread(gw.retention.usage))
