"""GET /api/scenes: the scene catalogue with names, rates, alarm type codes and parameters."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from analyzers.scenes import CATALOGUE, Scene, SceneConfig, SceneError, SceneInfo, scene_class
from gateway.api.answers import SceneList
from gateway.api.http import route
from gateway.api.keys import GATEWAY
from gateway.api.stats import scene_names
from gateway.delivery.alarm_types import AlarmTypeTable
from gateway.i18n import current_lang, has, t


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema node with its local `$ref`s replaced by the definitions they name."""
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_inline(defs[ref[8:]], defs), **_inline(rest, defs)}
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


def _flatten(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(property, nullable): `X | None` (anyOf [X, null]) becomes X's schema with the property's own
    title, description and default."""
    branches = [b for b in prop.get("anyOf", []) if isinstance(b, dict)]
    real = [b for b in branches if b.get("type") != "null"]
    if len(real) == 1:
        own = {k: v for k, v in prop.items() if k != "anyOf"}
        return {**real[0], **own}, len(real) < len(branches)
    return prop, False


def _worded(key: str, fallback: str | None) -> str | None:
    """A parameter's label or help in the request's language (gateway/i18n/scenes.py), else the schema's."""
    lang = current_lang()
    return t(key, lang) if lang is not None and has(key) else fallback


def scene_params(params: type[BaseModel]) -> list[dict[str, Any]]:
    """A scene's parameters for a form, from its pydantic Params model: one entry per field with the
    label (schema title) and description, the JSON type, bounds, choices and the default it applies."""
    schema = params.model_json_schema()
    defs = schema.get("$defs", {})
    required = set(schema.get("required", []))
    out = []
    for key, raw in schema.get("properties", {}).items():
        prop, nullable = _flatten(_inline(raw, defs))
        kind = prop.get("type") or ("string" if "enum" in prop else None)
        field = params.model_fields.get(key)
        default = None
        if field is not None and not field.is_required():
            default = to_jsonable_python(field.get_default(call_default_factory=True, validated_data={}))
        out.append(
            {
                "key": key,
                "label": _worded(f"param.{key}", prop.get("title", key)),
                "description": _worded(f"param.{key}.help", prop.get("description")),
                "type": kind,
                "nullable": nullable,
                "required": key in required,
                "default": default,
                "enum": prop.get("enum"),
                "items": prop.get("items"),
                "minimum": prop.get("minimum"),
                "maximum": prop.get("maximum"),
                "exclusive_minimum": prop.get("exclusiveMinimum"),
                "exclusive_maximum": prop.get("exclusiveMaximum"),
                "schema": prop,
            }
        )
    return out


def scene_entry(key: str, info: SceneInfo, types: AlarmTypeTable) -> dict[str, Any]:
    """What the console needs of one catalogue scene: names, defaults, alarm type and parameters."""
    try:
        cls: type[Scene] | None = scene_class(key)
    except SceneError:
        cls = None
    zh, en = scene_names(key)
    return {
        "key": key,
        "name_zh": zh,
        "name_en": en,
        "catalogue_zh": info.name_zh,
        "catalogue_en": info.name_en,
        "sample_fps": info.sample_fps,
        "implemented": cls is not None,
        "default_model": cls.default_model if cls else None,
        "uses_pose": cls.uses_pose if cls else False,
        "labels": sorted(cls.labels) if cls else [],
        "alarm_types": [
            {
                "code": t.code,
                "zh": t.zh,
                "en": t.en,
                "gb_alarm_method": t.gb_alarm_method,
                "gb_alarm_type": t.gb_alarm_type,
            }
            for t in (types.get(code) for code in info.alarm_types or (key,))
        ],
        "params": scene_params(cls.Params) if cls else [],
        "params_schema": cls.Params.model_json_schema() if cls else None,
    }


@route(
    "GET",
    "/api/scenes",
    response=SceneList,
    scope="cameras:read",
    tag="cameras",
    summary="The scene catalogue: per scene its names (zh/en), default sampling rate and model, pose use, "
    "alarm type code(s), and its parameters (label, description, type, bounds, default) with their JSON "
    "schema; the alarm type table and the JSON schema of a scene configuration",
)
async def list_scenes(request: web.Request) -> web.Response:
    types: AlarmTypeTable = request.app[GATEWAY].outbox.types
    items = [scene_entry(key, info, types) for key, info in CATALOGUE.items()]
    return web.json_response(
        {
            "items": items,
            "alarm_types": {
                "version": types.version,
                "items": [{"code": t.code, "zh": t.zh, "en": t.en} for t in types.types.values()],
            },
            "scene_config_schema": SceneConfig.model_json_schema(),
        }
    )
