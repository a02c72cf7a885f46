"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import CtxDep
from app.api.schemas import Health, Readiness
from app.auth import check_key

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


def _keyed(request: Request) -> bool:
    """Whether the caller may see details: auth off, or a valid key (any failure to check means no)."""
    if not request.app.state.ctx.settings.auth:
        return True
    try:
        check_key(request)
    except Exception:  # noqa: BLE001 - a missing/invalid key, or a store that cannot check it
        return False
    return True


@router.get(
    "/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}}
)
def readyz(request: Request, ctx: CtxDep) -> JSONResponse:
    """Ready when the packs are loaded, the store answers and every index holds exactly the stored faces.
    Without an API key the body says only ``ready`` or ``not_ready``; with one it lists packs and problems."""
    problems: list[str] = []
    packs: list[dict[str, Any]] = [e.info() for e in ctx.engines.loaded()]
    problems += [f"pack {name}: {error}" for name, error in ctx.engines.errors.items()]
    if not packs:
        problems.append("no model pack loaded")
    for engine in ctx.engines.loaded():  # issue 17: workers that keep dying are not replaced for ever
        if engine.pool is not None and engine.pool.gave_up:
            problems.append(f"pack {engine.name}: analysis workers keep dying before they are ready")
    try:
        ctx.repo.ping()
        problems += [f"index out of step: {p}" for p in ctx.indexes.out_of_step()]
    except Exception as exc:  # noqa: BLE001 - any store failure means not ready
        problems.append(f"store unreachable: {type(exc).__name__}")
    body: dict[str, Any] = {"status": "ready" if not problems else "not_ready"}
    if _keyed(request):
        body |= {"packs": packs, "problems": problems}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, ctx: CtxDep) -> Response:
    """Prometheus metrics: needs an API key unless ``public_metrics`` is set."""
    if not ctx.settings.public_metrics:
        check_key(request)
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
