"""Errors of the service layer: what went wrong, in domain terms; ``app.errors`` maps them to HTTP.

Services never speak HTTP. Each error carries a stable machine-readable ``code`` and a human
``message``; the edge picks the status from the class (``NotFound`` → 404, ``Conflict`` → 409, ...).
"""

from __future__ import annotations

from typing import Any

from app.store.errors import StoreUnavailable

__all__ = [
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "ServiceError",
    "StoreUnavailable",
    "Unavailable",
]


class ServiceError(Exception):
    """A failure a client can act on: a stable ``code``, a ``message`` and optional ``extra`` fields."""

    default_code = "service_error"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.extra = extra


class NotFound(ServiceError):
    """The named gallery, subject or face does not exist (or no longer)."""

    default_code = "not_found"

    @classmethod
    def of(cls, what: str, ident: object) -> NotFound:
        return cls(f"{what} {ident!r} does not exist", code=f"{what}_not_found")


class Conflict(ServiceError):
    """The request clashes with the current state (a name taken, a pack version drift, no faces yet)."""

    default_code = "conflict"


class InvalidRequest(ServiceError):
    """The request is well-formed but asks for something that cannot be (an unknown index kind)."""

    default_code = "invalid_request"


class Unavailable(ServiceError):
    """This server cannot serve the request now (a model pack not loaded); another one may."""

    default_code = "unavailable"
