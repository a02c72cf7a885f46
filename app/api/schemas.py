"""JSON bodies of the management routes and the JSON forms of stored records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.store.models import FaceRecord, Subject, iso

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class GalleryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, _ . - (128 at most)")
    pack: str | None = Field(default=None, description="a loaded model pack; default: the server's default")
    index: Literal["flat", "ivf", "hnsw"] | None = Field(default=None, description="FAISS index kind")
    keep_crops: bool = Field(
        default=True, description="keep each face's aligned crop (needed to migrate to another pack)"
    )


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SubjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, Any] | None = None


class EnrollParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(default=None, min_length=1, max_length=256)


def subject_json(subject: Subject, faces: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": subject.id,
        "name": subject.name,
        "metadata": subject.meta or {},
        "created_at": iso(subject.created_at),
        "updated_at": iso(subject.updated_at),
    }
    if faces is not None:
        body["faces"] = faces
    return body


def face_json(face: FaceRecord) -> dict[str, Any]:
    return {
        "id": face.id,
        "subject_id": face.subject_id,
        "box": face.box,
        "landmarks": face.landmarks,
        "score": face.det_score,
        "source": face.source,
        "pack": {"name": face.pack_name, "version": face.pack_version},
        "created_at": iso(face.created_at),
    }
