"""Trust routes (issue 11): calibrate a gallery, read/replace its policy, negatives of a subject."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import Payload, image_body_openapi, read_payload
from app.auth import AdminKey, AnyKey
from app.calibration.estimate import DEFAULT_GROWTH_LIMIT, DEFAULT_TARGET_FAR, DEFAULT_TARGET_FPIR
from app.calibration.service import calibrate_gallery
from app.decisions.policy import GalleryPolicy
from app.decisions.schemas import CalibrateResponse, NegativeList, NegativeOut
from app.decisions.service import trust_for
from app.services.errors import InvalidRequest, NotFound
from models.errors import InvalidImageError
from models.pipeline import select_face

router = APIRouter(prefix="/galleries/{gallery}", tags=["trust"])
MAX_IMPOSTOR_IMAGES = 500


class CalibrateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_fpir: float = Field(
        default=DEFAULT_TARGET_FPIR,
        gt=0,
        lt=0.5,
        description="false positive identification rate to meet: share of strangers that get any match",
    )
    target_far: float = Field(default=DEFAULT_TARGET_FAR, gt=0, lt=0.5, description="1:1 false accept rate")
    growth_limit: float = Field(
        default=DEFAULT_GROWTH_LIMIT,
        ge=1,
        description="advise recalibration once the gallery has grown past this factor",
    )
    use_gallery: bool = Field(default=True, description="score the gallery's own subjects, each left out")
    dry_run: bool = Field(default=False, description="estimate only; keep the stored calibration")


class NegativeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    face_id: int | None = Field(default=None, description="an enrolled face (of another subject)")
    probe_id: str | None = Field(default=None, description="`probe_id` of a face in a recent /identify")


async def _embed_images(engine, payload: Payload, fields: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Embeddings of the largest face of each image in ``fields``; and how many had no usable face."""
    crops, skipped = [], 0
    for name in fields:
        for image in payload.images.get(name, []):
            try:
                analysis = await engine.analyse(image.data)
            except InvalidImageError:
                skipped += 1
                continue
            if not analysis.faces:
                skipped += 1
                continue
            face = select_face(analysis.faces)
            crops.append(analysis.crops[analysis.faces.index(face)])
    if not crops:
        return np.zeros((0, engine.embedding_size), np.float32), skipped
    return await engine.embed(np.stack(crops)), skipped


async def _payload(request: Request, fields: set[str], limit: int) -> Payload:
    if request.headers.get("content-length") == "0":
        return Payload()
    return await read_payload(request, fields, limit)


@router.post(
    "/calibrate",
    dependencies=[AdminKey, WorkSlot],
    response_model=CalibrateResponse,
    openapi_extra=image_body_openapi(
        {"impostors": "photos of people who are NOT in the gallery (optional, repeat the field)"},
        {k: {"type": "number"} for k in ("target_fpir", "target_far", "growth_limit")}
        | {"use_gallery": {"type": "boolean"}, "dry_run": {"type": "boolean"}},
    ),
)
async def calibrate(gallery: str, request: Request, ctx: CtxDep) -> dict[str, Any]:
    """Estimate and store the gallery's identification threshold for a target FPIR at its current size
    (with the growth model that moves it as the gallery grows) and a 1:1 threshold for a target FAR.
    Scores come from the gallery's own subjects (each left out in turn) and optional impostor photos."""
    payload = await _payload(request, {"impostors", "impostor"}, MAX_IMPOSTOR_IMAGES)
    params = payload.parse(CalibrateParams)
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    impostors, skipped = None, 0
    if payload.images:
        impostors, skipped = await _embed_images(
            ctx.galleries.engine_for(owner), payload, ("impostors", "impostor")
        )
    record = await asyncio.to_thread(
        calibrate_gallery,
        ctx.repo,
        owner,
        impostors=impostors,
        use_gallery=params.use_gallery,
        target_fpir=params.target_fpir,
        target_far=params.target_far,
        growth_limit=params.growth_limit,
        save=not params.dry_run,
    )
    record["samples"]["impostor_images_without_face"] = skipped
    return record | {"stored": not params.dry_run}


@router.get("/policy", dependencies=[AnyKey], response_model=GalleryPolicy)
def get_policy(gallery: str, ctx: CtxDep) -> GalleryPolicy:
    """The gallery's enrollment/identification policy (defaults when none was set)."""
    return trust_for(ctx.galleries).policy(ctx.galleries.get(gallery))


@router.put("/policy", dependencies=[AdminKey], response_model=GalleryPolicy)
def put_policy(gallery: str, body: GalleryPolicy, ctx: CtxDep) -> GalleryPolicy:
    """Replace the policy (omitted fields take their defaults)."""
    return trust_for(ctx.galleries).set_policy(ctx.galleries.get(gallery), body)


@router.post(
    "/subjects/{subject}/negatives",
    status_code=201,
    dependencies=[AdminKey, WorkSlot],
    response_model=NegativeList,
    openapi_extra=image_body_openapi(
        {"image": "a photo of someone who is NOT this subject (largest face)"},
        {"face_id": {"type": "integer"}, "probe_id": {"type": "string"}},
    ),
)
async def add_negative(gallery: str, subject: str, request: Request, ctx: CtxDep) -> dict[str, Any]:
    """ "Not this person": store a negative example of the subject, from an image, an enrolled face id
    or the ``probe_id`` of a face of a recent /identify answer. Later probes at least as close to a
    negative as to the subject are not matched to it (decision ``ambiguous``)."""
    payload = await _payload(request, {"image"}, 1)
    params = payload.parse(NegativeParams)
    trust = trust_for(ctx.galleries)
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    found = await asyncio.to_thread(ctx.galleries.get_subject, owner, subject)
    given = sum(x is not None for x in (params.face_id, params.probe_id)) + bool(payload.images)
    if given != 1:
        raise InvalidRequest("send exactly one of: image, face_id, probe_id", code="invalid_request")
    if payload.images:
        image = payload.image("image")
        embeddings, skipped = await _embed_images(ctx.galleries.engine_for(owner), payload, ("image",))
        if skipped:
            raise InvalidRequest("no face was found in the image", code="no_face")
        row = await asyncio.to_thread(trust.add_negative_embedding, owner, found, embeddings[0], image.name)
    elif params.probe_id is not None:
        emb = trust.probe_embedding(owner, params.probe_id)
        row = await asyncio.to_thread(
            trust.add_negative_embedding, owner, found, emb, f"probe:{params.probe_id}"
        )
    else:
        assert params.face_id is not None
        emb = await asyncio.to_thread(trust.face_embedding, owner, found, params.face_id)
        row = await asyncio.to_thread(
            trust.add_negative_embedding, owner, found, emb, f"face:{params.face_id}", params.face_id
        )
    return {"negatives": [row]}


@router.get("/subjects/{subject}/negatives", dependencies=[AnyKey], response_model=NegativeList)
def list_negatives(gallery: str, subject: str, ctx: CtxDep) -> dict[str, Any]:
    trust = trust_for(ctx.galleries)
    owner = ctx.galleries.get(gallery)
    found = ctx.galleries.get_subject(owner, subject)
    return {"negatives": [trust.negative_json(r) for r in trust.store.list_negatives(owner.id, found.id)]}


@router.delete(
    "/subjects/{subject}/negatives/{negative_id}", dependencies=[AdminKey], response_model=NegativeOut
)
def delete_negative(gallery: str, subject: str, negative_id: int, ctx: CtxDep) -> dict[str, Any]:
    trust = trust_for(ctx.galleries)
    owner = ctx.galleries.get(gallery)
    found = ctx.galleries.get_subject(owner, subject)
    if not trust.store.delete_negative(owner.id, found.id, negative_id):
        raise NotFound.of("negative", negative_id)
    return {"id": negative_id, "subject_id": found.id, "deleted": True}
