"""MarginFace HTTP client: ``Client`` (blocking) and ``AsyncClient`` (asyncio), on httpx.

Errors are typed (``NotFound``, ``UnprocessableEntity``, ... all ``APIError`` with ``status``, ``code``,
``message``); 429/503 answers and connection failures are retried, honouring ``Retry-After``."""

from marginface.client._core import Call, ImageInput, RetryPolicy
from marginface.client.aio import AsyncClient
from marginface.client.errors import (
    APIError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    MarginFaceClientError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    UnprocessableEntity,
)
from marginface.client.sync import Client

__all__ = [
    "APIError",
    "AsyncClient",
    "BadRequest",
    "Call",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "ImageInput",
    "MarginFaceClientError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "UnprocessableEntity",
]
