"""The OpenAPI document states the real error bodies: every error status of every operation answers
``ErrorBody`` (``{"error": {"code", "message", ...}}``), FastAPI's ``HTTPValidationError`` 422 included,
which this server never sends. Schema checks (schemathesis) can then fail when a body is wrong.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.schemas import ErrorBody

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, base64, multipart or image data)",
    401: "Missing or unknown API key",
    403: "The key may not do this (admin key needed)",
    404: "A named resource does not exist",
    409: "Conflicts with the current state (exists already, in use, version drift)",
    413: "Request, image or pixel count over the limits",
    415: "Unsupported content type",
    422: "Invalid parameters or body",
    500: "Internal error (logged); the connection stays open",
    503: "Busy, store unavailable or model pack not loaded here; retry after Retry-After",
}
_OPEN = {"/healthz", "/readyz"}  # no key, no parameters


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer, from what it takes."""
    if path in _OPEN:
        return [500]
    statuses = {401, 403, 500, 503}
    takes_body = "requestBody" in operation
    if takes_body:
        statuses |= {400, 413, 415, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if "{" in path:
        statuses.add(404)
    if method != "get":
        statuses |= {404, 409}
    return sorted(statuses)


def add_error_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """Declare ``ErrorBody`` for every error status of every operation (replacing FastAPI's 422)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path, method, operation):
                if str(status) in responses and status != 422 and "content" in responses[str(status)]:
                    continue  # the route declared its own body for this status (e.g. readyz 503)
                responses[str(status)] = {
                    "description": _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install_contract(app: FastAPI) -> None:
    """Serve the amended document at ``app.openapi_url`` (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            app.openapi_schema = add_error_responses(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
