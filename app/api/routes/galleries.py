"""Galleries: create, list, get, delete. Each is bound to one model pack (name and version)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import CtxDep
from app.api.schemas import DeletedName, GalleryCreate, GalleryList, GalleryOut
from app.auth import AdminKey, AnyKey

router = APIRouter(prefix="/galleries", tags=["galleries"])


@router.post("", status_code=201, dependencies=[AdminKey], response_model=GalleryOut)
def create_gallery(body: GalleryCreate, ctx: CtxDep) -> dict[str, Any]:
    """A new empty gallery on ``pack`` (default: the server's default pack)."""
    gallery = ctx.galleries.create(body.name, body.pack, body.index, keep_crops=body.keep_crops)
    return ctx.galleries.describe(gallery)


@router.get("", dependencies=[AnyKey], response_model=GalleryList)
def list_galleries(ctx: CtxDep) -> dict[str, Any]:
    return {"galleries": [ctx.galleries.describe(g) for g in ctx.galleries.list()]}


@router.get("/{gallery}", dependencies=[AnyKey], response_model=GalleryOut)
def get_gallery(gallery: str, ctx: CtxDep) -> dict[str, Any]:
    return ctx.galleries.describe(ctx.galleries.get(gallery))


@router.delete("/{gallery}", dependencies=[AdminKey], response_model=DeletedName)
def delete_gallery(gallery: str, ctx: CtxDep) -> dict[str, Any]:
    """Delete the gallery with all its subjects and faces."""
    ctx.galleries.delete(gallery)
    return {"deleted": gallery}
