"""Enrollment: images → one face each → embeddings stored (committed) and indexed, per-image outcomes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.crops.service import crop_for_store
from app.services.engines import Analysis, Engine
from app.services.galleries import GalleryService
from app.settings import Settings
from app.store.models import Gallery, Subject
from app.store.repository import NewFace
from models.errors import InvalidImageError
from models.face import Face

# A second face at least this fraction of the largest one's area makes the image ambiguous.
AMBIGUOUS_AREA_RATIO = 0.5


@dataclass
class ImageInput:
    """One uploaded image: its bytes and, when known, its file name."""

    data: bytes
    name: str | None = None


def rejection(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


class EnrollmentService:
    """Enroll images into a subject; partial success: each image gets a face id or a reason."""

    def __init__(self, galleries: GalleryService, settings: Settings) -> None:
        self.galleries = galleries
        self.settings = settings

    def choose_face(self, analysis: Analysis) -> tuple[int, Face] | dict[str, Any]:
        """The face to enroll (its index) or a rejection: no_face, multiple_faces, too_small."""
        faces = analysis.faces
        if not faces:
            return rejection("no_face", "no face was found in the image")
        order = sorted(range(len(faces)), key=lambda i: faces[i].area, reverse=True)
        best = faces[order[0]]
        if len(order) > 1 and faces[order[1]].area >= AMBIGUOUS_AREA_RATIO * best.area:
            return rejection(
                "multiple_faces",
                f"{len(faces)} faces of similar size were found; enroll images with one person",
                faces=len(faces),
            )
        side = min(best.width, best.height)
        if side < self.settings.min_enroll_face_px:
            return rejection(
                "too_small",
                f"the face is {side:.0f} px, below the minimum of {self.settings.min_enroll_face_px} px",
            )
        return order[0], best

    async def _analyse(self, engine: Engine, image: ImageInput) -> Analysis | dict[str, Any]:
        try:
            return await engine.analyse(image.data)
        except InvalidImageError as exc:
            return rejection("bad_image", str(exc), image_error=exc.code)

    async def enroll(
        self, gallery: Gallery, subject: Subject, images: list[ImageInput]
    ) -> list[dict[str, Any]]:
        """One result per image, in order: ``{"index", "name", "face_id", "face"}`` or ``{..., "error"}``."""
        engine = self.galleries.engine_for(gallery)
        analyses = await asyncio.gather(*(self._analyse(engine, image) for image in images))
        results: list[dict[str, Any]] = []
        accepted: list[tuple[int, Face, np.ndarray]] = []
        for i, (image, analysis) in enumerate(zip(images, analyses, strict=True)):
            result: dict[str, Any] = {"index": i, "name": image.name}
            results.append(result)
            choice = analysis if isinstance(analysis, dict) else self.choose_face(analysis)
            if isinstance(choice, dict):
                result["error"] = choice
                continue
            face_index, face = choice
            assert isinstance(analysis, Analysis)
            accepted.append((i, face, analysis.crops[face_index]))
        if not accepted:
            return results
        embeddings = await engine.embed(np.stack([crop for _, _, crop in accepted]))
        new_faces = [
            NewFace(
                embedding=embedding,
                box=face.to_dict()["box"],
                landmarks=face.to_dict()["landmarks"],
                det_score=float(face.score),
                source=images[i].name,
                crop=crop_for_store(gallery, crop),
            )
            for (i, face, crop), embedding in zip(accepted, embeddings, strict=True)
        ]
        repo, indexes = self.galleries.repo, self.galleries.indexes
        face_ids = await asyncio.to_thread(repo.add_faces, gallery, subject.id, new_faces)  # committed here
        await asyncio.to_thread(indexes.add_local, gallery, face_ids, subject.id, embeddings)
        for (i, face, _), face_id in zip(accepted, face_ids, strict=True):
            results[i]["face_id"] = face_id
            results[i]["face"] = face.to_dict()
        return results
