"""POST /identify: who is in the photo? Every face searched in a gallery, results per subject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import image_body_openapi, read_payload
from app.api.schemas import Identified
from app.auth import AnyKey
from app.errors import ApiError
from app.services.offload import store_read

router = APIRouter(tags=["recognition"])


class IdentifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gallery: str = Field(min_length=1)
    top_k: int = Field(default=5, ge=1)
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    max_faces: int | None = Field(default=None, ge=1)


_DOC = image_body_openapi(
    {"image": "the photo"},
    {
        "gallery": {"type": "string"},
        "top_k": {"type": "integer", "minimum": 1, "default": 5},
        "threshold": {"type": "number"},
        "max_faces": {"type": "integer", "minimum": 1},
    },
)


@router.post(
    "/identify", dependencies=[AnyKey, WorkSlot], openapi_extra=_DOC, response_model=Identified
)
async def identify(request: Request, ctx: CtxDep) -> dict[str, Any]:
    """For every face: box, landmarks, score, the top-k subjects (best first) and the match (or null)."""
    payload = await read_payload(request, {"image"}, 1)
    params = payload.parse(IdentifyParams)
    if params.top_k > ctx.settings.max_top_k:
        raise ApiError(422, "invalid_request", f"top_k: at most {ctx.settings.max_top_k}")
    gallery = await store_read(ctx.repo, ctx.galleries.get, params.gallery)
    image = payload.image("image")
    return await ctx.recognition.identify(
        image.data, gallery, params.top_k, params.threshold, params.max_faces
    )
