"""The sample library: tasks, samples, labels (the console's annotation view), alarms to
samples, splits, import (zip upload) and export (zip download).

Viewers read (samples:read), operators edit (samples:write).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.answers import SampleList
from gateway.api.http import ApiError, attachment, parse_body, query_int, route
from gateway.api.keys import GATEWAY, PRINCIPAL
from gateway.auth import Principal
from gateway.samples.library import Conflict, NotFound, SampleError, SampleLibrary

T = TypeVar("T")
UPLOAD_CHUNK = 1024 * 1024
MAX_ZIP_MEMBERS = 200_000
MAX_UNPACK_FACTOR = 20  # unpacked size at most this many times the upload limit


def library(request: web.Request) -> SampleLibrary:
    gw = request.app[GATEWAY]
    return SampleLibrary(gw.db, gw.config.storage.root)


def who(request: web.Request) -> Principal:
    return request[PRINCIPAL]


async def call(work: Callable[[], T]) -> T:
    """Run library work in a thread; its errors become JSON errors."""
    try:
        return await asyncio.to_thread(work)
    except NotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, str(exc)) from exc
    except SampleError as exc:
        raise ApiError(422, str(exc)) from exc


def _index(request: web.Request) -> int:
    try:
        return int(request.match_info["index"])
    except ValueError as exc:
        raise ApiError(400, "the label index must be an integer") from exc


# --- tasks --------------------------------------------------------------------------------------


class SampleTaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r'^[^/\\"\x00-\x1f\x7f]+$',
        description="no /, \\, quotes or control characters (line breaks, tabs)",
    )
    scene: str | None = Field(None, max_length=32, description="scene key the task serves, e.g. helmet")
    labels: list[str] = Field(default_factory=list, description="the label set (class names)")


class SampleTaskPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scene: str | None = Field(None, max_length=32)
    labels: list[str] | None = None


@route("GET", "/api/tasks", scope="samples:read", summary="Detection tasks with sample counts", tag="samples")
async def list_tasks(request: web.Request) -> web.Response:
    lib = library(request)
    return web.json_response({"items": await call(lib.list_tasks)})


@route(
    "POST",
    "/api/tasks",
    scope="samples:write",
    body=SampleTaskBody,
    summary="Add a detection task",
    tag="samples",
)
async def add_task(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleTaskBody)
    lib = library(request)
    return web.json_response(await call(lambda: lib.add_task(body.name, body.scene, body.labels)), status=201)


@route(
    "GET", "/api/tasks/{name}", scope="samples:read", summary="One task with its recent splits", tag="samples"
)
async def get_task(request: web.Request) -> web.Response:
    lib, name = library(request), request.match_info["name"]
    return web.json_response(await call(lambda: lib.get_task(name)))


@route(
    "PATCH",
    "/api/tasks/{name}",
    scope="samples:write",
    body=SampleTaskPatch,
    summary="Change a task's scene or label set",
    tag="samples",
)
async def update_task(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleTaskPatch)
    lib, name = library(request), request.match_info["name"]
    return web.json_response(await call(lambda: lib.update_task(name, body.scene, body.labels)))


@route(
    "DELETE",
    "/api/tasks/{name}",
    scope="samples:write",
    summary="Remove a task (its samples stay; sets named by model versions stay)",
    tag="samples",
)
async def remove_task(request: web.Request) -> web.Response:
    lib, name = library(request), request.match_info["name"]
    return web.json_response(await call(lambda: lib.remove_task(name)))


@route(
    "POST",
    "/api/tasks/{name}/split",
    scope="samples:write",
    summary="Freeze the task's deterministic 8:2 train/test split (reused when unchanged)",
    tag="samples",
)
async def split_task(request: web.Request) -> web.Response:
    lib, name = library(request), request.match_info["name"]
    result = await call(lambda: lib.split(name))
    return web.json_response(result.as_json(), status=201 if result.created else 200)


@route(
    "GET",
    "/api/datasets/{dataset_id}",
    scope="samples:read",
    summary="A dataset (set of samples)",
    tag="samples",
)
async def get_dataset(request: web.Request) -> web.Response:
    lib, dataset_id = library(request), request.match_info["dataset_id"]
    return web.json_response(await call(lambda: lib.dataset_info(dataset_id)))


# --- import and export --------------------------------------------------------------------------


@route(
    "GET",
    "/api/tasks/{name}/export",
    scope="samples:read",
    summary="Download a task's samples (or one of its datasets) as a zip: YOLO txt or COCO JSON",
    produces="application/zip",
    tag="samples",
    query=(
        ("format", "string", "yolo (default) or coco"),
        ("dataset_id", "string", "only this dataset of the task (a frozen train or test set)"),
    ),
)
async def export_task(request: web.Request) -> web.StreamResponse:
    lib, name = library(request), request.match_info["name"]
    fmt = request.query.get("format", "yolo")
    if fmt not in ("yolo", "coco"):
        raise ApiError(400, "format must be yolo or coco")
    dataset_id = request.query.get("dataset_id")
    tmp = Path(tempfile.mkdtemp(prefix="vigil-export-"))

    def work() -> Path:
        lib.export(fmt, tmp / "data", task=name, dataset_id=dataset_id)
        archive = tmp / "export.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted((tmp / "data").rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(tmp / "data").as_posix())
        return archive

    try:
        archive = await call(work)
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": attachment(f"{name}-{fmt}.zip"),
            }
        )
        response.content_length = archive.stat().st_size
        await response.prepare(request)
        with archive.open("rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, UPLOAD_CHUNK):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


@route(
    "POST",
    "/api/tasks/{name}/import",
    scope="samples:write",
    summary="Import a zip (raw body, application/zip) of a YOLO txt or COCO JSON data set into a task",
    tag="samples",
    query=(
        ("format", "string", "yolo (default) or coco"),
        ("scene", "string", "scene of the task when the import creates it"),
    ),
)
async def import_task(request: web.Request) -> web.Response:
    gw, lib, name = request.app[GATEWAY], library(request), request.match_info["name"]
    fmt = request.query.get("format", "yolo")
    if fmt not in ("yolo", "coco"):
        raise ApiError(400, "format must be yolo or coco")
    if request.content_type not in ("application/zip", "application/octet-stream"):
        raise ApiError(415, "send the data set as a zip file body with Content-Type application/zip")
    limit_mb = gw.config.server.max_upload_mb
    limit = int(limit_mb * 1024 * 1024)
    too_large = f"upload too large: the limit is {limit_mb:g} MB (server.max_upload_mb)"
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, too_large)
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="vigil-import-"))
    try:
        archive = tmp / "upload.zip"
        size = 0
        with archive.open("wb") as fh:
            async for chunk in request.content.iter_chunked(UPLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, too_large)
                await asyncio.to_thread(fh.write, chunk)
        if size == 0:
            raise ApiError(400, "the request body is empty: send the zip file as the body")
        await asyncio.to_thread(_unzip, archive, tmp / "data", limit * MAX_UNPACK_FACTOR)
        root = _data_root(tmp / "data")
        scene = request.query.get("scene")
        if fmt == "yolo":
            report = await call(lambda: lib.import_yolo(root, name, scene=scene))
        else:
            report = await call(lambda: lib.import_coco(root, name, scene=scene))
        return web.json_response(report.as_json())
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(shutil.rmtree, tmp, True)


def _unzip(archive: Path, target: Path, max_bytes: int) -> None:
    """Extract a zip safely: no absolute paths or '..', no links, bounded member count and size."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise ApiError(422, f"the zip holds more than {MAX_ZIP_MEMBERS} files")
            if sum(m.file_size for m in members) > max_bytes:
                raise ApiError(422, "the zip unpacks to too much data")
            target.mkdir(parents=True)
            root = target.resolve()
            for m in members:
                dest = (target / m.filename).resolve()
                if m.filename.startswith(("/", "\\")) or (dest != root and root not in dest.parents):
                    raise ApiError(422, f"the zip member {m.filename!r} points outside the archive")
                if (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise ApiError(422, f"the zip member {m.filename!r} is a link")
                if m.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, UPLOAD_CHUNK)
    except zipfile.BadZipFile as exc:
        raise ApiError(422, f"the body is not a readable zip file: {exc}") from exc


def _data_root(folder: Path) -> Path:
    """The data set folder inside an unpacked zip: descend through a single wrapping folder."""
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
        if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in ("images", "labels"):
            folder = entries[0]
            continue
        return folder


# --- samples ------------------------------------------------------------------------------------


@route(
    "GET",
    "/api/samples",
    response=SampleList,
    scope="samples:read",
    summary="List samples, newest first",
    tag="samples",
    query=(
        ("task", "string", "only samples of this task"),
        ("dataset_id", "string", "only samples of this dataset (e.g. a frozen test set)"),
        ("origin", "string", "imported, confirmed_alarm, false_positive or capture"),
        ("scene", "string", "only this scene"),
        ("camera_id", "string", "only this camera"),
        ("label", "string", "only samples with a box of this label"),
        ("removed", "boolean", "include samples removed from the library (true/false)"),
        ("before", "string", "page cursor: sample id to continue after"),
        ("limit", "integer", "page size, 1..500 (default 50)"),
    ),
)
async def list_samples(request: web.Request) -> web.Response:
    lib, q = library(request), request.query
    limit = query_int(request, "limit", 50, 1, 500)

    def work() -> dict[str, Any]:
        return lib.list_samples(
            task=q.get("task") or None,
            origin=q.get("origin") or None,
            scene=q.get("scene") or None,
            camera_id=q.get("camera_id") or None,
            label=q.get("label") or None,
            dataset_id=q.get("dataset_id") or None,
            before=q.get("before") or None,
            limit=limit,
            include_removed=q.get("removed", "false").lower() in ("1", "true", "yes"),
        )

    return web.json_response(await call(work))


@route(
    "GET",
    "/api/samples/{sample_id}",
    scope="samples:read",
    summary="One sample with its tasks",
    tag="samples",
)
async def get_sample(request: web.Request) -> web.Response:
    lib, sample_id = library(request), request.match_info["sample_id"]
    return web.json_response(await call(lambda: lib.get_sample(sample_id)))


@route(
    "GET",
    "/api/samples/{sample_id}/image",
    scope="samples:read",
    summary="The sample's image file",
    produces="image/*",
    tag="samples",
)
async def sample_image(request: web.Request) -> web.StreamResponse:
    lib, sample_id = library(request), request.match_info["sample_id"]
    path, media = await call(lambda: lib.image_path(sample_id))
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(410, f"the image of sample {sample_id} is missing from storage")
    return web.FileResponse(path, headers={"Content-Type": media, "Cache-Control": "private, max-age=86400"})


@route(
    "DELETE",
    "/api/samples/{sample_id}",
    scope="samples:write",
    summary="Delete a sample (one that a frozen train/test set names is only removed from the library)",
    tag="samples",
)
async def delete_sample(request: web.Request) -> web.Response:
    lib, sample_id, actor = library(request), request.match_info["sample_id"], who(request).name
    return web.json_response(await call(lambda: lib.delete_sample(sample_id, actor)))


class SampleLabel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=100)
    box: tuple[float, float, float, float] = Field(description="[x1, y1, x2, y2] normalised to 0..1")


class SampleLabelsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[SampleLabel] = Field(max_length=2000)


def _plain(item: SampleLabel) -> dict[str, Any]:
    return {"label": item.label, "box": list(item.box)}


@route(
    "PUT",
    "/api/samples/{sample_id}/labels",
    scope="samples:write",
    body=SampleLabelsBody,
    summary="Replace a sample's labels",
    tag="samples",
)
async def set_labels(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleLabelsBody)
    lib, sample_id, actor = library(request), request.match_info["sample_id"], who(request).name
    labels = [_plain(i) for i in body.labels]
    return web.json_response(await call(lambda: lib.set_labels(sample_id, labels, actor)))


@route(
    "POST",
    "/api/samples/{sample_id}/labels",
    scope="samples:write",
    body=SampleLabel,
    summary="Add a label (box) to a sample",
    tag="samples",
)
async def add_label(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleLabel)
    lib, sample_id, actor = library(request), request.match_info["sample_id"], who(request).name
    return web.json_response(await call(lambda: lib.add_label(sample_id, _plain(body), actor)), status=201)


@route(
    "PUT",
    "/api/samples/{sample_id}/labels/{index}",
    scope="samples:write",
    body=SampleLabel,
    summary="Change one label of a sample (by its index)",
    tag="samples",
)
async def update_label(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleLabel)
    index = _index(request)
    lib, sample_id, actor = library(request), request.match_info["sample_id"], who(request).name
    return web.json_response(await call(lambda: lib.update_label(sample_id, index, _plain(body), actor)))


@route(
    "DELETE",
    "/api/samples/{sample_id}/labels/{index}",
    scope="samples:write",
    summary="Delete one label of a sample (by its index)",
    tag="samples",
)
async def delete_label(request: web.Request) -> web.Response:
    index = _index(request)
    lib, sample_id, actor = library(request), request.match_info["sample_id"], who(request).name
    return web.json_response(await call(lambda: lib.delete_label(sample_id, index, actor)))


class SampleFromAlarmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alarm_id: str = Field(min_length=1, max_length=26)
    kind: Literal["positive", "false_positive"] = Field(
        description="positive: a confirmed alarm as a labelled sample; false_positive: to the adversarial set"
    )
    task: str | None = Field(
        None, description="the task to add it to; default: every task of the alarm's scene"
    )


@route(
    "POST",
    "/api/samples/from-alarm",
    scope="samples:write",
    body=SampleFromAlarmBody,
    summary="Add an alarm's raw snapshot and boxes as a sample (201; 200 when it is one already)",
    tag="samples",
)
async def sample_from_alarm(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleFromAlarmBody)
    lib, actor = library(request), who(request).name
    sample, created = await call(lambda: lib.from_alarm(body.alarm_id, body.kind, actor, body.task))
    return web.json_response(sample, status=201 if created else 200)
