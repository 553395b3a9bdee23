"""Live view: fragmented MP4 over a WebSocket (H.264 remuxed, never transcoded) and JPEG snapshots.

The WebSocket first sends ``{"type": "init", "mime": ...}`` for ``MediaSource.isTypeSupported`` and
``addSourceBuffer``, then binary segments: the init segment (ftyp + moov), then moof + mdat per GOP.
An H.265 camera gets ``{"type": "unsupported", ...}`` with the snapshot URL, then the socket closes.
Stream URLs (which may carry credentials) never leave the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from adapters.rtsp.live import (
    H265_CODECS,
    H265_REASON,
    FragmentedMp4Relay,
    LiveViewError,
    LiveViewUnsupported,
    grab_jpeg,
)
from gateway.api.http import ApiError, route
from gateway.db.schema import Camera
from gateway.keys import GATEWAY

SNAPSHOT_TIMEOUT_S = 15.0
HEARTBEAT_S = 20.0


@dataclass(frozen=True)
class _Stream:
    main_url: str
    live_url: str  # the sub stream when the camera has one
    transport: str


def _stream(gw: Any, camera_id: str) -> _Stream:
    with gw.db.session() as s:
        row = s.get(Camera, camera_id)
        if row is None:
            raise ApiError(404, f"no camera {camera_id}")
        return _Stream(row.stream_url, row.sub_stream_url or row.stream_url, row.transport or "tcp")


def _running_codec(gw: Any, camera_id: str, stream: _Stream) -> str | None:
    """The codec the analytics saw, when the live view plays the stream it analyses."""
    runner = gw.analytics.runners.get(camera_id)
    if runner is None or stream.live_url != stream.main_url:
        return None
    codec: str | None = runner.health.codec
    return codec


@route(
    "GET",
    "/api/cameras/{camera_id}/live",
    scope="cameras:read",
    summary="Live view as a WebSocket: a JSON init message, then fragmented MP4 (H.264 only, no transcode)",
    produces="application/octet-stream",
    tag="cameras",
)
async def live(request: web.Request) -> web.StreamResponse:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    stream = await asyncio.to_thread(_stream, gw, camera_id)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "connect with a WebSocket (Upgrade: websocket)")
    await ws.prepare(request)
    snapshot = f"/api/cameras/{camera_id}/snapshot"
    relay = FragmentedMp4Relay(stream.live_url, transport=stream.transport)
    try:
        if _running_codec(gw, camera_id, stream) in H265_CODECS:
            raise LiveViewUnsupported(H265_REASON)
        await relay.start()
    except LiveViewUnsupported as exc:
        await ws.send_json({"type": "unsupported", "reason": str(exc), "snapshot": snapshot})
        await ws.close()
        return ws
    except LiveViewError as exc:
        await ws.send_json({"type": "error", "reason": str(exc), "snapshot": snapshot})
        await ws.close()
        return ws
    await ws.send_json(
        {
            "type": "init",
            "mime": relay.mime,
            "width": relay.width,
            "height": relay.height,
            "snapshot": snapshot,
        }
    )

    async def pump() -> None:
        with contextlib.suppress(ConnectionError):  # the viewer went away
            try:
                async for segment in relay.segments():
                    await ws.send_bytes(segment)
                await ws.send_json({"type": "end", "reason": "the stream ended"})
            except LiveViewError as exc:
                await ws.send_json({"type": "error", "reason": str(exc)})
            await ws.close()

    sender = asyncio.create_task(pump())
    try:
        async for msg in ws:  # the viewer sends nothing; this sees its close (and answers pings)
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        if not sender.done():
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        relay.stop()
        await ws.close()
    return ws


@route(
    "GET",
    "/api/cameras/{camera_id}/snapshot",
    scope="cameras:read",
    summary="A current picture of the camera (JPEG, decoded from its main stream)",
    produces="image/jpeg",
    tag="cameras",
)
async def snapshot(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    stream = await asyncio.to_thread(_stream, gw, camera_id)
    try:
        jpeg = await asyncio.wait_for(
            asyncio.to_thread(grab_jpeg, stream.main_url, stream.transport, 10.0, 5.0), SNAPSHOT_TIMEOUT_S
        )
    except LiveViewError as exc:
        raise ApiError(502, f"camera {camera_id}: {exc}") from exc
    except TimeoutError as exc:
        raise ApiError(504, f"camera {camera_id} sent no picture within {SNAPSHOT_TIMEOUT_S:.0f} s") from exc
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})
