"""Response shapes (TypedDicts: the JSON as the server sends it, typed for editors and checkers)."""

from __future__ import annotations

from typing import Any, TypedDict


class Gallery(TypedDict, total=False):
    name: str
    pack: dict[str, str]  # {"name", "version"}
    embedding_size: int
    index: dict[str, Any]  # {"kind", "faiss", "faces"}
    subjects: int
    faces: int
    created_at: str


class Subject(TypedDict, total=False):
    id: int
    name: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    faces: int


class SubjectPage(TypedDict):
    subjects: list[Subject]
    total: int
    next_after: int | None


class Face(TypedDict, total=False):
    id: int
    subject_id: int
    box: list[float]
    landmarks: list[list[float]]
    score: float


class FacePage(TypedDict):
    faces: list[Face]
    next_after: int | None


class EnrollResult(TypedDict, total=False):
    subject: dict[str, Any]
    enrolled: int
    rejected: int
    results: list[dict[str, Any]]


class Detection(TypedDict, total=False):
    box: list[float]
    landmarks: list[list[float]]
    score: float


class IdentifiedFace(Detection, total=False):
    candidates: list[dict[str, Any]]
    match: dict[str, Any] | None


class IdentifyResult(TypedDict, total=False):
    faces: list[IdentifiedFace]
    threshold: float
    gallery: str


class DetectResult(TypedDict, total=False):
    faces: list[Detection]
    image: dict[str, int]
    pack: dict[str, str]


class VerifyResult(TypedDict, total=False):
    similarity: float
    threshold: float
    match: bool


class Key(TypedDict, total=False):
    id: int
    name: str
    prefix: str
    admin: bool
    created_at: str
    revoked_at: str | None


class CreatedKey(TypedDict):
    key: Key
    token: str
