"""Faces: enroll images into a subject (partial success), list them, delete one."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import image_body_openapi, read_payload
from app.api.schemas import DeletedId, Enrolled, EnrollParams, FacePage, face_json
from app.auth import AdminKey, AnyKey
from app.errors import ApiError, error_body
from app.store.models import Subject

router = APIRouter(prefix="/galleries/{gallery}", tags=["faces"])

IMAGE_FIELDS = {"image", "images"}
_DOC = image_body_openapi(
    {"image": "a photo with one face (repeat the field for several)", "images": "same as image"}, {}
)
_ENROLL_DOC = image_body_openapi(
    {"image": "a photo with one face (repeat the field for several)", "images": "same as image"},
    {"subject": {"type": "string", "description": "subject name; created when missing"}},
)


def _images(payload) -> list:
    images = [image for name in ("image", "images") for image in payload.images.get(name, [])]
    if not images:
        raise ApiError(422, "missing_image", "send one or more images in field 'image'")
    return images


def _response(subject: Subject | None, results: list[dict[str, Any]]) -> JSONResponse:
    """201 with the per-image results when one image was enrolled, else 422 with the reasons."""
    enrolled = sum(1 for r in results if "face_id" in r)
    if enrolled:
        assert subject is not None
        body = {"subject": {"id": subject.id, "name": subject.name}, "enrolled": enrolled, "results": results}
        return JSONResponse(body | {"rejected": len(results) - enrolled}, status_code=201)
    code = results[0]["error"]["code"] if len(results) == 1 else "enrollment_rejected"
    message = results[0]["error"]["message"] if len(results) == 1 else "no image could be enrolled"
    return JSONResponse(error_body(code, message, results=results), status_code=422)


@router.post(
    "/subjects/{subject}/faces",
    status_code=201,
    dependencies=[AdminKey, WorkSlot],
    openapi_extra=_DOC,
    response_model=Enrolled,
)
async def enroll_faces(gallery: str, subject: str, request: Request, ctx: CtxDep) -> JSONResponse:
    """Enroll images into an existing subject. Each image gets a ``face_id`` or an ``error``
    (no_face, multiple_faces, too_small, bad_image); 201 when at least one was enrolled, else 422.
    404 subject_not_found also when the subject is deleted while the images are being enrolled."""
    payload = await read_payload(request, IMAGE_FIELDS, ctx.settings.max_images_per_enroll)
    params = payload.parse(EnrollParams)
    images = _images(payload)
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    found = await asyncio.to_thread(ctx.galleries.get_subject, owner, subject)
    return _response(found, await ctx.enrollment.enroll(owner, found, images, force=params.force))


@router.post(
    "/enroll",
    status_code=201,
    dependencies=[AdminKey, WorkSlot],
    openapi_extra=_ENROLL_DOC,
    response_model=Enrolled,
)
async def enroll_by_name(gallery: str, request: Request, ctx: CtxDep) -> JSONResponse:
    """Enroll images into the subject named ``subject``, creating it when it does not exist.

    The subject is created together with its first faces: a request whose images are all rejected
    creates nothing."""
    payload = await read_payload(request, IMAGE_FIELDS, ctx.settings.max_images_per_enroll)
    params = payload.parse(EnrollParams)
    if params.subject is None:
        raise ApiError(422, "invalid_request", "subject: field required")
    images = _images(payload)
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    subject, results = await ctx.enrollment.enroll_by_name(owner, params.subject, images, force=params.force)
    return _response(subject, results)


@router.get("/subjects/{subject}/faces", dependencies=[AnyKey], response_model=FacePage)
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


@router.delete("/faces/{face_id}", dependencies=[AdminKey], response_model=DeletedId)
def delete_face(gallery: str, face_id: int, ctx: CtxDep) -> dict[str, Any]:
    """Delete one face; it leaves search results before this returns."""
    ctx.galleries.delete_face(ctx.galleries.get(gallery), face_id)
    return {"deleted": face_id}
