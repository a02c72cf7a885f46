"""Galleries, subjects and faces: the store's writes and the index updates that go with them."""

from __future__ import annotations

from typing import Any

from app.crops.describe import lifecycle_description
from app.decisions.service import trust_for
from app.search.registry import IndexRegistry
from app.services.engines import Engines
from app.services.errors import Conflict, InvalidRequest, NotFound, Unavailable
from app.store.errors import MissingError
from app.store.models import Gallery, Subject, iso
from app.store.repository import DuplicateError, Repository

INDEX_KINDS = ("flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw", "auto")  # = search.factory.INDEX_KINDS


class GalleryService:
    """CRUD over the repository; every delete also leaves search at once (before the response)."""

    def __init__(
        self, repo: Repository, indexes: IndexRegistry, engines: Engines, default_index: str
    ) -> None:
        self.repo = repo
        self.indexes = indexes
        self.engines = engines
        self.default_index = default_index

    # galleries
    def create(
        self, name: str, pack: str | None = None, index: str | None = None, *, keep_crops: bool = True
    ) -> Gallery:
        kind = index or self.default_index
        if kind not in INDEX_KINDS:
            raise InvalidRequest(f"index must be one of {', '.join(INDEX_KINDS)}")
        try:
            engine = self.engines.get(pack)
        except Unavailable as exc:
            if pack is None:  # no default pack loaded here: the server's problem, retry elsewhere
                raise
            raise InvalidRequest(exc.message, code="unknown_pack") from None  # the client named it
        try:
            gallery = self.repo.create_gallery(
                name, engine.name, engine.version, engine.embedding_size, kind, keep_crops=keep_crops
            )
        except DuplicateError:
            raise Conflict(f"gallery {name!r} already exists", code="gallery_exists") from None
        self.indexes.get(gallery)
        return gallery

    def get(self, name: str) -> Gallery:
        gallery = self.repo.get_gallery(name)
        if gallery is None:
            raise NotFound.of("gallery", name)
        return gallery

    def get_or_create(self, name: str, pack: str | None = None) -> tuple[Gallery, bool]:
        gallery = self.repo.get_gallery(name)
        if gallery is not None:
            return gallery, False
        try:
            return self.create(name, pack), True
        except Conflict as exc:
            if exc.code != "gallery_exists":
                raise
            return self.get(name), False

    def list(self) -> list[Gallery]:
        return self.repo.list_galleries()

    def describe(self, gallery: Gallery) -> dict[str, Any]:
        subjects, faces = self.repo.gallery_counts(gallery.id)
        index = self.indexes.get(gallery)
        return {
            "name": gallery.name,
            "pack": {"name": gallery.pack_name, "version": gallery.pack_version},
            "embedding_size": gallery.embedding_size,
            "index": {"kind": gallery.index_kind, "faiss": index.describe(), "faces": index.size},
            "subjects": subjects,
            "faces": faces,
            "created_at": iso(gallery.created_at),
            **lifecycle_description(self.repo.engine, gallery),  # crops and migration (issue 13)
            **trust_for(self).describe(gallery, subjects),  # calibration and policy (issue 11)
        }

    def delete(self, name: str) -> None:
        gallery = self.get(name)
        with self.indexes.gallery_lock(gallery.id):  # store first, then the index, as one step
            self.repo.delete_gallery(gallery.id)
            self.indexes.drop(gallery.id)

    # subjects
    def create_subject(self, gallery: Gallery, name: str, meta: dict[str, Any] | None) -> Subject:
        try:
            return self.repo.create_subject(gallery.id, name, meta)
        except MissingError:
            raise NotFound.of("gallery", gallery.name) from None
        except DuplicateError:
            raise Conflict(
                f"subject {name!r} already exists in {gallery.name!r}", code="subject_exists"
            ) from None

    def get_subject(self, gallery: Gallery, ref: str | int) -> Subject:
        """A subject by id (an integer) or by name (anything else)."""
        subject = None
        text = str(ref).strip()
        if text.isascii() and text.isdigit():
            if int(text) > self.repo.max_id("subjects"):  # beyond the column: cannot exist
                raise NotFound.of("subject", ref)
            subject = self.repo.get_subject(gallery.id, int(text))
        else:
            subject = self.repo.get_subject_by_name(gallery.id, text)
        if subject is None:
            raise NotFound.of("subject", ref)
        return subject

    def update_subject(
        self, gallery: Gallery, subject_id: int, name: str | None, meta: dict[str, Any] | None
    ) -> Subject:
        self.get_subject(gallery, subject_id)
        try:
            subject = self.repo.update_subject(gallery.id, subject_id, name, meta)
        except DuplicateError:
            raise Conflict(
                f"subject {name!r} already exists in {gallery.name!r}", code="subject_exists"
            ) from None
        if subject is None:  # deleted meanwhile
            raise NotFound.of("subject", subject_id)
        return subject

    def delete_subject(self, gallery: Gallery, subject_id: int) -> None:
        """Delete a subject and its faces; they leave this process's search before this returns."""
        with self.indexes.writing(gallery) as index:
            if not self.repo.delete_subject(gallery.id, subject_id):
                raise NotFound.of("subject", subject_id)
            index.remove_subject(subject_id)

    # faces
    def delete_face(self, gallery: Gallery, face_id: int) -> None:
        """Delete one face; it leaves this process's search before this returns."""
        with self.indexes.writing(gallery) as index:
            if self.repo.delete_face(gallery.id, face_id) is None:
                raise NotFound.of("face", face_id)
            index.remove([face_id])

    def engine_for(self, gallery: Gallery):
        """The loaded pack a gallery was built with (503 when not loaded, 409 when another version)."""
        return self.engines.get(gallery.pack_name, gallery.pack_version)
