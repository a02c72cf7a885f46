"""Subjects of a gallery: create, list (paginated), get, rename / change metadata, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import CtxDep
from app.api.schemas import (
    DeletedId,
    SubjectCreate,
    SubjectOut,
    SubjectPage,
    SubjectUpdate,
    subject_json,
)
from app.auth import AdminKey, AnyKey

router = APIRouter(prefix="/galleries/{gallery}/subjects", tags=["subjects"])


@router.post("", status_code=201, dependencies=[AdminKey], response_model=SubjectOut)
def create_subject(gallery: str, body: SubjectCreate, ctx: CtxDep) -> dict[str, Any]:
    subject = ctx.galleries.create_subject(ctx.galleries.get(gallery), body.name, body.metadata)
    return subject_json(subject, 0)


@router.get("", dependencies=[AnyKey], response_model=SubjectPage)
def list_subjects(
    gallery: str,
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, description="id of the last subject of the previous page")] = 0,
) -> dict[str, Any]:
    """A page of subjects ordered by id; pass ``next_after`` as ``after`` for the next page."""
    found = ctx.galleries.get(gallery)
    subjects, total = ctx.repo.list_subjects(found.id, limit, after)
    counts = ctx.repo.face_counts([s.id for s in subjects])
    return {
        "subjects": [subject_json(s, counts.get(s.id, 0)) for s in subjects],
        "total": total,
        "next_after": subjects[-1].id if len(subjects) == limit else None,
    }


@router.get("/{subject}", dependencies=[AnyKey], response_model=SubjectOut)
def get_subject(gallery: str, subject: str, ctx: CtxDep) -> dict[str, Any]:
    """A subject by id (digits) or name."""
    found = ctx.galleries.get_subject(ctx.galleries.get(gallery), subject)
    return subject_json(found, ctx.repo.face_counts([found.id]).get(found.id, 0))


@router.patch("/{subject}", dependencies=[AdminKey], response_model=SubjectOut)
def update_subject(gallery: str, subject: str, body: SubjectUpdate, ctx: CtxDep) -> dict[str, Any]:
    """Rename and/or replace the metadata."""
    owner = ctx.galleries.get(gallery)
    found = ctx.galleries.get_subject(owner, subject)
    updated = ctx.galleries.update_subject(owner, found.id, body.name, body.metadata)
    return subject_json(updated, ctx.repo.face_counts([found.id]).get(found.id, 0))


@router.delete("/{subject}", dependencies=[AdminKey], response_model=DeletedId)
def delete_subject(gallery: str, subject: str, ctx: CtxDep) -> dict[str, Any]:
    """Delete the subject and its faces; they leave search results before this returns."""
    owner = ctx.galleries.get(gallery)
    found = ctx.galleries.get_subject(owner, subject)
    ctx.galleries.delete_subject(owner, found.id)
    return {"deleted": found.id}
