"""The video library (upload, search, playback, removal), analysis jobs and history replay jobs
(gateway/videos/library.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.alarms import parse_time
from gateway.api.http import ApiError, parse_body, query_int, route
from gateway.api.keys import GATEWAY, principal
from gateway.videos.importer import find_camera
from gateway.videos.library import (
    MAX_REPLAY_CAMERAS,
    MAX_REPLAY_DAYS,
    LibraryError,
    cancel_job,
    delete_video,
    replay_json,
    replay_list,
    search_videos,
    serving,
    submit_replay,
    submit_upload,
    video_file,
)

CameraId = Annotated[str, Field(min_length=1, max_length=64)]
SceneKey = Annotated[str, Field(min_length=1, max_length=32)]
T = TypeVar("T")


async def _library(call: Callable[..., T], *args: Any) -> T:
    """Run a library call off the event loop; what the library refuses becomes the API error it names."""
    try:
        return await asyncio.to_thread(call, *args)
    except LibraryError as exc:
        raise ApiError(exc.status, exc.message) from exc


@route(
    "GET",
    "/api/videos",
    scope="alarms:read",
    tag="videos",
    summary="Search the video library (uploads and imports), newest first, each with its jobs and alarms",
    query=(
        ("camera_id", "string", "only this camera"),
        ("location", "string", "only cameras whose location (or name) contains this (up to 100 characters)"),
        ("since", "string", "ISO 8601: videos that end after this"),
        ("until", "string", "ISO 8601: videos that start before this"),
        ("before", "string", "page cursor: the `next` of the previous page"),
        ("limit", "integer", "page size, 1..200 (default 50)"),
    ),
)
async def list_videos(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    q = request.query
    since, until = parse_time(request, "since"), parse_time(request, "until")
    if since and until and until <= since:
        raise ApiError(400, "until must be after since")
    location = q.get("location", "").strip()
    if len(location) > 100:
        raise ApiError(400, "query parameter location may have at most 100 characters")
    limit = query_int(request, "limit", 50, 1, 200)

    def work() -> dict[str, Any]:
        serving(gw)  # jobs a stopped gateway left running show as failed
        return search_videos(
            gw.db, q.get("camera_id") or None, location or None, since, until, limit, q.get("before") or None
        )

    return web.json_response(await asyncio.to_thread(work))


@route(
    "GET",
    "/api/videos/{video_id}/file",
    scope="alarms:read",
    tag="videos",
    summary="The video file for playback (HTTP Range requests supported)",
    produces="video/*",
)
async def get_video_file(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    path, media = await _library(video_file, gw, request.match_info["video_id"])
    return web.FileResponse(path, headers={"Content-Type": media, "Cache-Control": "private, max-age=3600"})


@route(
    "DELETE",
    "/api/videos/{video_id}",
    scope="alarms:write",
    tag="videos",
    summary="Remove a video from the library (refused while a job uses it); its alarms stay",
)
async def remove_video(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(await _library(delete_video, gw, request.match_info["video_id"]))


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera_ids: list[CameraId] = Field(min_length=1, max_length=MAX_REPLAY_CAMERAS)
    since: dt.datetime = Field(description="ISO 8601 start of the range (without zone: UTC)")
    until: dt.datetime = Field(description=f"ISO 8601 end, after since, at most {MAX_REPLAY_DAYS} days later")
    model: str | None = Field(
        None,
        min_length=1,
        max_length=120,
        description="NAME, VERSION_ID or NAME@VERSION_ID; default: each scene's own model",
    )
    scenes: list[SceneKey] | None = Field(
        None, max_length=20, description="scene keys to run; default: each camera's enabled scenes"
    )


@route(
    "POST",
    "/api/replay",
    scope="alarms:write",
    tag="videos",
    body=ReplayBody,
    summary="History replay: run a model version over the library videos of cameras in a time range; 202",
)
async def start_replay(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, ReplayBody)
    who = principal(request).name

    def work() -> dict[str, Any]:
        job = submit_replay(gw, body.camera_ids, body.since, body.until, body.model, body.scenes, who)
        return replay_json(gw, job.id)

    out = await _library(work)
    return web.json_response(out, status=202, headers={"Location": out["url"]})


@route(
    "GET",
    "/api/replay",
    scope="alarms:read",
    tag="videos",
    summary="History replay jobs, newest first",
    query=(
        ("status", "string", "queued, running, done, failed or cancelled"),
        ("limit", "integer", "1..200 (default 50)"),
    ),
)
async def list_replays(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    status = request.query.get("status")
    if status not in (None, "", "queued", "running", "done", "failed", "cancelled"):
        raise ApiError(400, "status must be queued, running, done, failed or cancelled")
    limit = query_int(request, "limit", 50, 1, 200)

    def work() -> dict[str, Any]:
        return {"items": replay_list(gw, status, limit)}

    return web.json_response(await asyncio.to_thread(work))


@route(
    "GET",
    "/api/replay/{job_id}",
    scope="alarms:read",
    tag="videos",
    summary="A replay (or upload) job: status, progress, per-video results, alarm ids (first 500)",
)
async def get_replay(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(await _library(replay_json, gw, request.match_info["job_id"]))


@route(
    "POST",
    "/api/replay/{job_id}/cancel",
    scope="alarms:write",
    tag="videos",
    summary="Cancel a queued or running replay (or upload) job; the alarms it raised stay",
)
async def cancel_replay(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return web.json_response(await _library(cancel_job, gw, request.match_info["job_id"]))


VIDEO_TYPES = ("application/octet-stream",)


UPLOAD_CHUNK = 1024 * 1024


@route(
    "POST",
    "/api/videos",
    scope="alarms:write",
    tag="videos",
    summary="Upload a video (raw body, video/* or application/octet-stream) into the library and "
    "analyse it as a job; 202",
    query=(
        ("camera_id", "string", "the camera whose scenes and models analyse the video"),
        ("start", "string", "ISO 8601 time of the video's first frame (without zone: UTC)"),
        (
            "model",
            "string",
            "model the scenes read instead of their own: NAME, VERSION_ID or NAME@VERSION_ID",
        ),
        ("filename", "string", "the file's original name, kept in the library (up to 255 characters)"),
    ),
)
async def upload_video(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    camera_id = request.query.get("camera_id")
    if not camera_id:
        raise ApiError(400, "query parameter camera_id is required")
    start = parse_time(request, "start")
    if start is None:
        raise ApiError(400, "query parameter start is required: the ISO 8601 time of the first frame")
    if not (request.content_type.startswith("video/") or request.content_type in VIDEO_TYPES):
        raise ApiError(
            415, "send the video as the raw body with Content-Type video/* or application/octet-stream"
        )
    camera = await asyncio.to_thread(find_camera, gw, camera_id)
    if camera is None:
        raise ApiError(404, f"no camera {camera_id}: configure it or add it (POST /api/cameras) first")
    model = request.query.get("model") or None
    filename = request.query.get("filename", "")
    if len(filename) > 255:
        raise ApiError(400, "query parameter filename may have at most 255 characters")
    limit_mb = gw.config.server.max_upload_mb
    limit = int(limit_mb * 1024 * 1024)
    too_large = f"video too large: the limit is {limit_mb:g} MB (server.max_upload_mb)"
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, too_large)
    uploads = gw.config.storage.root / "uploads"
    await asyncio.to_thread(uploads.mkdir, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=uploads, prefix="video-", suffix=".upload")
    tmp = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, too_large)
                await asyncio.to_thread(fh.write, chunk)
        if size == 0:
            raise ApiError(400, "the request body is empty: send the video file as the body")
    except BaseException:  # too large, empty, or the client went away: nothing is left behind
        _discard(tmp)
        raise
    # Kept in the library (the same bytes for the same camera and start once); a file that is not a
    # video is removed and its job fails at once, saying why.
    args = (gw, tmp, camera_id, start, model, filename, principal(request).name)
    job = await asyncio.to_thread(submit_upload, *args)
    body = job.as_json()
    body["url"] = f"/api/jobs/{job.id}"
    return web.json_response(body, status=202, headers={"Location": body["url"]})


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@route("GET", "/api/jobs/{job_id}", scope="alarms:read", summary="An offline analysis job", tag="videos")
async def get_job(request: web.Request) -> web.Response:
    job_id = request.match_info["job_id"]
    gw = request.app[GATEWAY]
    job = await asyncio.to_thread(lambda: serving(gw).get(job_id))
    if job is None:
        raise ApiError(404, f"no job {job_id}")
    return web.json_response(job.as_json())
