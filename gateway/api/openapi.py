"""The OpenAPI 3.1 document, built from the declared routes and their pydantic body models."""

from __future__ import annotations

import re
from typing import Any

from gateway.api.http import ROUTES

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}, "details": {}},
            "required": ["status", "message"],
        }
    },
}


def build_openapi(version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for spec in ROUTES:
        op: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": spec.handler.__name__,
            "tags": [spec.tag],
            "responses": {
                "200": {"description": "success", "content": {spec.produces: {}}},
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
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
            {"name": name, "in": "query", "required": False, "schema": {"type": typ}, "description": desc}
            for name, typ, desc in spec.query
        ]
        if params:
            op["parameters"] = params
        if spec.body is not None:
            schema = spec.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[spec.body.__name__] = schema
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{spec.body.__name__}"}}
                },
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
