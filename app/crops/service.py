"""Encoding, decoding and serving of face crops; the gallery's ``keep_crops`` policy."""

from __future__ import annotations

import cv2
import numpy as np

from app.crops.repository import CropRepository, StoredCrop
from app.store.models import Gallery
from models.errors import MarginFaceError


class CropError(MarginFaceError):
    """A crop that cannot be served: ``crops_disabled`` or ``crop_not_found`` (both 404 at the edge)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


def encode_crop(crop: np.ndarray) -> bytes:
    """An aligned S×S×3 uint8 BGR crop as lossless PNG bytes."""
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"expected an S×S×3 uint8 BGR crop, got {crop.shape} {crop.dtype}")
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(crop))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buffer.tobytes()


def decode_crop(data: bytes) -> np.ndarray:
    """Stored crop bytes back to the S×S×3 uint8 BGR array (bit-exact for PNG)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("stored crop could not be decoded")
    return image


def crop_for_store(gallery: Gallery, crop: np.ndarray) -> bytes | None:
    """What enrollment stores beside a face: the encoded crop, or None when the gallery keeps none."""
    return encode_crop(crop) if getattr(gallery, "keep_crops", True) else None


class CropService:
    """Serve stored crops; report whether a gallery can be migrated from its crops."""

    def __init__(self, repo: CropRepository) -> None:
        self.repo = repo

    def get(self, gallery: Gallery, face_id: int) -> StoredCrop:
        crop = self.repo.get(gallery.id, face_id)
        if crop is not None:
            return crop
        if not self.repo.face_exists(gallery.id, face_id):
            raise CropError(f"face {face_id} does not exist in gallery {gallery.name!r}", "face_not_found")
        if not gallery.keep_crops:
            raise CropError(
                f"gallery {gallery.name!r} keeps no face crops (keep_crops is off)", "crops_disabled"
            )
        raise CropError(
            f"face {face_id} has no stored crop (enrolled before crops were kept, or with keep_crops off)",
            "crop_not_found",
        )

    def status(self, gallery: Gallery) -> dict[str, object]:
        """Crop coverage of a gallery: can its faces be re-embedded by a new pack without re-enrollment?"""
        crops, faces = self.repo.count(gallery.id)
        migratable = crops == faces
        info: dict[str, object] = {"keep": bool(gallery.keep_crops), "stored": crops, "faces": faces}
        info["migratable"] = migratable
        if not migratable:
            info["message"] = (
                f"{faces - crops} of {faces} faces have no stored crop: migrating to another pack needs "
                "those faces re-enrolled"
            )
        return info


def crops_of(ctx) -> CropService:  # noqa: ANN001 - AppContext (import would be circular)
    """The process's crop service, created on first use beside the store's engine."""
    service = getattr(ctx, "_crop_service", None)
    if service is None:
        service = CropService(CropRepository(ctx.db))
        ctx._crop_service = service
    return service
