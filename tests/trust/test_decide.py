"""Per-face decisions of /identify as pure rules: threshold, one person per face, margin, negatives."""

from __future__ import annotations

import numpy as np

from app.decisions.decide import FaceInput, decide


def cand(subject: int, sim: float) -> dict:
    return {"subject_id": subject, "name": f"s{subject}", "similarity": sim, "face_id": subject * 10}


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


E = unit([1, 0, 0])


def test_threshold_and_match_field() -> None:
    out = decide([FaceInput([cand(1, 0.6), cand(2, 0.2)], E), FaceInput([cand(1, 0.3)], E)], 0.4, 0.03, {})
    assert out[0]["decision"] == "match" and out[0]["match"]["subject_id"] == 1
    assert out[0]["margin"] == 0.4
    assert out[1]["decision"] == "unknown" and out[1]["match"] is None


def test_one_person_per_face_the_better_face_keeps_the_subject() -> None:
    faces = [
        FaceInput([cand(1, 0.55), cand(2, 0.50)], E),  # weaker claim on 1, falls back to 2
        FaceInput([cand(1, 0.80), cand(3, 0.10)], E),
        FaceInput([cand(1, 0.60), cand(4, 0.30)], E),  # 1 taken, no other eligible → unknown
    ]
    out = decide(faces, 0.45, 0.03, {})
    assert out[1]["decision"] == "match" and out[1]["match"]["subject_id"] == 1
    assert out[0]["decision"] == "match" and out[0]["match"]["subject_id"] == 2
    assert out[0]["reassigned_from"]["subject_id"] == 1
    assert out[2]["decision"] == "unknown" and out[2]["assigned_to_face"] == 1
    matched = [o["match"]["subject_id"] for o in out if o["match"]]
    assert len(matched) == len(set(matched))


def test_runner_up_within_margin_is_ambiguous_unless_taken_by_another_face() -> None:
    out = decide([FaceInput([cand(1, 0.62), cand(2, 0.60)], E)], 0.4, 0.03, {})
    assert out[0]["decision"] == "ambiguous" and out[0]["match"] is None
    assert out[0]["second"] == {"subject_id": 2, "similarity": 0.60}
    # subject 2 is clearly the other face's: no ambiguity left for face 0
    out = decide([FaceInput([cand(1, 0.62), cand(2, 0.60)], E), FaceInput([cand(2, 0.9)], E)], 0.4, 0.03, {})
    assert out[0]["decision"] == "match" and out[0]["match"]["subject_id"] == 1


def test_probe_closer_to_a_negative_than_to_the_subject_is_not_matched_to_it() -> None:
    negatives = {1: np.stack([unit([0.9, 0.1, 0]), unit([0, 1, 0])])}
    out = decide([FaceInput([cand(1, 0.7), cand(2, 0.1)], E)], 0.4, 0.03, negatives)
    assert out[0]["decision"] == "ambiguous" and out[0]["match"] is None
    assert out[0]["negative_similarity"] > 0.7
    # a negative farther than the subject does not veto
    far = {1: np.stack([unit([0.2, 1, 0])])}
    assert decide([FaceInput([cand(1, 0.7)], E)], 0.4, 0.03, far)[0]["decision"] == "match"
    # a vetoed top subject lets the next eligible one match
    out = decide([FaceInput([cand(1, 0.7), cand(2, 0.5)], E)], 0.4, 0.03, negatives)
    assert out[0]["decision"] == "match" and out[0]["match"]["subject_id"] == 2
    assert out[0]["reassigned_from"]["reason"] == "negative"


def test_below_the_quality_floor_is_low_quality() -> None:
    out = decide([FaceInput([cand(1, 0.9)], E, below_floor="face of 10 px is below 16 px")], 0.4, 0.03, {})
    assert out[0]["decision"] == "low_quality" and out[0]["match"] is None
    assert "10 px" in out[0]["reason"]
