"""Errors of the monitor and event services, mapped to HTTP at the edge by ``http_errors``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import ApiError


class CameraError(Exception):
    """A refused monitor/event/webhook operation: a stable code, a message and its HTTP status."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFound(CameraError):
    status = 404


class Conflict(CameraError):
    status = 409


class Invalid(CameraError):
    status = 422


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except CameraError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
