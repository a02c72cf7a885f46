"""API errors: every failure answers ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services.errors import Conflict, InvalidRequest, NotFound, ServiceError, Unavailable
from app.store.errors import StoreUnavailable
from models.errors import InvalidImageError, MarginFaceError, NoFaceError, PackError

log = logging.getLogger("marginface.server")

# Image errors that mean "too big" rather than "broken".
_TOO_LARGE_CODES = {"image_too_large", "too_many_pixels"}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra or {}


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what} {ident!r} does not exist")


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def status_for(exc: MarginFaceError) -> int:
    """HTTP status for a runtime error raised below the API."""
    if isinstance(exc, InvalidImageError):
        return 413 if exc.code in _TOO_LARGE_CODES else 400
    if isinstance(exc, NoFaceError):
        return 422
    if isinstance(exc, PackError):
        return 503
    return 400


# Service errors → HTTP status (the most specific class wins; anything else is a 400).
_SERVICE_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InvalidRequest, 422),
    (Unavailable, 503),
)


def service_status(exc: ServiceError) -> int:
    """HTTP status for an error raised by the service layer."""
    return next((status for cls, status in _SERVICE_STATUS if isinstance(exc, cls)), 400)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the error envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, error_body(exc.code, exc.message, **exc.extra), exc.headers)

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return _json(service_status(exc), error_body(exc.code, exc.message, **exc.extra))

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        # No traceback: the sync loop logs the outage once; a flood of identical ones helps nobody.
        return _json(
            503, error_body(exc.code, exc.message), {"Retry-After": str(exc.retry_after_s)}
        )

    @app.exception_handler(MarginFaceError)
    async def _runtime_error(_: Request, exc: MarginFaceError) -> JSONResponse:
        return _json(status_for(exc), error_body(exc.code, exc.message))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "", "problem": "invalid request"}
        message = f"{first['field'] or 'request'}: {first['problem']}"
        return _json(422, error_body("invalid_request", message, details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        return _json(exc.status_code, error_body(code, str(exc.detail)), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(500, error_body("internal_error", "internal server error (logged)"))
