"""`vigil config check`: every problem of a configuration file in one pass, each at its path and line.

Pydantic reports the fields of a section together, but a model's own checks (scene parameters, ids
that refer to each other) run only once its fields are valid, so fixing one error used to reveal the
next. Here the scene parameters and the references are checked on the YAML as written, next to the
schema, so one run shows them all:

- YAML syntax errors with the file, line and column;
- every schema error (unknown or misspelled field, wrong type, bad stream address) at its YAML path;
- each scene's kind and parameters at ``cameras[i].scenes[j].params.NAME`` and that line;
- duplicate ids, cameras naming a source or an uplink target that does not exist;
- ``*_env`` settings (passwords, secrets) naming an environment variable that is not set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from analyzers.scenes import CATALOGUE, SceneError, scene_class
from gateway.config.schema import (
    GatewayConfig,
    _line_of,
    _loc_text,
    _merge,
    env_overrides,
    error_places,
    resolve_paths,
)
from gateway.config.stream_url import url_message
from gateway.config.yaml_text import yaml_error_parts
from gateway.i18n import has, t
from gateway.i18n.config_check import PYDANTIC_TYPES

Loc = tuple[int | str, ...]
# Errors the schema raises at a whole camera for what this module reports at the exact place.
COVERED = frozenset({"scene_params", "scene_unknown"})


@dataclass(frozen=True)
class Problem:
    line: int | None
    where: str  # the YAML path, e.g. cameras[0].scenes[1].params.min_people
    message: str

    def text(self, path: Path) -> str:
        place = f"{path}:{self.line}" if self.line else str(path)
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


@dataclass
class CheckResult:
    config: GatewayConfig | None  # None unless there is no problem
    problems: list[Problem]


def check_file(path: Path, environ: Mapping[str, str] | None = None, lang: str = "en") -> CheckResult:
    """Check a configuration file; ``environ`` (default: this process's) supplies overrides and secrets."""
    env = os.environ if environ is None else environ
    if not path.is_file():
        return CheckResult(None, [Problem(None, "", t("check.file_not_found", lang))])
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        line, message = yaml_error_parts(exc)
        if lang != "en":
            message = t("config.yaml_syntax", lang, problem=message.removeprefix("not valid YAML: "))
        return CheckResult(None, [Problem(line, "", message)])
    if not isinstance(data, dict):
        return CheckResult(None, [Problem(1, "", t("check.top_level", lang))])
    problems: list[Problem] = []

    def add(loc: Loc, message: str) -> None:
        problem = Problem(_line_of(root, loc), _loc_text(loc) if loc else "", message)
        if problem not in problems:
            problems.append(problem)

    scene_locs = _scene_problems(data, add, lang)
    _merge(data, env_overrides(env))
    config: GatewayConfig | None = None
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        model_checks_ran = False
        for error, (loc, message, kind) in zip(exc.errors(include_url=False), error_places(exc), strict=True):
            if kind in COVERED and scene_locs:
                continue
            model_checks_ran |= not loc
            add(loc, _worded(error, message, lang))
        if not model_checks_ran:  # a field was wrong, so the cross-references were not checked yet
            _reference_problems(data, add, lang)
    for loc, variable in _secret_settings(data):
        if variable and not env.get(variable):
            add(loc, t("config.secret_unset", lang, var=variable))
    problems.sort(key=lambda p: (p.line or 0, p.where))
    if problems or config is None:
        return CheckResult(None, problems)
    return CheckResult(resolve_paths(config, path.parent), [])


def _worded(error: Any, message: str, lang: str) -> str:
    """A schema error in ``lang``: by its translation key (ctx["key"]) or pydantic's error type; in
    English pydantic's own (more detailed) words where there is no key."""
    ctx = error.get("ctx") or {}
    key = ctx.get("key")
    if isinstance(key, str) and has(key):
        params = {k: v for k, v in ctx.items() if k not in ("key", "text")}
        return url_message((key, params), lang) if key.startswith("url.") else t(key, lang, **params)
    if lang != "en" and error["type"] in PYDANTIC_TYPES:
        return t(PYDANTIC_TYPES[error["type"]], lang, **ctx)
    return message


def _items(data: Any, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    section = data.get(key) if isinstance(data, dict) else None
    for i, item in enumerate(section if isinstance(section, list) else []):
        if isinstance(item, dict):
            yield i, item


def _scene_problems(data: dict[str, Any], add: Any, lang: str) -> set[Loc]:
    """Each scene's kind, parameters and model, at the scene's own path; the cameras with a problem."""
    found: set[Loc] = set()
    for i, cam in _items(data, "cameras"):
        for j, scene in _items(cam, "scenes"):
            at: Loc = ("cameras", i, "scenes", j)
            kind = scene.get("scene")
            if not isinstance(kind, str):
                continue  # the schema reports a missing or wrong `scene`
            try:
                cls = scene_class(kind)
            except SceneError:
                add((*at, "scene"), t("check.unknown_scene", lang, scene=kind, known=", ".join(CATALOGUE)))
                found.add(("cameras", i))
                continue
            params = scene.get("params") or {}
            if isinstance(params, dict):
                try:
                    cls.Params.model_validate(params)
                except ValidationError as exc:
                    known = ", ".join(cls.Params.model_fields) or "none"
                    for err in exc.errors(include_url=False):
                        if err["type"] == "extra_forbidden":
                            message = t("check.unknown_param", lang, scene=kind, known=known)
                        else:
                            message = _worded(err, str(err["msg"]).removeprefix("Value error, "), lang)
                        add((*at, "params", *err["loc"]), message)
                    found.add(("cameras", i))
            if not (scene.get("model") or cls.default_model):
                add(at, t("check.needs_model", lang, scene=kind))
                found.add(("cameras", i))
    return found


def _reference_problems(data: dict[str, Any], add: Any, lang: str) -> None:
    """Duplicate ids and names, and cameras naming a source or uplink target that is not there."""
    for section, key in (("cameras", "id"), ("sources", "id"), ("uplink", "name"), ("users", "username")):
        seen: dict[Any, int] = {}
        for i, item in _items(data, section):
            value = item.get(key)
            if value is None:
                continue
            if value in seen:
                where = {"key": key, "value": value, "section": section, "other": seen[value]}
                add((section, i, key), t("check.duplicate", lang, **where))
            else:
                seen[value] = i
    sources = {item.get("id") for _, item in _items(data, "sources")}
    targets = {item.get("name") for _, item in _items(data, "uplink")}
    for i, cam in _items(data, "cameras"):
        source = cam.get("source")
        if source is not None and source not in sources:
            add(("cameras", i, "source"), t("check.no_source", lang, source=source))
        alarm = cam.get("alarm")
        push = alarm.get("push") if isinstance(alarm, dict) else None
        for k, name in enumerate(push if isinstance(push, list) else []):
            if name not in targets:
                add(("cameras", i, "alarm", "push", k), t("check.no_target", lang, target=name))


def _secret_settings(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """(path, variable name) of every ``*_env`` setting in the YAML."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_env") and isinstance(value, str):
                yield (*loc, key), value
            else:
                yield from _secret_settings(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _secret_settings(value, (*loc, i))
