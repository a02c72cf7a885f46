"""Typed errors from the server's ``{"error": {"code", "message", ...}}`` bodies."""

from __future__ import annotations

from typing import Any

import httpx


class MarginFaceClientError(Exception):
    """Base of every error this client raises."""


class ConnectionFailed(MarginFaceClientError):
    """The server could not be reached (after the retries)."""


class APIError(MarginFaceClientError):
    """The server answered with an error status. ``code`` is the stable machine-readable code."""

    status: int
    code: str
    message: str
    details: dict[str, Any]

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.response = response


class BadRequest(APIError):
    """400: the request or an image cannot be read."""


class Unauthorized(APIError):
    """401: no API key or an unknown one."""


class Forbidden(APIError):
    """403: the key may not do this (e.g. a plain key writing)."""


class NotFound(APIError):
    """404: no such gallery, subject, face or key."""


class Conflict(APIError):
    """409: the name is taken or the state forbids it."""


class PayloadTooLarge(APIError):
    """413: the body or image is over the server's limits."""


class UnprocessableEntity(APIError):
    """422: well-formed but refused (no face, invalid field)."""


class RateLimited(APIError):
    """429: too many requests (after the retries)."""


class Unavailable(APIError):
    """503: the server is saturated or not ready (after the retries)."""


class ServerError(APIError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
    503: Unavailable,
}


def error_from_response(response: httpx.Response) -> APIError:
    """The typed error for an error response; tolerant of bodies that are not the envelope."""
    code, message, details = f"http_{response.status_code}", response.reason_phrase or "error", {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = dict(body["error"])
        code = str(err.pop("code", code))
        message = str(err.pop("message", message))
        details = err
    elif response.text:
        message = response.text[:500]
    default = ServerError if response.status_code >= 500 else APIError
    cls = _BY_STATUS.get(response.status_code, default)
    return cls(response.status_code, code, message, details, response)
