"""Per-face decisions of one /identify answer: ``match``, ``unknown``, ``ambiguous`` or ``low_quality``.

Pure functions over what the search returned, so the rules are testable without a server:

1. A face below the gallery's quality floor is ``low_quality`` and not matched.
2. A candidate is *eligible* when its similarity is at or above the threshold and the probe is not at
   least as close to one of that subject's negative examples ("not this person") as to the subject.
3. One person per face per image: eligible (face, subject) pairs are assigned greedily, best similarity
   first; each subject goes to one face, a face whose best subject went to a better face takes its
   next eligible candidate, or becomes ``unknown``.
4. A face whose assigned subject has a runner-up within ``margin`` (a runner-up neither taken by another
   face of the photo nor vetoed) is ``ambiguous``; so is a face whose only candidates above the
   threshold were vetoed by negatives.
``match`` (the field existing clients read) is the chosen candidate for ``decision == "match"``, else null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FaceInput:
    """One face: its candidates (best first, as the search returned them), embedding and floor verdict."""

    candidates: list[dict[str, Any]]  # subject_id, name, similarity, face_id
    embedding: np.ndarray
    below_floor: str | None = None  # reason, when the face is under the quality floor


def negative_veto(
    embedding: np.ndarray, candidate: dict[str, Any], negatives: dict[int, np.ndarray]
) -> float | None:
    """The probe's similarity to the closest negative of the candidate's subject when that is at least
    the similarity to the subject itself (the candidate is vetoed), else None."""
    found = negatives.get(int(candidate["subject_id"]))
    if found is None or not len(found):
        return None
    closest = float(np.max(found @ embedding))
    return round(closest, 4) if closest >= candidate["similarity"] else None


def decide(
    faces: list[FaceInput], threshold: float, margin: float, negatives: dict[int, np.ndarray]
) -> list[dict[str, Any]]:
    """One ``{"decision", "match", "reason", ...}`` per face, in order (see the module docstring)."""
    eligible: list[list[dict[str, Any]]] = []
    vetoes: list[dict[int, float]] = []
    for face in faces:
        vetoed: dict[int, float] = {}
        keep = []
        if face.below_floor is None:
            for c in face.candidates:
                if c["similarity"] < threshold:
                    continue
                veto = negative_veto(face.embedding, c, negatives)
                if veto is not None:
                    vetoed[int(c["subject_id"])] = veto
                else:
                    keep.append(c)
        eligible.append(keep)
        vetoes.append(vetoed)

    pairs = sorted(
        ((c["similarity"], i, rank, c) for i, keep in enumerate(eligible) for rank, c in enumerate(keep)),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    assigned: dict[int, dict[str, Any]] = {}
    owner: dict[int, int] = {}  # subject id → face index
    for _, i, _, c in pairs:
        sid = int(c["subject_id"])
        if i in assigned or sid in owner:
            continue
        assigned[i] = c
        owner[sid] = i

    out = []
    for i, face in enumerate(faces):
        top = face.candidates[0] if face.candidates else None
        base = {"threshold": round(threshold, 4), "top_similarity": top["similarity"] if top else None}
        if face.below_floor is not None:
            out.append(base | {"decision": "low_quality", "match": None, "reason": face.below_floor})
            continue
        chosen = assigned.get(i)
        if chosen is None:
            out.append(base | _why_not(i, face, vetoes[i], owner, threshold))
            continue
        sid = int(chosen["subject_id"])
        runner = next(
            (
                c
                for c in face.candidates
                if int(c["subject_id"]) != sid
                and int(c["subject_id"]) not in vetoes[i]
                and owner.get(int(c["subject_id"]), i) == i
            ),
            None,
        )
        gap = round(chosen["similarity"] - runner["similarity"], 4) if runner else None
        extra: dict[str, Any] = {"margin": gap}
        if top is not None and int(top["subject_id"]) != sid:
            extra["reassigned_from"] = {
                "subject_id": top["subject_id"],
                "reason": _lost_because(int(top["subject_id"]), vetoes[i], owner),
            }
        if runner is not None and gap is not None and gap < margin:
            out.append(
                base
                | extra
                | {
                    "decision": "ambiguous",
                    "match": None,
                    "reason": f"{runner['name']!r} is within {margin:g} of {chosen['name']!r}",
                    "second": {"subject_id": runner["subject_id"], "similarity": runner["similarity"]},
                }
            )
            continue
        out.append(base | extra | {"decision": "match", "match": chosen, "reason": "above threshold"})
    return out


def _lost_because(subject_id: int, vetoed: dict[int, float], owner: dict[int, int]) -> str:
    if subject_id in vetoed:
        return "negative"
    if subject_id in owner:
        return f"face {owner[subject_id]} of this photo"
    return "below threshold"


def _why_not(
    i: int, face: FaceInput, vetoed: dict[int, float], owner: dict[int, int], threshold: float
) -> dict[str, Any]:
    top = face.candidates[0] if face.candidates else None
    if top is None or top["similarity"] < threshold:
        return {"decision": "unknown", "match": None, "reason": "no subject reaches the threshold"}
    sid = int(top["subject_id"])
    if sid in vetoed:
        return {
            "decision": "ambiguous",
            "match": None,
            "reason": f"close to a negative example of {top['name']!r}",
            "negative_similarity": vetoed[sid],
        }
    return {
        "decision": "unknown",
        "match": None,
        "reason": f"{top['name']!r} went to face {owner.get(sid)} of this photo, which matches it better",
        "assigned_to_face": owner.get(sid),
    }
