"""ASGI middleware: request-size limit (by Content-Length and while streaming), admission by bytes in
flight, a last-resort 500 that keeps the connection open, and per-route latency."""

from __future__ import annotations

import json
import logging
import time

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics

log = logging.getLogger("marginface.server")

_JSON_FACTOR = 3  # a JSON body lives as bytes, as the parsed str and as the decoded base64 images
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class RequestTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once the body passes the limit; FastAPI lets HTTP exceptions through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes")


def _error_bytes(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def _too_large_body(limit: int) -> bytes:
    return _error_bytes("request_too_large", f"request body over the limit of {limit} bytes")


async def send_json(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """A complete JSON response (keep-alive stays possible: the exchange ends normally)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes``: at once by Content-Length, else when the stream passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_json(send, 413, _too_large_body(self.max_bytes))


def request_charge(scope: Scope, max_request_bytes: int) -> int:
    """Bytes a request may make the server hold while its body is read and decoded."""
    if scope.get("method") not in _BODY_METHODS:
        return 0
    headers = dict(scope.get("headers") or [])
    try:
        declared = int(headers[b"content-length"])
    except (KeyError, ValueError):
        declared = max_request_bytes if b"transfer-encoding" in headers else 0
    declared = min(max(declared, 0), max_request_bytes)
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return declared * (_JSON_FACTOR if content_type in (b"application/json", b"") else 1)


class AdmissionMiddleware:
    """Admit requests by the bytes they bring, not by their count: while the admitted requests hold
    ``max_inflight_bytes``, another one with a body gets 503 ``busy`` + Retry-After (one request is
    always admitted when nothing else is in flight, so any request under the size limit can succeed)."""

    def __init__(
        self, app: ASGIApp, max_inflight_bytes: int, max_request_bytes: int, metrics: Metrics
    ) -> None:
        self.app = app
        self.max_inflight_bytes = max_inflight_bytes
        self.max_request_bytes = max_request_bytes
        self.metrics = metrics
        self.inflight = 0
        self.peak = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        charge = request_charge(scope, self.max_request_bytes) if scope["type"] == "http" else 0
        if charge == 0:
            await self.app(scope, receive, send)
            return
        if self.inflight and self.inflight + charge > self.max_inflight_bytes:
            self.metrics.rejected.inc()
            message = f"the server holds {self.inflight} request bytes, near its limit; retry"
            await send_json(send, 503, _error_bytes("busy", message), [(b"retry-after", b"1")])
            return
        self.inflight += charge
        self.peak = max(self.peak, self.inflight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= charge


class InternalErrorMiddleware:
    """Turn an unhandled exception into the 500 error body here, so the exchange completes and the
    keep-alive connection survives (re-raised to the server, it would close the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            if out_of_range(exc):  # an id or number the database cannot hold: the client's mistake
                message = "a number in the request is out of the range the server stores"
                await send_json(send, 422, _error_bytes("out_of_range", message))
                return
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await send_json(send, 500, _error_bytes("internal_error", "internal server error (logged)"))


def out_of_range(exc: BaseException) -> bool:
    """SQLite's OverflowError (ints ≥ 2**63) or PostgreSQL's numeric_value_out_of_range (int4/int8),
    anywhere in the exception's chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OverflowError) or type(current).__name__ == "NumericValueOutOfRange":
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


class LatencyMiddleware:
    """Observe every request's latency under its route template (not the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
