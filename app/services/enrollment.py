"""Enrollment: images → one face each → embeddings stored (committed) and indexed, per-image outcomes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.crops.service import crop_for_store
from app.decisions.service import trust_for
from app.services.engines import Analysis, Engine
from app.services.errors import NotFound
from app.services.galleries import GalleryService
from app.settings import Settings
from app.store.errors import MissingError
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
            # issue 17: with analysis processes the worker embeds the face enrollment keeps (the largest)
            return await engine.analyse(image.data, embed="largest")
        except InvalidImageError as exc:
            return rejection("bad_image", str(exc), image_error=exc.code)

    async def _prepare(
        self,
        gallery: Gallery,
        images: list[ImageInput],
        subject: Subject | str | None = None,  # issue 11: for the duplicate check
        force: bool = False,  # issue 11: override the quality/duplicate policy
    ) -> tuple[list[dict[str, Any]], list[tuple[int, Face]], list[NewFace], np.ndarray]:
        """Analyse and embed: per-image results (rejections filled in), the accepted faces, what to store."""
        engine = self.galleries.engine_for(gallery)
        analyses = await asyncio.gather(*(self._analyse(engine, image) for image in images))
        results: list[dict[str, Any]] = []
        accepted: list[tuple[int, Face, np.ndarray]] = []
        embedded: dict[int, np.ndarray] = {}  # image index -> its face's embedding, made in a worker
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
            if analysis.embeddings is not None:
                embedded[i] = analysis.embeddings[0]  # the largest face's: the one chosen
        # issue 11: quality policy and duplicates (adds quality / possible_duplicate, may refuse), embeds
        accepted, embeddings = await trust_for(self.galleries).screen_enrollment(
            gallery, subject, engine, accepted, results, force, embedded
        )
        if not accepted:
            return results, [], [], np.zeros((0, engine.embedding_size), np.float32)
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
        return results, [(i, face) for i, face, _ in accepted], new_faces, embeddings

    @staticmethod
    def _fill(results: list[dict[str, Any]], accepted: list[tuple[int, Face]], face_ids: list[int]) -> None:
        for (i, face), face_id in zip(accepted, face_ids, strict=True):
            results[i]["face_id"] = face_id
            results[i]["face"] = face.to_dict()

    def store_faces(
        self, gallery: Gallery, subject_id: int, faces: list[NewFace], embeddings: np.ndarray
    ) -> list[int]:
        """Commit, then index, under the gallery's write lock (blocking: runs in a worker thread)."""
        repo = self.galleries.repo
        with self.galleries.indexes.writing(gallery) as index:
            try:
                face_ids = repo.add_faces(gallery, subject_id, faces)  # committed here
            except MissingError:
                raise NotFound(
                    f"subject {subject_id} was deleted while its faces were being enrolled",
                    code="subject_not_found",
                ) from None
            index.add(
                np.asarray(face_ids, np.int64), np.full(len(face_ids), subject_id, np.int64), embeddings
            )
        return face_ids

    def _store_named(
        self, gallery: Gallery, name: str, faces: list[NewFace], embeddings: np.ndarray
    ) -> tuple[Subject, list[int]]:
        repo = self.galleries.repo
        with self.galleries.indexes.writing(gallery) as index:
            try:
                subject, _, face_ids = repo.add_faces_named(gallery, name, faces)
            except MissingError as exc:
                raise NotFound(str(exc), code="gallery_not_found") from None
            index.add(
                np.asarray(face_ids, np.int64), np.full(len(face_ids), subject.id, np.int64), embeddings
            )
        return subject, face_ids

    async def enroll(
        self, gallery: Gallery, subject: Subject, images: list[ImageInput], force: bool = False
    ) -> list[dict[str, Any]]:
        """One result per image, in order: ``{"index", "name", "face_id", "face"}`` or ``{..., "error"}``.

        NotFound (subject_not_found) when the subject is deleted while its faces are being stored.
        """
        results, accepted, new_faces, embeddings = await self._prepare(gallery, images, subject, force)
        if accepted:
            face_ids = await asyncio.to_thread(self.store_faces, gallery, subject.id, new_faces, embeddings)
            self._fill(results, accepted, face_ids)
        return results

    async def enroll_by_name(
        self, gallery: Gallery, name: str, images: list[ImageInput], force: bool = False
    ) -> tuple[Subject | None, list[dict[str, Any]]]:
        """Enroll into the subject named ``name``, created with its first faces (in one transaction).

        Returns the subject (None when no image was accepted and no such subject exists) and the results.
        No image accepted: nothing is created, so no empty subject is ever left behind.
        """
        results, accepted, new_faces, embeddings = await self._prepare(gallery, images, name, force)
        if not accepted:
            existing = await asyncio.to_thread(self.galleries.repo.get_subject_by_name, gallery.id, name)
            return existing, results
        subject, face_ids = await asyncio.to_thread(self._store_named, gallery, name, new_faces, embeddings)
        self._fill(results, accepted, face_ids)
        return subject, results
