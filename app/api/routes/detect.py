"""POST /detect: faces with boxes, landmarks and scores (no search)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CtxDep, WorkSlot
from app.api.inputs import image_body_openapi, read_payload
from app.api.schemas import Detected
from app.auth import AnyKey

router = APIRouter(tags=["recognition"])


class DetectParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_faces: int | None = Field(default=None, ge=1)


_DOC = image_body_openapi({"image": "the photo"}, {"max_faces": {"type": "integer", "minimum": 1}})


@router.post("/detect", dependencies=[AnyKey, WorkSlot], openapi_extra=_DOC, response_model=Detected)
async def detect(request: Request, ctx: CtxDep) -> dict[str, Any]:
    """Every face in the image (highest score first): box [x1, y1, x2, y2], 5 landmarks, score."""
    payload = await read_payload(request, {"image"}, 1)
    params = payload.parse(DetectParams)
    return await ctx.recognition.detect(payload.image("image").data, params.max_faces)
