"""`/api/openapi.json`: the OpenAPI 3.1 document, generated from the route table and the pydantic models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from src.serve.models import ErrorBody


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: str = "session"  # "session" | "admin" | "none"
    multipart: bool = False
    errors: tuple[int, ...] = ()


def openapi_document(routes: list[ApiRoute], title: str = "puppetcam serve") -> dict[str, Any]:
    models: list[type[BaseModel]] = [ErrorBody]
    for r in routes:
        for m in (r.request, r.response):
            if m is not None and m not in models:
                models.append(m)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    schemas = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "responses": {}}
        params = [{"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                  for seg in r.path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = params
        if r.auth != "none":
            op["security"] = [{"bearer": []}]
        if r.request is not None:
            ctype = "multipart/form-data" if r.multipart else "application/json"
            op["requestBody"] = {"required": not r.multipart,
                                 "content": {ctype: {"schema": {"$ref": f"#/components/schemas/{r.request.__name__}"}}}}
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{r.response.__name__}"}}}
        op["responses"][str(r.status)] = ok
        for code in sorted(set(r.errors) | ({401, 403} if r.auth != "none" else set())):
            op["responses"][str(code)] = {"description": "error",
                                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    bearer = {"type": "http", "scheme": "bearer",
              "description": "session token (or ?token=); the admin token to create sessions off loopback"}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": bearer}},
    }
