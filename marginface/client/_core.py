"""What the sync and async clients share: a request description (``Call``), the image-input forms, the
retry policy and the response decoding. Each endpoint is one builder function in ``endpoints.py``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, Union

import httpx

from marginface.client.errors import error_from_response

T = TypeVar("T")

# A photo: a path, raw bytes, or an open binary file.
ImageInput = Union[str, "os.PathLike[str]", bytes, IO[bytes]]

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to decode its answer into ``T``."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    decode: Callable[[httpx.Response], T] = field(default=lambda r: r.json())

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.params:
            kwargs["params"] = {k: v for k, v in self.params.items() if v is not None}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.data:
            kwargs["data"] = {k: _form_value(v) for k, v in self.data.items() if v is not None}
        if self.files:
            kwargs["files"] = self.files
        return kwargs


def _form_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def image_part(field_name: str, image: ImageInput) -> tuple[str, tuple[str, bytes, str]]:
    """A multipart file part from a path, bytes or a binary file."""
    if isinstance(image, bytes):
        name, data = "image", image
    elif isinstance(image, (str, os.PathLike)):
        path = Path(image)
        name, data = path.name, path.read_bytes()
    else:
        data = image.read()
        name = Path(getattr(image, "name", "image") or "image").name
    return (field_name, (name, data, "application/octet-stream"))


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429/503 answers that carry ``Retry-After`` (the server refused before doing anything) and
    connection failures.

    The wait is the server's ``Retry-After`` when it sends one (capped at ``max_wait_s``), else an
    exponential back-off from ``backoff_s``."""

    retries: int = 3
    backoff_s: float = 0.25
    max_wait_s: float = 30.0

    def wait_s(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = response.headers.get("Retry-After")
            if after is not None:
                try:
                    return min(max(float(after), 0.0), self.max_wait_s)
                except ValueError:
                    pass  # an HTTP date: fall back to the back-off
        return min(self.backoff_s * (2**attempt), self.max_wait_s)

    def should_retry(self, attempt: int, response: httpx.Response | None) -> bool:
        if attempt >= self.retries:
            return False
        if response is None:
            return True
        # 429/503 *with* Retry-After: the server refused before doing any work and says when to come back;
        # a 503 without it (e.g. pack_not_loaded) is a state that retrying does not change
        return response.status_code in RETRY_STATUSES and "Retry-After" in response.headers


def decode(call: Call[T], response: httpx.Response) -> T:
    """``call.decode(response)`` for a success, else the typed error."""
    if response.is_success:
        return call.decode(response)
    raise error_from_response(response)


def auth_headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("MARGINFACE_KEY")
    headers = {"User-Agent": "marginface-client/0.1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def sleep(seconds: float) -> None:
    time.sleep(seconds)
