"""Shared route dependencies: the service container and the concurrency guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from app.errors import ApiError
from app.services.context import AppContext


async def get_ctx(request: Request) -> AppContext:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop on every request
    return request.app.state.ctx


async def _work_slot(request: Request) -> AsyncIterator[None]:
    """Admit an image request, or refuse it with 503 + Retry-After when the server is saturated."""
    ctx: AppContext = request.app.state.ctx
    if ctx.inflight >= ctx.settings.max_concurrent_requests:
        ctx.metrics.rejected.inc()
        raise ApiError(
            503,
            "busy",
            f"the server is at its limit of {ctx.settings.max_concurrent_requests} requests in flight; retry",
            headers={"Retry-After": "1"},
        )
    ctx.inflight += 1
    try:
        yield
    finally:
        ctx.inflight -= 1


WorkSlot = Depends(_work_slot)
CtxDep = Annotated[AppContext, Depends(get_ctx)]
