"""Cameras: list, show, add, edit, remove, ONVIF discovery and probing, PTZ, a GB/T 28181
channel's recordings, live view and snapshots (everything under /api/cameras).

Live view: fragmented MP4 over a WebSocket (H.264 remuxed, never transcoded) and JPEG snapshots.
The WebSocket first sends ``{"type": "init", "mime": ...}`` for ``MediaSource.isTypeSupported`` and
``addSourceBuffer``, then binary segments: the init segment (ftyp + moov), then moof + mdat per GOP.
An H.265 camera gets ``{"type": "unsupported", ...}`` with the snapshot URL, then the socket closes.
Stream URLs (which may carry credentials) never leave the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import redact_url
from adapters.gb28181.common import GbError
from adapters.gb28181.manscdp import ptz_cmd
from adapters.onvif import OnvifError, discover, probe
from adapters.onvif.client import insert_credentials
from adapters.rtsp.faults import fault_of_text
from adapters.rtsp.live import (
    FeedMuxer,
    FeedViewer,
    FragmentedMp4Relay,
    LiveViewError,
    LiveViewUnsupported,
    grab_jpeg,
)
from adapters.rtsp.probe import ProbeError, probe_stream
from gateway.api.answers import CameraAnswer, CameraList
from gateway.api.http import ApiError, parse_body, query_int, request_lang, route
from gateway.api.keys import GATEWAY
from gateway.cameras.faults import camera_fault, fault_message
from gateway.cameras.onvif_ptz import OnvifPtz
from gateway.cameras.plant_context import plant_view
from gateway.cameras.registry import camera_config, camera_hosts, camera_json, is_gb_camera, listed_cameras
from gateway.cameras.viewing import NoPicture, camera_feed
from gateway.config.schema import CameraConfig
from gateway.config.stream_url import encode_userinfo, stream_url_problem, url_message
from gateway.db.schema import Camera, Source
from gateway.i18n import current_lang, t

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
            raise ApiError(404, t("error.no_camera", current_lang() or "en", camera=camera_id))
        return _Stream(row.stream_url, row.sub_stream_url or row.stream_url, row.transport or "tcp")


@route(
    "GET",
    "/api/cameras/{camera_id}/live",
    scope="cameras:read",
    summary="Live view as a WebSocket: a JSON init message, then fragmented MP4 (H.264 only, no transcode); "
    "a running camera's viewers share its one stream session",
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
    lang = request_lang(request)
    feed = camera_feed(gw.analytics, camera_id)
    relay: FragmentedMp4Relay | FeedMuxer
    if feed is not None:  # the camera runs: its own session's packets, no new connection
        viewer = FeedViewer(feed.subscribe)
        relay, segments = viewer.muxer, viewer.segments()
    elif gw.snapshots.running(camera_id):  # e.g. a GB/T 28181 channel: pictures from its frames
        reason = fault_message("live_unsupported", lang)
        await ws.send_json({"type": "unsupported", "reason": reason, "snapshot": snapshot})
        await ws.close()
        return ws
    elif is_gb_camera(stream.main_url):  # a GB/T 28181 channel is only seen while the gateway plays it
        await ws.send_json(
            {"type": "error", "reason": fault_message("gb_not_playing", lang), "snapshot": snapshot}
        )
        await ws.close()
        return ws
    else:  # not run by this gateway (disabled, or analysis off): a connection of the viewer's own
        relay = FragmentedMp4Relay(stream.live_url, transport=stream.transport)
        segments = _relayed(relay)
    try:
        init = await asyncio.wait_for(anext(segments), FIRST_SEGMENT_TIMEOUT_S)
    except (LiveViewUnsupported, LiveViewError, TimeoutError, StopAsyncIteration) as exc:
        kind = "unsupported" if isinstance(exc, LiveViewUnsupported) else "error"
        await segments.aclose()
        reason = _live_reason(exc, lang)
        await ws.send_json({"type": kind, "reason": reason, "snapshot": snapshot})
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
                await ws.send_bytes(init)
                async for segment in segments:
                    await ws.send_bytes(segment)
                await ws.send_json({"type": "end", "reason": "the stream ended"})
            except LiveViewError as exc:
                await ws.send_json({"type": "error", "reason": _live_reason(exc, lang)})
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
        await segments.aclose()
        await ws.close()
    return ws


FIRST_SEGMENT_TIMEOUT_S = 15.0


def _live_reason(exc: BaseException, lang: str) -> str:
    """Why live view is not playing, in the user's words."""
    if isinstance(exc, LiveViewUnsupported):
        return fault_message("h265" if "H.265" in str(exc) else "live_unsupported", lang)
    if isinstance(exc, LiveViewError):
        return fault_message(fault_of_text(str(exc)), lang, str(exc))
    return fault_message("no_picture", lang)


async def _relayed(relay: FragmentedMp4Relay) -> AsyncGenerator[bytes, None]:
    """A relay of its own (a camera that is not running): open, then its segments; closed at the end."""
    try:
        await relay.start()
        async for segment in relay.segments():
            yield segment
    finally:
        relay.stop()


@route(
    "GET",
    "/api/cameras/{camera_id}/snapshot",
    scope="cameras:read",
    summary="A current picture of the camera (JPEG): the last frame its running stream decoded",
    produces="image/jpeg",
    tag="cameras",
)
async def snapshot(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    stream = await asyncio.to_thread(_stream, gw, camera_id)
    try:
        shot = await asyncio.to_thread(gw.snapshots.latest, camera_id)
    except NoPicture as exc:
        lang = request_lang(request)
        reason = fault_message(fault_of_text(exc.reason), lang, exc.reason) if exc.reason else exc.state
        raise ApiError(503, t("fault.no_picture_because", lang, reason=reason)) from exc
    if shot is not None:
        headers = {"Cache-Control": "no-store", "X-Frame-Time": f"{shot.taken_at:.3f}"}
        return web.Response(body=shot.jpeg, content_type="image/jpeg", headers=headers)
    if is_gb_camera(stream.main_url):
        raise ApiError(503, fault_message("gb_not_playing", request_lang(request)))
    try:  # not running here: one picture over a connection of its own
        jpeg = await asyncio.wait_for(
            asyncio.to_thread(grab_jpeg, stream.main_url, stream.transport, 10.0, 5.0), SNAPSHOT_TIMEOUT_S
        )
    except LiveViewError as exc:
        lang = request_lang(request)
        reason = fault_message(fault_of_text(str(exc)), lang, str(exc))
        raise ApiError(502, t("fault.no_picture_because", lang, reason=reason)) from exc
    except TimeoutError as exc:
        lang = request_lang(request)
        reason = fault_message("unreachable", lang)
        raise ApiError(504, t("fault.no_picture_because", lang, reason=reason)) from exc
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


class TestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=1024)
    transport: Literal["tcp", "udp"] = "tcp"
    camera_id: str | None = Field(
        None, max_length=64, description="a camera whose stored address stands in for the one shown as ***"
    )


PROBE_TIMEOUT_S = 8.0


@route(
    "POST",
    "/api/cameras/test",
    scope="cameras:write",
    body=TestBody,
    tag="cameras",
    summary="Test a stream address before saving it: open it once and report codec, size and frame rate, "
    "or why not (unreachable, refused, 401, 404, not video) in the user's language",
)
async def test_connection(request: web.Request) -> web.Response:
    gw, lang = request.app[GATEWAY], request_lang(request)
    body = await parse_body(request, TestBody)
    body = body.model_copy(update={"url": encode_userinfo(body.url)})  # a password with '@' or '/'
    problem = stream_url_problem(body.url)
    if problem is not None:
        message = url_message(problem, lang)
        raise ApiError(422, message, [{"field": "url", "problem": message}])
    _refuse_local_file("url", body.url)
    url = await asyncio.to_thread(_stored_url, gw, body.camera_id, body.url)
    if is_gb_camera(url):
        return web.json_response({"ok": False, "code": "gb28181", "message": t("probe.gb", lang)})
    try:
        info = await asyncio.to_thread(probe_stream, url, body.transport, PROBE_TIMEOUT_S)
    except ProbeError as exc:
        return web.json_response(
            {
                "ok": False,
                "code": exc.code,
                "message": fault_message(exc.code, lang, exc.detail),
                "detail": exc.detail,
            }
        )
    fps = f"{info.fps:g}" if info.fps else "?"
    message = t("probe.ok", lang, codec=info.codec.upper(), width=info.width, height=info.height, fps=fps)
    return web.json_response(
        {
            "ok": True,
            "message": message,
            "codec": info.codec,
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "elapsed_ms": round(info.elapsed_s * 1000),
        }
    )


def _stored_url(gw: Any, camera_id: str | None, url: str) -> str:
    """The camera's stored address when ``url`` is that address as the console was shown it (redacted)."""
    if camera_id is None:
        return url
    with gw.db.session() as s:
        row = s.get(Camera, camera_id)
        for stored in (row.stream_url, row.sub_stream_url) if row is not None else ():
            if stored and url == redact_url(stored):
                return str(stored)
    return url


@route(
    "GET",
    "/api/cameras",
    response=CameraList,
    scope="cameras:read",
    summary="Cameras with live status",
    tag="cameras",
    query=(("include_removed", "boolean", "also list removed cameras (kept for their alarms)"),),
)
async def list_cameras(request: web.Request) -> web.Response:
    gw, lang = request.app[GATEWAY], request_lang(request)
    include_removed = request.query.get("include_removed", "").lower() in ("1", "true", "yes")

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            rows = listed_cameras(s, include_removed)
            return [
                _with_fault(
                    camera_json(r, *_live(gw, r.id), onvif=gw.onvif.state(r.id), plant=_plant(gw, r)), lang
                )
                for r in rows
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


def _plant(gw: Any, row: Camera) -> dict[str, Any]:
    """The camera's unit with its run state and its video diagnosis faults."""
    return plant_view((row.plant_settings or {}).get("unit"), row.id, gw.units, gw.health)


def _live(gw: Any, camera_id: str) -> tuple[Any, dict[str, str] | None]:
    """The running camera's stream health and scene statuses (None when it does not run)."""
    runner = gw.analytics.runners.get(camera_id)
    return (runner.health, runner.scene_status()) if runner is not None else (None, None)


@route(
    "GET",
    "/api/cameras/{camera_id}",
    response=CameraAnswer,
    scope="cameras:read",
    summary="One camera with live status",
    tag="cameras",
)
async def get_camera(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    return web.json_response(await asyncio.to_thread(camera_out, gw, camera_id, request_lang(request)))


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
    await asyncio.to_thread(_check_source, gw, cam)
    try:
        await asyncio.to_thread(gw.add_camera, cam)
    except ValueError as exc:
        if "exists already" in str(exc):
            raise ApiError(409, t("error.camera_exists", request_lang(request), camera=cam.id)) from exc
        raise ApiError(409, str(exc)) from exc
    return web.json_response(await asyncio.to_thread(camera_out, gw, cam.id), status=201)


def _refuse_local_file(field: str, url: str | None) -> None:
    """Through the API a stream is a network address: a path would let a caller make the gateway read
    its own files (offline videos are imported with POST /api/videos; file cameras live in the YAML)."""
    if url is not None and ("://" not in url or url.split("://", 1)[0].lower() == "file"):
        raise ApiError(
            422,
            f"{field}: a local file cannot be a camera through the API; give an rtsp:// address, import the "
            "video with POST /api/videos, or define a file camera in the configuration",
            [{"field": field, "problem": "local file"}],
        )


def _check_source(gw: Any, cam: CameraConfig) -> None:
    """A camera added or edited through the API: a network stream, and only a source the gateway knows
    (422 instead of a foreign-key error)."""
    with gw.db.session() as s:
        row = s.get(Camera, cam.id)
        kept = {row.stream_url, row.sub_stream_url} if row is not None else set()
        for field, url in (("url", cam.url), ("sub_url", cam.sub_url)):
            if url not in kept:  # a file camera of the YAML may still be edited unchanged
                _refuse_local_file(field, url)
        if cam.source is None:
            return
        if s.get(Source, cam.source) is None:
            known = ", ".join(sorted(s.scalars(select(Source.id)))) or "none defined"
            raise ApiError(
                422,
                f"source {cam.source!r} is not defined (known: {known}); define it under sources: in the "
                "configuration or leave source out for a standalone RTSP camera",
                [{"field": "source", "problem": "unknown source"}],
            )


def camera_out(gw: Any, camera_id: str, lang: str | None = None) -> dict[str, Any]:
    """One camera as GET /api/cameras/{id} shows it (with live status): the answer of every camera route."""
    with gw.db.session() as s:
        row = s.get(Camera, camera_id)
        if row is None:
            raise ApiError(404, t("error.no_camera", current_lang() or "en", camera=camera_id))
        item = camera_json(row, *_live(gw, camera_id), onvif=gw.onvif.state(camera_id), plant=_plant(gw, row))
    return _with_fault(item, lang or gw.config.site.language)


def _with_fault(item: dict[str, Any], lang: str) -> dict[str, Any]:
    """Adds ``fault``: why the stream is down, in the user's words (``last_error`` keeps FFmpeg's)."""
    item["fault"] = camera_fault(item["status"], item["last_error"], lang)
    return item


def _camera_row(s: Session, camera_id: str) -> Camera:
    """The camera's row; 404 for none or a removed one (kept only for its alarms)."""
    row = s.get(Camera, camera_id)
    if row is None or row.status == "removed":
        raise ApiError(404, t("error.no_camera", current_lang() or "en", camera=camera_id))
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
    await asyncio.to_thread(_check_source, gw, full)
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
    with gw.db.session() as s:
        return camera_hosts(s)


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
        text = t("error.onvif_probe", request_lang(request), host=body.host, port=body.port, detail=exc)
        raise ApiError(502, text) from exc
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
            "snapshot_uri": redact_url(cam.snapshot_uri) if cam.snapshot_uri else None,
            "behind_nat": cam.behind_nat,
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
    summary="PTZ control of a GB/T 28181 channel (DeviceControl PTZCmd) or an ONVIF camera "
    "(ContinuousMove, Stop, presets by number); moves run until action stop",
)
async def camera_ptz(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    camera_id = request.match_info["camera_id"]
    body = await parse_body(request, PtzBody)
    try:
        ptz_cmd(body.action, body.speed, body.zoom_speed, body.preset)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    onvif = OnvifPtz(gw.onvif)
    if onvif.handles(camera_id):
        try:
            sent = await onvif.command(camera_id, body.action, body.speed, body.zoom_speed, body.preset)
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc
        except OnvifError as exc:
            raise ApiError(502, f"the camera did not take the command: {exc}") from exc
        return web.json_response({"camera_id": camera_id, "action": body.action, "onvif": sent})
    try:
        command = await gw.gb28181.ptz(camera_id, body.action, body.speed, body.zoom_speed, body.preset)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    except GbError as exc:
        raise ApiError(502, f"the device did not take the command: {exc}") from exc
    return web.json_response({"camera_id": camera_id, "action": body.action, "ptz_cmd": command})


@route(
    "GET",
    "/api/cameras/{camera_id}/ptz/presets",
    scope="cameras:read",
    tag="cameras",
    summary="The PTZ presets of a GB/T 28181 channel (PresetQuery) or an ONVIF camera (GetPresets): "
    "{preset, token, name}; `preset` is the number POST .../ptz takes",
)
async def camera_presets(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    camera_id = request.match_info["camera_id"]
    onvif = OnvifPtz(gw.onvif)
    try:
        if onvif.handles(camera_id):
            items = await onvif.presets(camera_id)
        else:
            items = await gw.gb28181.presets(camera_id)
    except LookupError as exc:
        raise ApiError(404, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    except (OnvifError, GbError) as exc:
        raise ApiError(502, f"the camera did not list its presets: {exc}") from exc
    return web.json_response({"camera_id": camera_id, "items": items})


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
