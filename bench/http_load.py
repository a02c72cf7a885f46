"""Load for the HTTP benchmarks (the server: ``tests/server/servers.py``'s ``ServerProcess``): a lean
keep-alive client.

The client sends requests whose bytes are built once (multipart bodies of real photos) over raw asyncio
streams, one connection per concurrent client, as wrk does: on a 2-core machine the load generator shares the
cores with the server it measures, and a general-purpose client (httpx builds and parses every request in
Python, ~1-2 ms of CPU each) would take a visible share of them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, (filename, data, ctype) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_request(
    base: str, path: str, fields: dict[str, str], image: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """The complete bytes of ``POST path`` with ``image`` as the multipart field ``image``."""
    body, ctype = multipart(fields, {"image": ("q.jpg", image, "image/jpeg")})
    host = urlsplit(base).netloc
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
    if "content-length" in headers:
        return Reply(status, await reader.readexactly(int(headers["content-length"])))
    chunks = []
    while True:  # chunked
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return Reply(status, b"".join(chunks))
        chunks.append(data[:-2])


@dataclass
class LoadResult:
    rate: float  # requests/s over the timed part
    latencies: list[float] = field(default_factory=list)  # seconds, one per request
    replies: dict[int, Reply] = field(default_factory=dict)  # request number -> reply


async def drive(base: str, requests: list[bytes], concurrency: int, total: int) -> LoadResult:
    """Send ``total`` requests (request i is ``requests[i % len]``) from ``concurrency`` connections."""
    url = urlsplit(base)
    counter = iter(range(total))
    result = LoadResult(0.0)

    async def client() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            for i in counter:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                reply = await _read_reply(reader)
                result.latencies.append(time.perf_counter() - started)
                result.replies[i] = reply
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.rate = total / (time.perf_counter() - started)
    return result


def run_load(base: str, requests: list[bytes], concurrency: int, total: int, warmup: int = 2) -> LoadResult:
    """``drive`` after ``warmup`` untimed requests on one connection."""
    if warmup:
        asyncio.run(drive(base, requests, 1, warmup))
    return asyncio.run(drive(base, requests, concurrency, total))


def batch_mean(base: str, headers: dict[str, str] | None = None) -> float:
    """Mean faces per embedding batch so far, from the server's /metrics (NaN before any batch)."""
    import httpx

    reply = httpx.get(f"{base}/metrics", headers=headers, timeout=10)
    reply.raise_for_status()
    text = reply.text
    values = {}
    for line in text.splitlines():
        for key in ("marginface_embed_batch_size_sum", "marginface_embed_batch_size_count"):
            if line.startswith(key):
                values[key] = values.get(key, 0.0) + float(line.split()[-1])
    count = values.get("marginface_embed_batch_size_count", 0.0)
    return values.get("marginface_embed_batch_size_sum", 0.0) / count if count else float("nan")
