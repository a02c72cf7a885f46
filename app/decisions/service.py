"""The trust layer between the recognition/enrollment services and the store: calibrated thresholds,
per-face decisions and quality, the enrollment policy, duplicates and negative examples.

The core services call in through ``trust_for(galleries)`` (one instance per ``GalleryService``) with a
few lines each; everything else lives here.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.calibration.estimate import threshold_for_size
from app.calibration.store import IdentifyRows, TrustStore
from app.decisions.decide import FaceInput, decide
from app.decisions.policy import GalleryPolicy, enroll_rejection, identify_floor, load_policy
from app.services.errors import InvalidRequest, NotFound
from app.store.models import Gallery, Subject
from models.quality import assess

SUBJECT_COUNT_TTL_S = 5.0
PROBE_MEMORY = 10_000  # recent /identify faces kept (embedding only) so a client can say "not this person"


@dataclass
class Plan:
    """How one /identify request decides: the threshold, where it came from, the policy."""

    threshold: float
    source: str  # request | calibration | pack
    policy: GalleryPolicy
    calibration: dict[str, Any] | None = None
    subjects_now: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"threshold_source": self.source}
        if self.calibration is not None:
            growth = self.calibration.get("growth") or {}
            limit = growth.get("recalibrate_above_subjects")
            body["calibration"] = {
                "target_fpir": self.calibration.get("target_fpir"),
                "calibrated_threshold": self.calibration.get("threshold"),
                "calibrated_subjects": self.calibration.get("gallery_subjects"),
                "subjects_now": self.subjects_now,
                "recalibrate": bool(limit and self.subjects_now > limit),
            }
        if self.notes:
            body["notes"] = self.notes
        return body


class TrustService:
    def __init__(self, galleries) -> None:
        self.galleries = galleries
        self.store = TrustStore(galleries.repo)
        self._probes: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()
        self._counts: dict[int, tuple[float, int]] = {}

    # policy and calibration
    def policy(self, gallery: Gallery) -> GalleryPolicy:
        row = self.store.get(gallery.id)
        return load_policy(row.policy if row else None)

    def set_policy(self, gallery: Gallery, policy: GalleryPolicy) -> GalleryPolicy:
        self.store.set_policy(gallery.id, policy.model_dump())
        return policy

    def calibration(self, gallery: Gallery) -> dict[str, Any] | None:
        row = self.store.get(gallery.id)
        return row.calibration if row else None

    def describe(self, gallery: Gallery, subjects: int) -> dict[str, Any]:
        """What ``GET /galleries/{g}`` shows: the stored calibration (with the threshold in force now)
        and the policy."""
        row = self.store.get(gallery.id)
        cal = row.calibration if row else None
        body: dict[str, Any] = {"policy": load_policy(row.policy if row else None).model_dump()}
        if cal is None:
            body["calibration"] = None
            return body
        limit = (cal.get("growth") or {}).get("recalibrate_above_subjects")
        body["calibration"] = cal | {
            "threshold_now": round(threshold_for_size(cal, max(subjects, 1)), 4),
            "subjects_now": subjects,
            "recalibrate": bool(limit and subjects > limit),
            "applies": self._applies(gallery, cal),
        }
        return body

    @staticmethod
    def _applies(gallery: Gallery, cal: dict[str, Any]) -> bool:
        pack = cal.get("pack") or {}
        return pack.get("name") == gallery.pack_name and pack.get("version") == gallery.pack_version

    def subjects_now(self, gallery: Gallery, index=None) -> int:
        """Subjects in the gallery's index; a large gallery's count (it walks the whole index) is reused
        for SUBJECT_COUNT_TTL_S seconds (a few new subjects move its threshold negligibly)."""
        now = time.monotonic()
        cached = self._counts.get(gallery.id)
        if cached is not None and cached[1] >= 10_000 and now - cached[0] < SUBJECT_COUNT_TTL_S:
            return cached[1]
        count = int((index or self.galleries.indexes.get(gallery)).subjects)
        self._counts[gallery.id] = (now, count)
        return count

    def identify_rows(self, gallery: Gallery, subject_ids: list[int]) -> IdentifyRows:
        """Names, trust row and negatives for one ``/identify`` answer, in one cheap read (issue 17)."""
        return self.store.identify_rows(gallery.id, subject_ids)

    def plan(
        self, gallery: Gallery, engine, requested: float | None, index=None, rows: IdentifyRows | None = None
    ) -> Plan:
        """The threshold (request > calibration moved to the current size > pack) and the policy
        (``rows``: the trust row already read with ``identify_rows``; else it is read here)."""
        row = rows.trust if rows is not None else self.store.get(gallery.id)
        policy = load_policy(row.policy if row else None)
        cal = row.calibration if row else None
        if cal is None or not self._applies(gallery, cal):
            if requested is not None:
                return Plan(float(requested), "request", policy)
            notes = ["the gallery's calibration is for another pack version; recalibrate"] if cal else []
            return Plan(float(engine.threshold), "pack", policy, None, 0, notes)
        subjects = self.subjects_now(gallery, index)
        if requested is not None:
            return Plan(float(requested), "request", policy, cal, subjects)
        t = threshold_for_size(cal, max(subjects, 1))
        return Plan(round(t, 4), "calibration", policy, cal, subjects)

    def verify_threshold(self, gallery: Gallery) -> float | None:
        cal = self.calibration(gallery)
        if cal is None or not self._applies(gallery, cal):
            return None
        return float(cal["verify"]["threshold"]) if cal.get("verify") else None

    # identify
    def decide_faces(
        self, gallery: Gallery, plan: Plan, analysis, embeddings: np.ndarray, faces: list[dict[str, Any]],
        rows: IdentifyRows,
    ) -> list[dict[str, Any]]:
        """Add ``quality``, ``decision`` (with its numbers), ``probe_id`` to each face; set ``match``
        (``rows``: the negatives read with ``identify_rows`` for every candidate's subject)."""
        qualities = getattr(analysis, "qualities", None) or [
            assess(f, crop) for f, crop in zip(analysis.faces, analysis.crops, strict=True)
        ]
        inputs = [
            FaceInput(face["candidates"], emb, identify_floor(q, plan.policy.identify))
            for face, emb, q in zip(faces, embeddings, qualities, strict=True)
        ]
        negatives = rows.negatives
        decisions = decide(inputs, plan.threshold, plan.policy.ambiguity_margin, negatives)
        out = []
        for face, q, emb, d in zip(faces, qualities, embeddings, decisions, strict=True):
            details = {k: v for k, v in d.items() if k not in ("decision", "match")}
            out.append(
                face
                | {
                    "match": d["match"],
                    "decision": d["decision"],
                    "decision_details": details,
                    "quality": q.to_dict(),
                    "probe_id": self._remember(gallery.id, emb),
                }
            )
        return out

    def _remember(self, gallery_id: int, embedding: np.ndarray) -> str:
        token = secrets.token_urlsafe(9)
        self._probes[token] = (gallery_id, np.asarray(embedding, np.float32).copy())
        while len(self._probes) > PROBE_MEMORY:
            self._probes.popitem(last=False)
        return token

    # enrollment
    def enroll_check(self, policy: GalleryPolicy, face, crop: np.ndarray, force: bool):
        """(quality dict, rejection or None) for one face about to be enrolled."""
        q = assess(face, crop)
        refused = None if force else enroll_rejection(q, policy.enroll)
        return q.to_dict(), refused

    def duplicates(
        self, gallery: Gallery, own_id: int | None, embeddings: np.ndarray, threshold: float
    ) -> list[dict[str, Any] | None]:
        """Per embedding: the best *other* subject at or above ``threshold`` (a possible duplicate)."""
        index = self.galleries.indexes.get(gallery)
        if index.size == 0 or not len(embeddings):
            return [None] * len(embeddings)
        rows = index.search(np.asarray(embeddings, np.float32), 2)
        ids = sorted({h.subject_id for row in rows for h in row if h.subject_id != own_id})
        names = self.galleries.repo.subject_names(ids)
        out: list[dict[str, Any] | None] = []
        for row in rows:
            other = next((h for h in row if h.subject_id != own_id and h.subject_id in names), None)
            if other is None or other.similarity < threshold:
                out.append(None)
            else:
                out.append(
                    {
                        "subject_id": other.subject_id,
                        "name": names[other.subject_id],
                        "similarity": round(other.similarity, 4),
                        "face_id": other.face_id,
                    }
                )
        return out

    async def screen_enrollment(
        self,
        gallery: Gallery,
        subject: Subject | str | None,
        engine,
        accepted: list,
        results: list,
        force: bool,
        embedded: dict[int, np.ndarray] | None = None,
    ) -> tuple[list, np.ndarray]:
        """Quality policy and duplicates for faces about to be enrolled: adds ``quality`` and
        ``possible_duplicate`` to ``results``, moves refused ones to ``error``; returns the kept faces
        and their embeddings. ``accepted`` holds (image index, face, crop) as the enrollment builds them;
        ``embedded``: embeddings already made (by image index), else the crops are embedded here."""
        policy = await asyncio.to_thread(self.policy, gallery)
        kept = []
        for item in accepted:
            quality, refused = self.enroll_check(policy, item[1], item[2], force)
            results[item[0]]["quality"] = quality
            if refused:
                results[item[0]]["error"] = refused
            else:
                kept.append(item)
        if not kept:
            return [], np.zeros((0, engine.embedding_size), np.float32)
        if embedded and all(item[0] in embedded for item in kept):
            embeddings = np.stack([embedded[item[0]] for item in kept]).astype(np.float32, copy=False)
        else:
            embeddings = await engine.embed(np.stack([item[2] for item in kept]))
        if policy.duplicates == "off":
            return kept, embeddings
        plan = await asyncio.to_thread(self.plan, gallery, engine, None)
        if isinstance(subject, str):  # enroll by name: the subject may not exist yet
            found = await asyncio.to_thread(self.galleries.repo.get_subject_by_name, gallery.id, subject)
            own_id = found.id if found else None
        else:
            own_id = subject.id if subject is not None else None
        dups = await asyncio.to_thread(self.duplicates, gallery, own_id, embeddings, plan.threshold)
        keep = np.ones(len(kept), bool)
        for k, (item, dup) in enumerate(zip(kept, dups, strict=True)):
            if dup is None:
                continue
            results[item[0]]["possible_duplicate"] = dup
            if policy.duplicates == "strict" and not force:
                keep[k] = False
                results[item[0]]["error"] = {
                    "code": "duplicate",
                    "message": f"this face matches subject {dup['name']!r} (similarity {dup['similarity']}); "
                    "the gallery's duplicate policy is strict: send force=true to enroll anyway",
                    "possible_duplicate": dup,
                }
        return [item for item, k in zip(kept, keep, strict=True) if k], embeddings[keep]

    # negatives
    def negative_json(self, row) -> dict[str, Any]:
        from app.store.models import iso

        return {
            "id": row.id,
            "subject_id": row.subject_id,
            "source": row.source,
            "face_id": row.face_id,
            "created_at": iso(row.created_at),
        }

    def add_negative_embedding(
        self,
        gallery: Gallery,
        subject: Subject,
        embedding: np.ndarray,
        source: str | None,
        face_id: int | None = None,
    ) -> dict[str, Any]:
        row = self.store.add_negative(gallery.id, subject.id, embedding, source, face_id)
        return self.negative_json(row)

    def probe_embedding(self, gallery: Gallery, probe_id: str) -> np.ndarray:
        found = self._probes.get(probe_id)
        if found is None or found[0] != gallery.id:
            raise NotFound(
                f"probe {probe_id!r} is not known here (probes are kept for the last {PROBE_MEMORY} faces of "
                "this server process); send the image instead",
                code="probe_not_found",
            )
        return found[1]

    def face_embedding(self, gallery: Gallery, subject: Subject, face_id: int) -> np.ndarray:
        """The stored embedding of an enrolled face, which must belong to another subject."""
        chunks = list(self.galleries.repo.iter_embeddings(gallery.id, face_ids=[face_id]))
        if not chunks or not len(chunks[0][0]):
            raise NotFound.of("face", face_id)
        if int(chunks[0][1][0]) == subject.id:
            raise InvalidRequest(
                "a face of the subject itself cannot be its negative", code="invalid_request"
            )
        return chunks[0][2][0]


def trust_for(galleries) -> TrustService:
    """The trust layer bound to a ``GalleryService`` (created on first use)."""
    found = getattr(galleries, "_trust_service", None)
    if found is None:
        found = TrustService(galleries)
        galleries._trust_service = found
    return found
