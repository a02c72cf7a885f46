"""Admission by request bytes in flight (app.middleware.AdmissionMiddleware), on the real middleware with a
downstream app that holds requests open until released (concurrency cannot be provoked otherwise)."""

from __future__ import annotations

import asyncio
import json

from app.metrics import Metrics
from app.middleware import AdmissionMiddleware, request_charge


def _scope(length: int | None, content_type: bytes = b"multipart/form-data; boundary=x") -> dict:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/detect", "headers": headers}


def test_charge_counts_json_three_times_and_unknown_lengths_as_the_limit() -> None:
    assert request_charge(_scope(1000), 10_000) == 1000
    assert request_charge(_scope(1000, b"application/json"), 10_000) == 3000
    chunked = {**_scope(None), "headers": [(b"transfer-encoding", b"chunked")]}
    assert request_charge(chunked, 10_000) == 10_000 * 3  # no content type: read as JSON
    assert request_charge({**_scope(1000), "method": "GET"}, 10_000) == 0


def test_requests_beyond_the_bytes_in_flight_get_503_busy_until_memory_frees() -> None:
    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def downstream(scope, receive, send) -> None:
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        metrics = Metrics()
        admission = AdmissionMiddleware(
            downstream, max_inflight_bytes=1000, max_request_bytes=800, metrics=metrics
        )
        statuses: list[int] = []
        bodies: list[bytes] = []

        def sender():
            async def send(message) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                elif message.get("body"):
                    bodies.append(message["body"])

            return send

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        first = asyncio.create_task(admission(_scope(600), receive, sender()))
        await asyncio.sleep(0)
        await admission(_scope(600), receive, sender())  # 600 + 600 > 1000: refused at once
        third = asyncio.create_task(admission(_scope(100, b"application/json"), receive, sender()))  # +300
        fourth = asyncio.create_task(admission(_scope(100), receive, sender()))  # +100: exactly 1000
        await asyncio.sleep(0)
        assert admission.inflight == 1000
        await admission(_scope(1), receive, sender())  # one byte more: refused
        release.set()
        await asyncio.gather(first, third, fourth)
        assert admission.inflight == 0
        await admission(_scope(800), receive, sender())  # alone again: admitted
        assert admission.inflight == 0 and admission.peak == 1000
        assert json.loads(bodies[0])["error"]["code"] == "busy"
        assert metrics.rejected._value.get() == 2
        return statuses

    statuses = asyncio.run(scenario())
    assert statuses.count(503) == 2 and statuses.count(200) == 4, statuses
