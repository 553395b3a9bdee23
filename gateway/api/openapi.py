"""The OpenAPI 3.1 document, built from the declared routes, their pydantic body and answer models and
their query parameters (ranges and choices included)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from gateway.api.http import ROUTES, RouteSpec

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}, "details": {}},
            "required": ["status", "message"],
        }
    },
    "required": ["error"],
}
# What every route may answer besides success, and why.
ERRORS = {
    "400": "malformed request (bad JSON, query parameter out of range)",
    "401": "no, an invalid or an expired token",
    "403": "the token's role or scopes do not allow this, or a foreign Origin",
    "404": "no such resource",
    "405": "method not allowed (the Allow header lists the allowed ones)",
    "409": "conflicts with the current state",
    "413": "body too large",
    "415": "the body is not JSON",
    "422": "the body's fields are not valid",
    "429": "too many failed logins: wait (Retry-After)",
    "503": "busy or not available now (Retry-After)",
}
_RANGE = re.compile(r"(-?\d+)\s*\.\.\s*(-?\d+)")
_AT_MOST = re.compile(r"at most (\d+)")
_DEFAULT = re.compile(r"default:?\s*(-?[\w.]+)\)")
_CHOICES = re.compile(r"^\s*([\w-]+(?:\s*,\s*[\w-]+)*\s+or\s+[\w-]+)\s*$")


def query_schema(typ: str | dict[str, Any], description: str) -> dict[str, Any]:
    """A query parameter's schema: its declared type, with a range, a default and choices read from
    its description ("page size, 1..500 (default 50)", "csv (default) or xlsx")."""
    if isinstance(typ, dict):
        return dict(typ)
    schema: dict[str, Any] = {"type": typ}
    if typ == "integer":
        if m := _RANGE.search(description):
            schema["minimum"], schema["maximum"] = int(m.group(1)), int(m.group(2))
        elif m := _AT_MOST.search(description):
            schema["maximum"] = int(m.group(1))
        if m := _DEFAULT.search(description):
            try:
                schema["default"] = int(m.group(1))
            except ValueError:
                pass
    elif typ == "string":
        if "ISO 8601" in description:
            schema["format"] = "date-time"
        head = re.sub(r"\([^)]*\)", " ", description).split(":", 1)[0]
        if m := _CHOICES.match(head):
            schema["enum"] = [c.strip() for c in re.split(r",|\bor\b", m.group(1)) if c.strip()]
            if "(default)" in description:
                schema["default"] = description.split("(default)", 1)[0].strip().split()[-1]
    return schema


def _model_schema(model: type[BaseModel], schemas: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


# A `format` query choice answers in another media type than the route's default.
FORMAT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}


def _success(spec: RouteSpec, schemas: dict[str, Any]) -> dict[str, Any]:
    if spec.produces != "application/json":
        body: dict[str, Any] = {"schema": {"type": "string"}}
    elif spec.response is not None:
        body = {"schema": _model_schema(spec.response, schemas, "serialization")}
    else:
        body = {"schema": {"type": "object"}}
    content = {spec.produces: body}
    for name, typ, desc in spec.query:
        if name == "format":
            for choice in query_schema(typ, desc).get("enum", []):
                if choice in FORMAT_TYPES:
                    content[FORMAT_TYPES[choice]] = {"schema": {"type": "string"}}
    return {"description": "success", "content": content}


def build_openapi(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for spec in ROUTES:
        # a route that declares no success status may answer 200 or 201 (created): document 2XX
        code = "2XX" if spec.status == 200 and spec.response is None else str(spec.status)
        responses: dict[str, Any] = {code: _success(spec, schemas)}
        for code, why in ERRORS.items():
            responses[code] = {"description": why, "content": error_ref}
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.handler.__name__,
            "tags": [spec.tag],
            "responses": responses,
        }
        if spec.scope is None:
            op["security"] = []
        else:
            op["description"] = f"Needs scope `{spec.scope}`." if spec.scope else "Needs any valid token."
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", spec.path)
        ]
        params += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": query_schema(typ, desc),
                "description": desc,
            }
            for name, typ, desc in spec.query
        ]
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _model_schema(spec.body, schemas, "validation")}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "vigil gateway API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
