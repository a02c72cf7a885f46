"""The FastAPI application: ``create_app(settings)``; ``marginface serve`` runs it with uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.contract import install_contract
from app.api.routes import detect, faces, galleries, health, identify, subjects, verify
from app.api.routes import keys as keys_routes
from app.api_docs import install_docs
from app.console import router as console_router
from app.crops import router as crops_router
from app.decisions import routes as trust_routes
from app.doctor import log_startup_summary
from app.errors import install_error_handlers
from app.events import routes as events_routes
from app.gallery_migration import router as migration_router
from app.middleware import (
    AdmissionMiddleware,
    BodyLimitMiddleware,
    InternalErrorMiddleware,
    LatencyMiddleware,
)
from app.monitors import routes as monitors_routes
from app.monitors.runtime import CamerasRuntime
from app.services.context import AppContext
from app.settings import Settings
from models.images import return_freed_memory_promptly

log = logging.getLogger("marginface.server")


def create_app(settings: Settings | None = None, *, load_packs: bool = True) -> FastAPI:
    """The service: migrates the store, loads the packs and rebuilds the indexes when it starts."""
    settings = settings or Settings()
    return_freed_memory_promptly()  # decoded images' memory back to the OS once freed (bench_hostile)
    ctx = AppContext(settings)
    cameras = CamerasRuntime(ctx)  # issue 15: monitors and events

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(log_startup_summary, settings)  # issue 12: `marginface doctor` summary
        await asyncio.to_thread(ctx.open, load_packs=load_packs)
        ctx.start_sync()
        resumer = migration_router.start_resuming(ctx)  # issue 13: migrations a restart interrupted
        await cameras.start()
        log.info("marginface server ready (auth %s)", "on" if settings.auth else "OFF")
        try:
            yield
        finally:
            resumer.cancel()
            await cameras.stop()
            await ctx.close()

    app = FastAPI(
        title="MarginFace",
        version="0.1.0",
        description="Face detection, verification (1:1) and identification (1:N) over FAISS galleries.",
        lifespan=lifespan,
        docs_url=None,  # served offline by app.api_docs
        redoc_url=None,  # ReDoc would load from a CDN
    )
    app.state.ctx = ctx
    ctx.metrics.gallery_names = settings.metrics_gallery_names
    app.state.cameras = cameras
    install_error_handlers(app)
    install_docs(app)
    install_contract(app)
    for module in (health, detect, verify, identify, galleries, subjects, faces):
        app.include_router(module.router)
    app.include_router(crops_router.router)  # issue 13: face crops
    app.include_router(migration_router.router)  # issue 13: gallery migration
    app.include_router(trust_routes.router)  # issue 11: calibrate, policy, negatives
    app.include_router(monitors_routes.router)  # issue 15: camera monitors
    app.include_router(events_routes.router)  # issue 15: events, clusters, webhooks, SSE
    app.include_router(keys_routes.router)  # issue 14: admin /keys API
    app.include_router(console_router)  # issue 14: web console at /console
    # Added innermost first: latency ⊃ last-resort 500 ⊃ size limit (413 first) ⊃ admission by bytes.
    app.add_middleware(
        AdmissionMiddleware,
        max_inflight_bytes=settings.max_inflight_bytes,
        max_request_bytes=settings.max_request_bytes,
        metrics=ctx.metrics,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(LatencyMiddleware, metrics=ctx.metrics)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): every setting from ``MARGINFACE_*`` variables."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(Settings())
