"""Route declarations with their auth scope and body model, JSON errors and body parsing."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ValidationError

from gateway.config.stream_url import url_message
from gateway.i18n import Lang, has, lang_of, t, use_lang
from gateway.i18n.config_check import PYDANTIC_TYPES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

PUBLIC = None  # no authentication
AUTHENTICATED = ""  # any valid token


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    scope: str | None
    summary: str
    body: type[BaseModel] | None = None
    # (name, JSON type or a JSON schema, description); ranges ("1..500", "at most N") and choices
    # ("csv (default) or xlsx") in a description are documented as minimum/maximum and enum
    query: tuple[tuple[str, str | dict[str, Any], str], ...] = ()
    produces: str = "application/json"
    tag: str = "api"
    response: type[BaseModel] | None = None  # the 2xx JSON answer; None = an object (undocumented)
    status: int = 200  # the success status


ROUTES: list[RouteSpec] = []


def route(
    method: str,
    path: str,
    *,
    scope: str | None,
    summary: str,
    body: type[BaseModel] | None = None,
    query: tuple[tuple[str, str | dict[str, Any], str], ...] = (),
    produces: str = "application/json",
    tag: str = "api",
    response: type[BaseModel] | None = None,
    status: int = 200,
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(
            RouteSpec(method, path, handler, scope, summary, body, query, produces, tag, response, status)
        )
        return handler

    return register


def error_body(status: int, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return body


def json_error(status: int, message: str, details: Any = None) -> web.Response:
    return web.json_response(error_body(status, message, details), status=status)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details, headers


def attachment(filename: str) -> str:
    """A Content-Disposition for a download whatever the name holds (line breaks, quotes, Chinese):
    an ASCII fallback and the exact name in RFC 5987 form."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


VALIDATE_ON_LOOP_BYTES = 8 * 1024  # larger bodies are validated on a worker thread
MAX_JSON_DEPTH = 32  # no body of this API nests deeper; deeper is an attack on the parser


def json_depth(data: Any) -> int:
    """How deep arrays and objects nest (iteratively: a hostile document cannot exhaust the stack)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def load_json(raw: bytes) -> Any:
    """Parse a request body: malformed, too deep or with an absurd number -> 400 with the reason."""
    try:
        data = json.loads(raw or b"null")
    except RecursionError as exc:
        raise ApiError(400, f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from exc
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        raise ApiError(400, "a number in the JSON has too many digits (at most 4300)") from exc
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ApiError(400, f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    return data


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read a JSON body into a model: malformed JSON -> 400, wrong or unknown fields -> 422."""
    if request.content_type != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    raw = await request.read()  # aiohttp answers 413 itself past client_max_size
    data = load_json(raw)
    try:
        if len(raw) > VALIDATE_ON_LOOP_BYTES:  # long lists (polygons) take time: not on the event loop
            return await asyncio.to_thread(model.model_validate, data)
        return model.model_validate(data)
    except ValidationError as exc:
        lang = request_lang(request)
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "(body)",
                "problem": t("error.unknown_field", lang)
                if e["type"] == "extra_forbidden"
                else _worded(e, lang),
            }
            for e in exc.errors(include_url=False)
        ]
        listed = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
        raise ApiError(422, f"{t('error.body_invalid', lang)}: {listed}", details) from exc


def _worded(error: Any, lang: str) -> str:
    """A validation error in the user's language where it carries a translation key (ctx["key"])."""
    ctx = error.get("ctx") or {}
    key = ctx.get("key")
    if isinstance(key, str) and has(key):
        params = {k: v for k, v in ctx.items() if k not in ("key", "text")}
        if key == "url.bad_scheme":
            return url_message((key, params), lang)
        return t(key, lang, **params)
    if lang != "en" and error["type"] in PYDANTIC_TYPES:  # pydantic's own words are English
        return t(PYDANTIC_TYPES[error["type"]], lang, **ctx)
    return str(error["msg"])


@web.middleware
async def language(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serves the request in the user's language (gateway.i18n.current_lang), see request_lang."""
    with use_lang(request_lang(request)):
        return await handler(request)


def request_lang(request: web.Request) -> Lang:
    """The user's language: ``?lang=``, else the Accept-Language header (the console sends its own
    setting, browsers theirs), else English (an API client that asks for nothing)."""
    return lang_of(request.query.get("lang") or request.headers.get("Accept-Language"), "en")


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"query parameter {name} must be an integer") from exc
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name} must be between {low} and {high}")
    return value
