"""Uplink administration (targets, dead letters, replay, backfill) and the big-screen feed
(WebSocket and SSE with replay from a sequence number).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from gateway.alarms.recorder import OPEN_STATUSES
from gateway.api.answers import UplinkList
from gateway.api.http import ApiError, parse_body, query_int, route
from gateway.api.keys import GATEWAY
from gateway.db.schema import Alarm, OutboxRow, UplinkTarget
from gateway.delivery.uplinks import UnknownTarget
from gateway.i18n import t_request
from gateway.times import as_utc
from uplink.targets.websocket import FeedHub, Subscriber, feed_item

log = logging.getLogger(__name__)
T = TypeVar("T")

REPLAY_LIMIT = 1000  # records sent from the log per reconnect; a screen further behind reloads the list
STATS_EVERY_S = 5.0


@route(
    "GET",
    "/api/uplinks",
    response=UplinkList,
    scope="uplink:read",
    tag="uplink",
    summary="Uplink targets per tier with status, backlog, last error and dead letters",
)
async def list_uplinks(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response({"items": await asyncio.to_thread(gw.uplinks.status)})


async def _on_target(request: web.Request, work: Callable[..., T], *args: Any) -> T:
    """Run an admin call on the target named in the path, off the loop; an unknown name is a 404."""
    try:
        return await asyncio.to_thread(work, request.match_info["name"], *args)
    except UnknownTarget as exc:
        raise ApiError(404, t_request(exc.key, **exc.params) if exc.key else str(exc)) from exc


@route(
    "GET",
    "/api/uplinks/{name}/dead",
    scope="uplink:read",
    tag="uplink",
    summary="Dead-lettered messages of one target",
)
async def dead_letters(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 100, 1, 1000)
    items = await _on_target(request, request.app[GATEWAY].uplinks.dead_letters, limit)
    return web.json_response({"items": items})


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(
        default_factory=list, max_length=10000, description="rows to replay; empty = all dead"
    )


@route(
    "POST",
    "/api/uplinks/{name}/replay",
    scope="uplink:write",
    body=ReplayBody,
    tag="uplink",
    summary="Queue dead-lettered messages again",
)
async def replay(request: web.Request) -> web.Response:
    body = await parse_body(request, ReplayBody)
    count = await _on_target(request, request.app[GATEWAY].uplinks.replay, body.ids or None)
    return web.json_response({"replayed": count})


class BackfillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: dt.datetime
    until: dt.datetime


@route(
    "POST",
    "/api/uplinks/{name}/backfill",
    scope="uplink:write",
    body=BackfillBody,
    tag="uplink",
    summary="补传: send again every alarm that occurred in a time range",
)
async def backfill(request: web.Request) -> web.Response:
    body = await parse_body(request, BackfillBody)
    since, until = as_utc(body.since), as_utc(body.until)
    assert since is not None and until is not None
    if since > until:
        raise ApiError(422, t_request("api.since_before_until"))
    result = await _on_target(request, request.app[GATEWAY].uplinks.backfill, since, until)
    return web.json_response(result)


# --- big-screen feed ----------------------------------------------------------------------------


def _hub(request: web.Request) -> FeedHub:
    try:
        return request.app[GATEWAY].uplinks.feed(request.query.get("target"))
    except UnknownTarget as exc:
        raise ApiError(404, t_request(exc.key, **exc.params) if exc.key else str(exc)) from exc


def _since(request: web.Request) -> int | None:
    raw = request.query.get("since") or request.headers.get("Last-Event-ID")
    if raw is None:
        return None
    try:
        return max(0, int(raw))
    except ValueError as exc:
        raise ApiError(400, t_request("api.feed_since")) from exc


def _from_log(gw: Any, hub: FeedHub, seq: int) -> list[dict[str, Any]]:
    """Delivered feed records after seq, read back from the outbox (the durable log)."""
    with gw.db.session() as s:
        target_id = s.scalar(select(UplinkTarget.id).where(UplinkTarget.name == hub.name))
        rows = s.scalars(
            select(OutboxRow)
            .where(OutboxRow.target_id == target_id, OutboxRow.id > seq, OutboxRow.status == "delivered")
            .order_by(OutboxRow.id)
            .limit(REPLAY_LIMIT)
        )
        return [feed_item(r.id, r.payload) for r in rows]


async def _backlog(request: web.Request, hub: FeedHub, sub: Subscriber) -> list[dict[str, Any]]:
    """What a reconnecting screen missed; the subscription is taken first so nothing falls between."""
    seq = _since(request)
    if seq is None:
        return [hub.latest_stats] if hub.latest_stats else []
    items = hub.since(seq)
    if items is None:
        items = await asyncio.to_thread(_from_log, request.app[GATEWAY], hub, seq)
    last = items[-1]["seq"] if items else seq
    # Drop what the live queue will also carry, so each record arrives once and in order.
    for item in sub.take_all():
        if item is not None and (item.get("type") != "alarm" or item["seq"] > last):
            sub.queue.put_nowait(item)
    return items


@route(
    "GET",
    "/api/feed/ws",
    scope="alarms:read",
    tag="feed",
    produces="application/json",
    query=(
        ("since", "integer", "last sequence number seen: replay what came after"),
        ("target", "string", "websocket target name (default: the first)"),
    ),
    summary="Big-screen feed over WebSocket: alarm revisions (numbered) and live statistics",
)
async def feed_ws(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    ws = web.WebSocketResponse(heartbeat=20.0)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "connect with a WebSocket (Upgrade: websocket)")
    await ws.prepare(request)
    sub = hub.subscribe()
    try:
        for old in await _backlog(request, hub, sub):
            await ws.send_json(old)
        reader = asyncio.create_task(_drain_client(ws))
        while not ws.closed:
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            item = getter.result()
            if item is None and sub.going_away:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway stopping; reconnect")
                break
            if item is None:  # dropped for falling behind: the screen reconnects with since=
                await ws.close(code=4000, message=b"too far behind; reconnect with since")
                break
            await ws.send_json(item)
        reader.cancel()
    finally:
        hub.unsubscribe(sub)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _drain_client(ws: web.WebSocketResponse) -> None:
    async for _ in ws:  # screens send nothing we need; this notices the close
        pass


@route(
    "GET",
    "/api/feed/sse",
    scope="alarms:read",
    tag="feed",
    produces="text/event-stream",
    query=(
        ("since", "integer", "last sequence number seen (or the Last-Event-ID header)"),
        ("target", "string", "websocket target name (default: the first)"),
    ),
    summary="Big-screen feed as Server-Sent Events, with replay via Last-Event-ID",
)
async def feed_sse(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    sub = hub.subscribe()

    async def send(item: dict[str, Any] | None) -> None:
        assert item is not None
        head = f"id: {item['seq']}\nevent: alarm\n" if item.get("type") == "alarm" else "event: stats\n"
        await resp.write(f"{head}data: {json.dumps(item, ensure_ascii=False)}\n\n".encode())

    try:
        for item in await _backlog(request, hub, sub):
            await send(item)
        while True:
            try:
                nxt = await asyncio.wait_for(sub.queue.get(), timeout=15.0)
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if nxt is None:
                break
            await send(nxt)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(sub)
    return resp


async def publish_stats(gw: Any) -> None:
    """Live statistics for the screens: today's counts by scene, open alarms, cameras online."""

    def work() -> dict[str, Any]:
        # "Today" is the plant's day (site time zone), as on the console's overview.
        local = dt.datetime.now(ZoneInfo(gw.config.site.timezone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        with gw.db.session() as s:
            by_scene = dict(
                s.execute(
                    select(Alarm.scene, func.count())
                    .where(Alarm.occurred_at >= midnight, Alarm.source == "live")  # not offline videos
                    .group_by(Alarm.scene)
                ).all()
            )
            open_count = s.scalar(
                select(func.count()).where(Alarm.status.in_(OPEN_STATUSES), Alarm.source == "live")
            )
        online = sum(1 for r in list(gw.analytics.runners.values()) if r.health.state == "online")
        return {
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "today_by_scene": by_scene,
            "open": int(open_count or 0),
            "cameras_online": online,
            "cameras": len(gw.analytics.runners),
        }

    while True:
        if gw.uplinks.hubs:
            try:
                stats = await asyncio.to_thread(work)
                for hub in gw.uplinks.hubs.values():
                    hub.publish_stats(stats)
            except Exception:  # statistics are best effort; the feed itself must go on
                log.exception("could not compute feed statistics")
        await asyncio.sleep(STATS_EVERY_S)
