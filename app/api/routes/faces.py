"""Faces: enroll images into a subject (partial success), list them, delete one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import image_body_openapi, read_payload
from app.api.schemas import EnrollParams, face_json
from app.auth import AdminKey, AnyKey
from app.errors import ApiError, error_body
from app.services.context import AppContext
from app.store.models import Gallery, Subject

router = APIRouter(prefix="/galleries/{gallery}", tags=["faces"])

IMAGE_FIELDS = {"image", "images"}
_DOC = image_body_openapi(
    {"image": "a photo with one face (repeat the field for several)", "images": "same as image"}, {}
)
_ENROLL_DOC = image_body_openapi(
    {"image": "a photo with one face (repeat the field for several)", "images": "same as image"},
    {"subject": {"type": "string", "description": "subject name; created when missing"}},
)


async def _enroll(
    request: Request, ctx: AppContext, gallery: Gallery, subject: Subject, payload
) -> JSONResponse:
    images = [image for name in ("image", "images") for image in payload.images.get(name, [])]
    if not images:
        raise ApiError(422, "missing_image", "send one or more images in field 'image'")
    results = await ctx.enrollment.enroll(gallery, subject, images)
    enrolled = sum(1 for r in results if "face_id" in r)
    body = {"subject": {"id": subject.id, "name": subject.name}, "enrolled": enrolled, "results": results}
    if enrolled:
        return JSONResponse(body | {"rejected": len(results) - enrolled}, status_code=201)
    code = results[0]["error"]["code"] if len(results) == 1 else "enrollment_rejected"
    message = results[0]["error"]["message"] if len(results) == 1 else "no image could be enrolled"
    return JSONResponse(error_body(code, message, results=results), status_code=422)


@router.post(
    "/subjects/{subject}/faces", status_code=201, dependencies=[AdminKey, WorkSlot], openapi_extra=_DOC
)
async def enroll_faces(gallery: str, subject: str, request: Request, ctx: CtxDep) -> JSONResponse:
    """Enroll images into an existing subject. Each image gets a ``face_id`` or an ``error``
    (no_face, multiple_faces, too_small, bad_image); 201 when at least one was enrolled, else 422."""
    payload = await read_payload(request, IMAGE_FIELDS, ctx.settings.max_images_per_enroll)
    payload.parse(EnrollParams)
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    found = await asyncio.to_thread(ctx.galleries.get_subject, owner, subject)
    return await _enroll(request, ctx, owner, found, payload)


@router.post("/enroll", status_code=201, dependencies=[AdminKey, WorkSlot], openapi_extra=_ENROLL_DOC)
async def enroll_by_name(gallery: str, request: Request, ctx: CtxDep) -> JSONResponse:
    """Enroll images into the subject named ``subject``, creating it when it does not exist."""
    payload = await read_payload(request, IMAGE_FIELDS, ctx.settings.max_images_per_enroll)
    params = payload.parse(EnrollParams)
    if params.subject is None:
        raise ApiError(422, "invalid_request", "subject: field required")
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    ctx.galleries.engine_for(owner)  # refuse before creating a subject we could not fill
    existing = await asyncio.to_thread(ctx.repo.get_subject_by_name, owner.id, params.subject)
    found = existing or await asyncio.to_thread(ctx.repo.get_or_create_subject, owner.id, params.subject)
    response = await _enroll(request, ctx, owner, found, payload)
    if existing is None and response.status_code != 201:  # leave no empty subject behind
        await asyncio.to_thread(ctx.repo.delete_subject, owner.id, found.id)
    return response


@router.get("/subjects/{subject}/faces", dependencies=[AnyKey])
def list_faces(
    gallery: str,
    subject: str,
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    owner = ctx.galleries.get(gallery)
    found = ctx.galleries.get_subject(owner, subject)
    faces = ctx.repo.list_faces(owner.id, found.id, limit, after)
    return {
        "faces": [face_json(f) for f in faces],
        "next_after": faces[-1].id if len(faces) == limit else None,
    }


@router.delete("/faces/{face_id}", dependencies=[AdminKey])
def delete_face(gallery: str, face_id: int, ctx: CtxDep) -> dict[str, Any]:
    """Delete one face; it leaves search results before this returns."""
    ctx.galleries.delete_face(ctx.galleries.get(gallery), face_id)
    return {"deleted": face_id}
