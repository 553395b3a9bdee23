"""An alarm's message in a language: the scene's template (gateway/i18n/scenes.py ``alarm.<scene>``)
filled from the alarm's region and details; the stored message (English, what uplinks carry) when the
scene has no template or the alarm lacks what it needs (alarms raised before the details had it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.i18n import TEXT, has, t

FRAME = "frame"  # the region name of a scene that watches the whole picture


def region_text(region: str | None, lang: str) -> str:
    return t("region.frame", lang) if not region or region == FRAME else region


def _value(kind: str, value: Any, lang: str) -> Any:
    key = f"value.{kind}.{value}"
    return t(key, lang) if isinstance(value, str) and has(key) else value


def _template(scene: str, details: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    if isinstance(details.get("flood"), Mapping):  # a flood alarm, whatever its scene
        return "alarm.flood"
    if scene == "lifting_zone" and params.get("rated_people") == 0:
        return "alarm.lifting_zone.forbidden"
    if scene == "helmet" and details.get("violation") == "wrong helmet colour":
        return "alarm.helmet.colour"
    return f"alarm.{scene}"


def alarm_text(
    scene: str, region: str | None, message: str, details: Mapping[str, Any] | None, lang: str | None
) -> str:
    """The message of an alarm of ``scene`` in ``lang`` (None: the stored ``message``)."""
    if lang is None:
        return message
    details = details or {}
    params = details.get("scene_params")
    if not isinstance(params, Mapping):
        params = {}
    key = _template(scene, details, params)
    if not has(key):
        return message
    values: dict[str, Any] = {**params, **details, "region": region_text(region, lang)}
    values["colour"] = _value("colour", details.get("colour") or "unknown", lang)
    values["posture"] = _value("posture", details.get("posture"), lang)
    template = TEXT[key].get(lang) or TEXT[key]["en"]
    try:
        return template.format(**values)
    except (KeyError, ValueError, IndexError, TypeError):  # an older alarm without what it needs
        return message
