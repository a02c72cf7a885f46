"""POST /verify: are two faces the same person? Two images, or one image and an enrolled subject."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import image_body_openapi, read_payload
from app.api.schemas import Verified
from app.auth import AnyKey
from app.errors import ApiError

router = APIRouter(tags=["recognition"])


class VerifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gallery: str | None = Field(default=None, min_length=1)
    subject: str | None = Field(default=None, min_length=1, description="subject id or name")
    face1: int | None = Field(default=None, description="face index in image1 (default: the largest)")
    face2: int | None = Field(default=None, description="face index in image2 (default: the largest)")
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _gallery_and_subject_together(self) -> VerifyParams:
        if (self.gallery is None) != (self.subject is None):
            raise ValueError("gallery and subject go together")
        return self


_DOC = image_body_openapi(
    {"image1": "first photo", "image2": "second photo (or give gallery + subject instead)"},
    {
        "gallery": {"type": "string"},
        "subject": {"type": "string", "description": "subject id or name"},
        "face1": {"type": "integer"},
        "face2": {"type": "integer"},
        "threshold": {"type": "number"},
    },
)


@router.post("/verify", dependencies=[AnyKey, WorkSlot], openapi_extra=_DOC, response_model=Verified)
async def verify(request: Request, ctx: CtxDep) -> dict[str, Any]:
    """Cosine similarity, the threshold and the verdict, with the face used in each image."""
    payload = await read_payload(request, {"image1", "image2"}, 2)
    params = payload.parse(VerifyParams)
    image1 = payload.image("image1")
    if params.gallery is not None:
        if payload.images.get("image2"):
            raise ApiError(422, "invalid_request", "give image2, or gallery + subject, not both")
        gallery = await asyncio.to_thread(ctx.galleries.get, params.gallery)
        assert params.subject is not None
        return await ctx.recognition.verify_subject(
            image1.data, gallery, params.subject, params.face1, params.threshold
        )
    image2 = payload.image("image2")
    return await ctx.recognition.verify_pair(
        image1.data, image2.data, params.face1, params.face2, params.threshold
    )
