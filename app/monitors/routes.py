"""/monitors (admin): create, list, get, delete camera monitors."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.auth import AdminKey
from app.events.errors import http_errors

router = APIRouter(prefix="/monitors", tags=["monitors"])


class MonitorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=1024, description="rtsp, http(s), /dev/videoN, file")
    gallery: str = Field(min_length=1)
    fps: float = Field(default=5.0, gt=0, le=30, description="frame-rate cap for detection")
    min_face: int = Field(default=40, ge=8, le=2000, description="smallest face side in pixels")
    roi: list[float] | None = Field(default=None, min_length=4, max_length=4, description="[x, y, w, h] 0..1")
    absence_s: float = Field(default=30.0, ge=0, le=86400, description="re-announce a person after this")


def _runtime(request: Request):
    return request.app.state.cameras


@router.post("", status_code=201, dependencies=[AdminKey])
async def create_monitor(body: MonitorCreate, request: Request) -> dict[str, Any]:
    """Store the monitor; a server process takes its lease and starts it within a second."""
    with http_errors():
        return await asyncio.to_thread(_runtime(request).monitors.create, body.model_dump())


@router.get("", dependencies=[AdminKey])
async def list_monitors(request: Request) -> dict[str, Any]:
    """Every monitor with its owner and health (state, fps, frames dropped, last error)."""
    return {"monitors": await asyncio.to_thread(_runtime(request).monitors.list)}


@router.get("/{name}", dependencies=[AdminKey])
async def get_monitor(name: str, request: Request) -> dict[str, Any]:
    service = _runtime(request).monitors
    with http_errors():
        monitor = await asyncio.to_thread(service.get, name)
    return await asyncio.to_thread(service.describe, monitor)


@router.delete("/{name}", dependencies=[AdminKey])
async def delete_monitor(name: str, request: Request) -> dict[str, Any]:
    """Stop and delete the monitor (its past events stay, under event retention)."""
    with http_errors():
        await asyncio.to_thread(_runtime(request).monitors.delete, name)
    return {"deleted": name}
