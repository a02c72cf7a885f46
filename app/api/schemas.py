"""JSON bodies of the management routes and the JSON forms of stored records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.decisions.policy import GalleryPolicy  # issue 11
from app.decisions.schemas import (  # issue 11
    CalibrationSummary,
    DecisionDetails,
    DuplicateOut,
    GalleryCalibrationOut,
    QualityOut,
)
from app.store.models import FaceRecord, Subject, iso

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"


class GalleryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, _ . - (128 at most)")
    pack: str | None = Field(default=None, description="a loaded model pack; default: the server's default")
    index: Literal["flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw", "auto"] | None = Field(
        default=None, description="index kind (docs/search.md); auto: exact, then IVF-SQ8/PQ by size, memory"
    )
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
    force: bool = Field(default=False, description="enroll despite the gallery's quality/duplicate policy")


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


# Response bodies. Typed so that /openapi.json declares what the server really sends (schema checks fail
# on a wrong body); ``extra="allow"`` where other features add fields (trust decisions, crops, migration).


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Open):
    code: str = Field(description="stable machine-readable code, e.g. gallery_not_found")
    message: str = Field(description="what went wrong, for people")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer (422 included)."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``packs`` and ``problems`` only with an API key (or with auth off)."""

    status: Literal["ready", "not_ready"]
    packs: list[dict[str, Any]] | None = None
    problems: list[str] | None = None


class PackRef(BaseModel):
    name: str
    version: str


class FaceBox(_Open):
    box: list[float] = Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")
    landmarks: list[list[float]] = Field(description="5 × [x, y]: eyes, nose, mouth corners")
    score: float


class ImageSize(BaseModel):
    width: int
    height: int


class Detected(_Open):
    faces: list[FaceBox]
    image: ImageSize
    pack: PackRef


class FaceInImage(FaceBox):
    index: int = Field(description="position of the face in the image's detections")
    faces_found: int


class SubjectFace(_Open):
    id: int
    name: str
    face_id: int


class Verified(_Open):
    similarity: float
    threshold: float
    match: bool
    face1: FaceInImage
    face2: FaceInImage | None = None
    subject: SubjectFace | None = None


class Candidate(_Open):
    subject_id: int
    name: str | None
    similarity: float
    face_id: int


class IdentifiedFace(FaceBox):
    candidates: list[Candidate]
    match: Candidate | None
    # issue 11: the decision behind ``match`` and the face's quality
    decision: Literal["match", "unknown", "ambiguous", "low_quality"] | None = None
    decision_details: DecisionDetails | None = None
    quality: QualityOut | None = None
    probe_id: str | None = Field(default=None, description="POST .../negatives {probe_id}: not this person")


class Identified(_Open):
    faces: list[IdentifiedFace]
    threshold: float
    gallery: str
    threshold_source: Literal["request", "calibration", "pack"] | None = None  # issue 11
    calibration: CalibrationSummary | None = None


class IndexInfo(_Open):
    kind: str
    faces: int


class GalleryOut(_Open):
    name: str
    pack: PackRef
    embedding_size: int
    index: IndexInfo
    subjects: int
    faces: int
    created_at: str | None
    calibration: GalleryCalibrationOut | None = None  # issue 11
    policy: GalleryPolicy | None = None


class GalleryList(BaseModel):
    galleries: list[GalleryOut]


class DeletedName(BaseModel):
    deleted: str


class DeletedId(BaseModel):
    deleted: int


class SubjectOut(_Open):
    id: int
    name: str
    metadata: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    faces: int | None = None


class SubjectPage(BaseModel):
    subjects: list[SubjectOut]
    total: int
    next_after: int | None


class FaceOut(_Open):
    id: int
    subject_id: int
    box: list[float] | None
    landmarks: list[list[float]] | None
    score: float | None
    source: str | None
    pack: PackRef
    created_at: str | None


class FacePage(BaseModel):
    faces: list[FaceOut]
    next_after: int | None


class EnrollResult(_Open):
    index: int
    name: str | None
    face_id: int | None = None
    face: FaceBox | None = None
    error: ErrorDetail | None = None
    quality: QualityOut | None = None  # issue 11
    possible_duplicate: DuplicateOut | None = None


class SubjectRef(_Open):
    id: int
    name: str


class Enrolled(_Open):
    """201: at least one image enrolled (the others carry an ``error``)."""

    subject: SubjectRef
    enrolled: int
    rejected: int
    results: list[EnrollResult]


class KeyOut(_Open):
    id: int
    name: str
    prefix: str
    admin: bool
    active: bool
    created_at: str | None
    revoked_at: str | None


class KeyList(BaseModel):
    keys: list[KeyOut]


class KeyCreated(BaseModel):
    key: KeyOut
    token: str = Field(description="the secret, shown in this answer only")


class KeyRevoked(BaseModel):
    revoked: int
    key: KeyOut


class WhoAmI(BaseModel):
    auth: bool
    admin: bool
    name: str | None
    prefix: str | None
