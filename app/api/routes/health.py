"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import CtxDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(ctx: CtxDep) -> JSONResponse:
    """Ready when the packs are loaded, the store answers and every index holds exactly the stored faces."""
    problems: list[str] = []
    packs: list[dict[str, Any]] = [e.info() for e in ctx.engines.loaded()]
    problems += [f"pack {name}: {error}" for name, error in ctx.engines.errors.items()]
    if not packs:
        problems.append("no model pack loaded")
    try:
        ctx.repo.ping()
        problems += [f"index out of step: {p}" for p in ctx.indexes.out_of_step()]
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        problems.append(f"store unreachable: {type(exc).__name__}")
    body = {"status": "ready" if not problems else "not_ready", "packs": packs, "problems": problems}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(ctx: CtxDep) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
