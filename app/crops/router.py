"""``GET /galleries/{gallery}/faces/{face_id}/crop``: the aligned crop a face was enrolled from."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import CtxDep
from app.auth import AnyKey
from app.crops.service import CropError, crops_of
from app.errors import ApiError

router = APIRouter(prefix="/galleries/{gallery}", tags=["faces"])


@router.get(
    "/faces/{face_id}/crop",
    dependencies=[AnyKey],
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the aligned 112×112 crop (PNG)"},
        404: {"description": "gallery_not_found, face_not_found, crops_disabled or crop_not_found"},
    },
)
async def get_crop(gallery: str, face_id: int, ctx: CtxDep) -> Response:
    """The aligned crop stored with a face (404 ``crops_disabled`` when the gallery keeps none)."""
    owner = await asyncio.to_thread(ctx.galleries.get, gallery)
    try:
        crop = await asyncio.to_thread(crops_of(ctx).get, owner, face_id)
    except CropError as exc:
        raise ApiError(404, exc.code, exc.message) from None
    return Response(crop.data, media_type=crop.media_type, headers={"Cache-Control": "private, max-age=3600"})
