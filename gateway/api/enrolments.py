"""Enrolments (a plant's own uniforms, extinguishers, role markers): list, show with calibration and
example crops, enrol from uploaded crops or from boxes drawn on a frame (a live snapshot or an alarm's
picture), activate through the promotion gate, roll back, remove.

Viewers read (models:read); enrolling, activation, rollback and removal need models:write (admin).
Bodies are JSON with the pictures base64-encoded, bounded in count and size; a picture that does not
decode, or too few examples, is refused with what to do, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

import cv2
import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from analyzers.crops import crop_expand
from analyzers.detectors.classifier import crop_box
from analyzers.enrolment import EmbedderMissing, EnrolmentError, embedder_path, shared_embedder
from gateway.api.answers import EnrolmentList
from gateway.api.http import ApiError, parse_body, route
from gateway.api.keys import GATEWAY, PRINCIPAL
from gateway.db.schema import Enrolment, Evidence
from gateway.enrolment import versions as ev
from gateway.enrolment.files import EnrolmentFiles
from gateway.i18n import DEFAULT_LANG, current_lang, has, t

T = TypeVar("T")
MAX_PICTURE_BYTES = 8 * 1024 * 1024  # one decoded picture
MAX_PIXELS = 4096 * 4096
MIN_BOX_PX = 8


def worded(exc: EnrolmentError) -> str:
    """The error in the user's language where gateway/i18n/enrolment.py words it, else as raised."""
    key = f"enrolment.{exc.code}"
    if exc.code is None or not has(key):
        return str(exc)
    return t(key, current_lang() or DEFAULT_LANG, **exc.params)


async def call(work: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(work)
    except ev.EnrolmentNotFound as exc:
        raise ApiError(404, worded(exc)) from exc
    except EmbedderMissing as exc:
        lang = current_lang() or DEFAULT_LANG
        raise ApiError(503, t("enrolment.no_embedder", lang, detail=str(exc))) from exc
    except EnrolmentError as exc:
        raise ApiError(422, worded(exc)) from exc


class FrameBoxes(BaseModel):
    """Boxes drawn on one picture: a frame the console sent (``image``) or an alarm's snapshot."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, max_length=12_000_000, description="base64 JPEG/PNG of the frame")
    alarm_id: str | None = Field(None, max_length=26, description="or: the alarm whose snapshot it is")
    boxes: list[tuple[float, float, float, float]] = Field(
        min_length=1, max_length=50, description="[x1, y1, x2, y2] as fractions of width and height"
    )


class EnrolBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scene: str = Field(min_length=1, max_length=32, description="workwear, extinguisher, rigger_on_post ...")
    name: str = Field(min_length=1, max_length=100, description="the class: a uniform type, a marker ...")
    negative: bool = Field(False, description="examples of what is NOT the look (not in uniform)")
    camera_id: str | None = Field(None, max_length=64, description="this camera only; null = the site")
    images: list[str] = Field(
        default_factory=list, max_length=300, description="base64 pictures, each one example crop"
    )
    frames: list[FrameBoxes] = Field(default_factory=list, max_length=50)
    force: bool = Field(False, description="activate past the promotion gate")
    reason: str | None = Field(None, max_length=2000)


class ActivateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False
    reason: str | None = Field(None, max_length=2000)


class ClassBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scene: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    camera_id: str | None = Field(None, max_length=64)


def decode_picture(text: str, what: str) -> np.ndarray:
    """A base64 JPEG/PNG -> BGR image; a clear refusal for anything else."""
    try:
        data = base64.b64decode(text.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise EnrolmentError(
            f"{what}: not base64; send each picture as base64 JPEG or PNG", "not_base64", what=what
        ) from None
    if len(data) > MAX_PICTURE_BYTES:
        most = MAX_PICTURE_BYTES // (1024 * 1024)
        raise EnrolmentError(f"{what}: larger than {most} MB", "too_large", what=what, most=most)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise EnrolmentError(
            f"{what}: does not decode as a picture; send JPEG or PNG", "not_picture", what=what
        )
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise EnrolmentError(f"{what}: more than {MAX_PIXELS} pixels")
    return image


def _snapshot(gw: Any, alarm_id: str) -> np.ndarray:
    with gw.db.session() as s:
        rows = s.execute(
            select(Evidence.kind, Evidence.path).where(
                Evidence.alarm_id == alarm_id, Evidence.kind.in_(("snapshot_raw", "snapshot"))
            )
        ).all()
    paths = {kind: path for kind, path in rows}
    rel = paths.get("snapshot_raw") or paths.get("snapshot")  # the picture without drawn boxes first
    if rel is None:
        raise ev.EnrolmentNotFound(f"alarm {alarm_id} has no snapshot to draw on")
    image = cv2.imread(str(gw.store.path(rel)), cv2.IMREAD_COLOR)
    if image is None:
        raise EnrolmentError(f"the snapshot of alarm {alarm_id} is no longer in storage")
    return image


def body_crops(gw: Any, body: EnrolBody, part: str) -> list[np.ndarray]:
    """The example crops of a request: each uploaded picture whole, and each drawn box grown by the
    scene's part expand (as the scene cuts it at run time)."""
    crops = [decode_picture(text, f"picture {i + 1}") for i, text in enumerate(body.images)]
    expand = crop_expand(part)
    for n, frame in enumerate(body.frames):
        if (frame.image is None) == (frame.alarm_id is None):
            raise EnrolmentError(f"frame {n + 1}: give either the picture (image) or an alarm_id")
        image = (
            decode_picture(frame.image, f"frame {n + 1}")
            if frame.image
            else _snapshot(gw, frame.alarm_id or "")
        )
        h, w = image.shape[:2]
        for k, (x1, y1, x2, y2) in enumerate(frame.boxes):
            if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
                raise EnrolmentError(
                    f"frame {n + 1} box {k + 1}: give x1 < x2 and y1 < y2 as fractions 0..1",
                    "box_order",
                    frame=n + 1,
                    box=k + 1,
                )
            box = (x1 * w, y1 * h, x2 * w, y2 * h)
            if min(box[2] - box[0], box[3] - box[1]) < MIN_BOX_PX:
                raise EnrolmentError(
                    f"frame {n + 1} box {k + 1}: smaller than {MIN_BOX_PX} pixels; draw it larger",
                    "box_small",
                    frame=n + 1,
                    box=k + 1,
                    most=MIN_BOX_PX,
                )
            crops.append(crop_box(image, box, expand))
    if not crops:
        raise EnrolmentError(
            "no examples: send pictures (images) or boxes drawn on frames (frames)", "no_examples"
        )
    return crops


@route(
    "GET",
    "/api/enrolments",
    response=EnrolmentList,
    scope="models:read",
    summary="Enrolled classes (current versions; every version with history=1): threshold, calibration",
    tag="enrolments",
    query=(("scene", "string", "only this scene's"), ("history", "boolean", "every version")),
)
async def list_enrolments(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    scene = request.query.get("scene") or None
    history = request.query.get("history", "").lower() in ("1", "true", "yes")
    items = await call(lambda: ev.list_enrolments(gw.db, scene, history=history))
    return web.json_response({"items": items, "scenes": ev.enrollable_scenes()})


@route(
    "GET",
    "/api/enrolments/{enrolment_id}",
    scope="models:read",
    summary="One enrolment version: examples, calibration (every matcher tried), audit",
    tag="enrolments",
)
async def show_enrolment(request: web.Request) -> web.Response:
    gw, enrolment_id = request.app[GATEWAY], request.match_info["enrolment_id"]
    out = await call(lambda: ev.show(gw.db, enrolment_id))
    out["crops"] = [f"/api/enrolments/{enrolment_id}/crops/{i}" for i in range(len(out["crops"]))]
    return web.json_response(out)


@route(
    "GET",
    "/api/enrolments/{enrolment_id}/crops/{index}",
    scope="models:read",
    produces="image/jpeg",
    summary="One example crop of an enrolment version (JPEG)",
    tag="enrolments",
)
async def enrolment_crop(request: web.Request) -> web.StreamResponse:
    gw, enrolment_id = request.app[GATEWAY], request.match_info["enrolment_id"]
    try:
        index = int(request.match_info["index"])
    except ValueError:
        raise ApiError(400, "the crop index is a number") from None

    def work() -> str | None:
        with gw.db.session() as s:
            row = s.get(Enrolment, enrolment_id)
            if row is None:
                raise ev.EnrolmentNotFound(f"no enrolment {enrolment_id!r}")
            return row.crops[index] if 0 <= index < len(row.crops) else None

    rel = await call(work)
    if rel is None:
        raise ApiError(404, f"enrolment {enrolment_id} has no crop {index}")
    path = EnrolmentFiles(gw.config.storage.root).path(rel)
    if not path.is_file():
        raise ApiError(410, "the crop is no longer in storage")
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=86400"}
    )


@route(
    "POST",
    "/api/enrolments",
    scope="models:write",
    body=EnrolBody,
    summary="Enrol a class from uploaded crops or boxes drawn on frames/alarm snapshots (calibrated, gated)",
    tag="enrolments",
    status=201,
)
async def create_enrolment(request: web.Request) -> web.Response:
    body = await parse_body(request, EnrolBody)
    gw, actor = request.app[GATEWAY], request[PRINCIPAL].name

    def work() -> dict[str, Any]:
        part = ev.enrol_part(body.scene)
        crops = body_crops(gw, body, part)
        embedder = shared_embedder(embedder_path(gw.config.models.pack_dir))
        added = ev.enrol(
            gw.db,
            gw.config.storage.root,
            embedder,
            body.scene,
            body.name,
            crops,
            negative=body.negative,
            camera_id=body.camera_id,
            actor=actor,
            origin={"via": "api", "pictures": len(body.images), "frames": len(body.frames)},
            force=body.force,
            reason=body.reason,
        )
        cal = added.calibration.as_dict()
        cal.pop("tried", None)
        return {
            "id": added.id,
            "version": added.version,
            "status": added.status,
            "examples": added.examples,
            "gate": added.gate,
            "calibration": cal,
        }

    out = await call(work)
    return web.json_response(out, status=201 if out["status"] == "active" else 202)


@route(
    "POST",
    "/api/enrolments/{enrolment_id}/activate",
    scope="models:write",
    body=ActivateBody,
    summary="Make a version its class's current one (a lower leave-one-out F1 needs force; 422 without)",
    tag="enrolments",
)
async def activate_enrolment(request: web.Request) -> web.Response:
    body = await parse_body(request, ActivateBody)
    gw, enrolment_id, actor = (
        request.app[GATEWAY],
        request.match_info["enrolment_id"],
        request[PRINCIPAL].name,
    )
    return web.json_response(
        await call(
            lambda: ev.activate(gw.db, gw.config.storage.root, enrolment_id, actor, body.force, body.reason)
        )
    )


@route(
    "POST",
    "/api/enrolments/rollback",
    scope="models:write",
    body=ClassBody,
    summary="Make a class's previous version current again",
    tag="enrolments",
)
async def rollback_enrolment(request: web.Request) -> web.Response:
    body = await parse_body(request, ClassBody)
    gw, actor = request.app[GATEWAY], request[PRINCIPAL].name
    return web.json_response(
        await call(lambda: ev.rollback(gw.db, body.scene, body.name, body.camera_id, actor))
    )


@route(
    "POST",
    "/api/enrolments/remove",
    scope="models:write",
    body=ClassBody,
    summary="Remove a class (every version retired; its scene no longer matches against it)",
    tag="enrolments",
)
async def remove_enrolment(request: web.Request) -> web.Response:
    body = await parse_body(request, ClassBody)
    gw, actor = request.app[GATEWAY], request[PRINCIPAL].name
    count = await call(lambda: ev.remove(gw.db, body.scene, body.name, body.camera_id, actor))
    return web.json_response({"retired": count})
