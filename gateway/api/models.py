"""Models and their versions: list, show (sets, metrics, usage, audit), activate with the promotion
gate, roll back, retire, test on a test set.

Viewers read (models:read); activation, rollback, retirement and tests need models:write (admin).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway.api.answers import ModelList
from gateway.api.http import ApiError, parse_body, route
from gateway.api.keys import GATEWAY, PRINCIPAL
from gateway.auth import (
    Principal,
)
from gateway.db.schema import Model, ModelVersion
from gateway.i18n import current_lang, t_request
from gateway.i18n.models import model_description
from gateway.models import versions as mv
from gateway.times import iso

T = TypeVar("T")


def who(request: web.Request) -> Principal:
    return request[PRINCIPAL]


async def call(work: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(work)
    except mv.VersionNotFound as exc:
        raise ApiError(404, _worded(exc)) from exc
    except mv.GateRefused as exc:
        raise ApiError(409, _worded(exc)) from exc
    except mv.ModelVersionError as exc:
        raise ApiError(422, _worded(exc)) from exc


def _worded(exc: mv.ModelVersionError) -> str:
    """The error in the user's language where it has a translation key (else as raised)."""
    return t_request(exc.key, **exc.params) if exc.key else str(exc)


@route(
    "GET",
    "/api/model-versions",
    scope="models:read",
    summary="Model versions with status, train/test set ids and metrics",
    tag="models",
    query=(("model", "string", "only this model's versions"),),
)
async def list_model_versions(request: web.Request) -> web.Response:
    db, model = request.app[GATEWAY].db, request.query.get("model") or None
    return web.json_response({"items": await call(lambda: mv.list_versions(db, model))})


@route(
    "GET",
    "/api/model-versions/{version_id}",
    scope="models:read",
    summary="One version: description, created, train and test set, metrics, tests, usage, audit",
    tag="models",
)
async def show_model_version(request: web.Request) -> web.Response:
    db, version_id = request.app[GATEWAY].db, request.match_info["version_id"]
    return web.json_response(await call(lambda: mv.show_version(db, version_id)))


@route(
    "GET",
    "/api/models/{name}/audit",
    scope="models:read",
    summary="Activations, rollbacks and retirements of a model's versions, oldest first",
    tag="models",
)
async def model_audit(request: web.Request) -> web.Response:
    db, name = request.app[GATEWAY].db, request.match_info["name"]
    return web.json_response({"items": await call(lambda: mv.audit_log(db, name))})


class VersionActivateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scene: str | None = Field(
        None, max_length=32, description="pin on this scene's cameras; null = whole model"
    )
    camera_id: str | None = Field(None, max_length=64, description="only this camera (needs scene)")
    override: bool = Field(False, description="activate although its F1 is lower (promotion gate)")
    reason: str | None = Field(None, max_length=2000, description="why; required with override")


class VersionRetireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)


class ModelTestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(
        min_length=1,
        max_length=1000,
        description="dataset id of the sample library, or a YOLO folder on the server",
    )
    conf: float = Field(0.3, ge=0.0, le=1.0)
    iou: float = Field(0.5, gt=0.0, le=1.0)
    map: dict[str, str] | None = Field(None, description="dataset class -> model class")


@route(
    "POST",
    "/api/model-versions/{version_id}/activate",
    scope="models:write",
    body=VersionActivateBody,
    summary="Activate a version (whole model or per scene); a lower F1 needs override + reason (409 without)",
    tag="models",
)
async def activate_version(request: web.Request) -> web.Response:
    return await _switch(request, mv.activate)


@route(
    "POST",
    "/api/model-versions/{version_id}/rollback",
    scope="models:write",
    body=VersionActivateBody,
    summary="Roll back to this earlier version (the promotion gate applies as to activation)",
    tag="models",
)
async def rollback_version(request: web.Request) -> web.Response:
    return await _switch(request, mv.rollback)


async def _switch(request: web.Request, change: Callable[..., dict[str, Any]]) -> web.Response:
    """Activation and rollback take the same body and answer alike (both pass the promotion gate)."""
    body = await parse_body(request, VersionActivateBody)
    db, version_id, actor = request.app[GATEWAY].db, request.match_info["version_id"], who(request).name
    return web.json_response(
        await call(
            lambda: change(
                db,
                version_id,
                actor,
                scene=body.scene,
                camera_id=body.camera_id,
                override=body.override,
                reason=body.reason,
            )
        )
    )


@route(
    "POST",
    "/api/model-versions/{version_id}/retire",
    scope="models:write",
    body=VersionRetireBody,
    summary="Retire a version (refused while camera scenes pin it)",
    tag="models",
)
async def retire_version(request: web.Request) -> web.Response:
    body = await parse_body(request, VersionRetireBody)
    db, version_id, actor = request.app[GATEWAY].db, request.match_info["version_id"], who(request).name
    return web.json_response(await call(lambda: mv.retire(db, version_id, actor, body.reason)))


@route(
    "POST",
    "/api/model-versions/{version_id}/test",
    scope="models:write",
    body=ModelTestBody,
    summary="Evaluate a version on a test set (precision, recall, F1); the result is stored with it",
    tag="models",
)
async def test_model_version(request: web.Request) -> web.Response:
    body = await parse_body(request, ModelTestBody)
    gw, version_id, actor = request.app[GATEWAY], request.match_info["version_id"], who(request).name

    def work() -> dict[str, Any]:
        return mv.test_version(
            gw.db,
            gw.config.storage.root,
            version_id,
            body.dataset,
            conf=body.conf,
            iou=body.iou,
            class_map=body.map,
            actor=actor,
        )

    return web.json_response(await call(work))


@route(
    "GET",
    "/api/models",
    scope="models:read",
    summary="Imported models and their versions",
    tag="models",
    response=ModelList,
)
async def list_models(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            models = s.scalars(select(Model).options(selectinload(Model.versions)).order_by(Model.name))
            return [
                {
                    "name": m.name,
                    "family": m.family,
                    "description": model_description(m.name, m.description, current_lang()),
                    "licence": m.licence,
                    "source": m.source,
                    "created_at": iso(m.created_at),
                    "versions": [_version_json(v, gw) for v in m.versions],
                }
                for m in models
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


def _version_json(v: ModelVersion, gw: Any) -> dict[str, Any]:
    handle = gw.analytics.models.get(v.model.name)
    return {
        "id": v.id,
        "version": v.version,
        "sha256": v.sha256,
        "status": v.status,
        "metrics": v.metrics,
        "created_at": iso(v.created_at),
        "provider": handle.provider if handle is not None and handle.version_id == v.id else None,
    }
