"""Detect, verify (1:1) and identify (1:N) on uploaded images."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from app.decisions.service import trust_for
from app.gallery_migration.consistency import PackSwitched, index_for_pack
from app.services.engines import Analysis, Engine, Engines
from app.services.errors import Conflict
from app.services.galleries import GalleryService
from app.services.offload import search_inline
from app.settings import Settings
from app.store.models import Gallery
from models.pipeline import select_face


def face_json(analysis: Analysis, index: int) -> dict[str, Any]:
    return {**analysis.faces[index].to_dict(), "index": index, "faces_found": len(analysis.faces)}


def pick(analysis: Analysis, index: int | None) -> int:
    """Index of the requested face, or of the largest; NoFaceError (no_face) when there is none."""
    face = select_face(analysis.faces, index)
    return next(i for i, f in enumerate(analysis.faces) if f is face)


class RecognitionService:
    def __init__(self, engines: Engines, galleries: GalleryService, settings: Settings) -> None:
        self.engines = engines
        self.galleries = galleries
        self.settings = settings

    async def detect(self, data: bytes, max_faces: int | None) -> dict[str, Any]:
        engine = self.engines.get()
        analysis = await engine.analyse(data, max_faces)
        return {
            "faces": [f.to_dict() for f in analysis.faces],
            "image": {"width": analysis.image_size[0], "height": analysis.image_size[1]},
            "pack": {"name": engine.name, "version": engine.version},
        }

    async def verify_pair(
        self, data1: bytes, data2: bytes, face1: int | None, face2: int | None, threshold: float | None
    ) -> dict[str, Any]:
        engine = self.engines.get()
        a1, a2 = await asyncio.gather(engine.analyse(data1), engine.analyse(data2))
        i1, i2 = pick(a1, face1), pick(a2, face2)
        emb = await engine.embed(np.stack([a1.crops[i1], a2.crops[i2]]))
        similarity = float(np.dot(emb[0], emb[1]))
        return self._verdict(engine, similarity, threshold) | {
            "face1": face_json(a1, i1),
            "face2": face_json(a2, i2),
        }

    async def verify_subject(
        self, data: bytes, gallery: Gallery, subject_ref: str, face: int | None, threshold: float | None
    ) -> dict[str, Any]:
        engine = self.galleries.engine_for(gallery)
        subject = await asyncio.to_thread(self.galleries.get_subject, gallery, subject_ref)
        analysis = await engine.analyse(data)
        index = pick(analysis, face)
        embedding = (await engine.embed(analysis.crops[index : index + 1]))[0]
        stored = await asyncio.to_thread(
            lambda: list(self.galleries.repo.iter_embeddings(gallery.id, subject_id=subject.id))
        )
        if not stored:
            raise Conflict(f"subject {subject.name!r} has no enrolled face", code="subject_has_no_faces")
        face_ids = np.concatenate([ids for ids, _, _ in stored])
        vectors = np.concatenate([vecs for _, _, vecs in stored])
        sims = vectors @ embedding
        best = int(np.argmax(sims))
        if threshold is None:  # issue 11: the gallery's calibrated 1:1 threshold, when it has one
            threshold = await asyncio.to_thread(trust_for(self.galleries).verify_threshold, gallery)
        return self._verdict(engine, float(sims[best]), threshold) | {
            "face1": face_json(analysis, index),
            "subject": {"id": subject.id, "name": subject.name, "face_id": int(face_ids[best])},
        }

    async def identify(
        self, data: bytes, gallery: Gallery, top_k: int, threshold: float | None, max_faces: int | None
    ) -> dict[str, Any]:
        try:
            return await self._identify(data, gallery, top_k, threshold, max_faces)
        except PackSwitched as switched:  # issue 13: migrated meanwhile; embed again with the new pack
            return await self._identify(data, switched.gallery, top_k, threshold, max_faces)

    async def _identify(
        self, data: bytes, gallery: Gallery, top_k: int, threshold: float | None, max_faces: int | None
    ) -> dict[str, Any]:
        engine = self.galleries.engine_for(gallery)
        analysis = await engine.analyse(data, max_faces, embed=True)  # every face is searched
        embeddings = analysis.embeddings
        if embeddings is None:
            embeddings = await engine.embed(analysis.crops)
        trust = trust_for(self.galleries)  # issue 11: calibrated threshold, decisions, quality

        def finish() -> tuple[list[dict[str, Any]], Any]:  # search and store reads: one thread hop at most
            index = index_for_pack(self.galleries, gallery)  # holds the pack that embedded the probes
            hits = index.search(embeddings, top_k) if len(embeddings) else []
            rows = trust.identify_rows(gallery, sorted({h.subject_id for row in hits for h in row}))
            names = rows.names
            plan = trust.plan(gallery, engine, threshold, index, rows)
            faces = []
            for face, row in zip(analysis.faces, hits, strict=True):
                candidates = [
                    {
                        "subject_id": h.subject_id,
                        "name": names.get(h.subject_id),
                        "similarity": round(h.similarity, 4),
                        "face_id": h.face_id,
                    }
                    for h in row
                    if h.subject_id in names  # deleted between search and lookup
                ]
                best = candidates[0] if candidates else None
                match = best if best is not None and best["similarity"] >= plan.threshold else None
                faces.append(face.to_dict() | {"candidates": candidates, "match": match})
            return trust.decide_faces(gallery, plan, analysis, embeddings, faces, rows), plan

        if search_inline(self.galleries.repo, self.galleries.indexes.peek(gallery.id), gallery):
            faces, plan = finish()
        else:
            faces, plan = await asyncio.to_thread(finish)
        cut = plan.threshold
        return {"faces": faces, "threshold": cut, "gallery": gallery.name} | plan.to_json()

    @staticmethod
    def _verdict(engine: Engine, similarity: float, threshold: float | None) -> dict[str, Any]:
        cut = engine.threshold if threshold is None else threshold
        return {"similarity": round(similarity, 4), "threshold": cut, "match": similarity >= cut}
