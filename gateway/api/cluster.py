"""Scale-out: events from analysis nodes, where each camera runs and the nodes' load, rebalance.

Analysis nodes post their alarm events here with a machine token holding ``alarms:write``; the
body may carry a clip, so it has its own size limit (``cluster.max_event_mb``) instead of the API's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref

from aiohttp import web
from pydantic import ValidationError

from gateway.api.answers import ClusterAnswer
from gateway.api.http import ApiError, route
from gateway.api.keys import GATEWAY
from gateway.app import Gateway
from gateway.cluster.events import Envelope
from gateway.cluster.ingest import DeliveryLedger, EventIngest

CHUNK = 1 << 16
_INGESTS: weakref.WeakKeyDictionary[Gateway, EventIngest] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _ingest(gw: Gateway) -> EventIngest:
    """The gateway's ingest (one ledger and lock per control node), made on the first event."""
    with _LOCK:
        if gw not in _INGESTS:
            ledger = DeliveryLedger(gw.config.storage.root / "cluster" / "deliveries")
            _INGESTS[gw] = EventIngest(gw.recorder, gw.clips, ledger)
        return _INGESTS[gw]


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"the event is larger than cluster.max_event_mb ({limit // 1024 // 1024} MB)")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the event is larger than cluster.max_event_mb ({limit // 1024 // 1024} MB)")
        chunks.append(chunk)


@route(
    "POST",
    "/api/cluster/events",
    scope="alarms:write",
    summary="An alarm event (or clip) from an analysis node; each delivery key is recorded once",
    body=Envelope,
    tag="cluster",
)
async def post_event(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise ApiError(415, "send the event as JSON with Content-Type: application/json")
    gw = request.app[GATEWAY]
    raw = await _read_limited(request, int(gw.config.cluster.max_event_mb * 1024 * 1024))
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise ApiError(422, "the event is not valid: " + json.dumps(problems[:5]), problems) from exc
    try:
        answer = await asyncio.to_thread(_ingest(gw).accept, envelope)
    except ValueError as exc:
        raise ApiError(422, f"the event is not valid: {exc}") from exc
    return web.json_response(answer)


@route(
    "GET",
    "/api/cluster",
    response=ClusterAnswer,
    scope="cameras:read",
    summary="Each camera's node and the nodes' load",
    tag="cluster",
)
async def get_cluster(request: web.Request) -> web.Response:
    engine = request.app[GATEWAY].engine
    return web.json_response(await asyncio.to_thread(engine.status))


@route(
    "POST",
    "/api/cluster/rebalance",
    scope="cameras:write",
    summary="Spread the cameras evenly over the live analysis nodes",
    tag="cluster",
)
async def post_rebalance(request: web.Request) -> web.Response:
    engine = request.app[GATEWAY].engine
    moves = await asyncio.to_thread(engine.rebalance)
    return web.json_response({"moves": moves})
