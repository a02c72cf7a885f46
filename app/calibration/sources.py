"""Where calibration scores come from: the gallery itself (leave one subject out), impostor images of
people who are not in the gallery, and labelled probes.

Leave-one-subject-out turns every enrolled face into a non-mated probe against the rest of the gallery
(its own subject hidden), and every face of a subject with more than one face into a mated probe against
the gallery without that face. So a gallery calibrates on the user's own people with no extra data;
impostor folders add strangers that look like the real traffic.
"""

from __future__ import annotations

import numpy as np

from app.calibration.estimate import CalibrationInput

DEFAULT_MAX_PROBES = 5000


def _rows_per_chunk(gallery_faces: int, budget: int = 20_000_000) -> int:
    """Probe rows per matrix product so one probe × face block stays near ``budget`` floats (80 MB)."""
    return max(8, min(2048, budget // max(gallery_faces, 1)))


def _columns(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(labels, kind="stable")
    subjects, starts = np.unique(labels[order], return_index=True)
    return order, subjects, starts


def leave_one_subject_out(
    embeddings: np.ndarray, labels: np.ndarray, max_probes: int = DEFAULT_MAX_PROBES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-mated P × N scores with the probe's own subject as NaN, mated best scores, mated correct).

    Probes are the gallery's faces (at most ``max_probes``, drawn at random); a probe never scores
    against itself."""
    labels = np.asarray(labels)
    emb = np.asarray(embeddings, np.float32)
    order, subjects, starts = _columns(labels)
    g = emb[order]
    rng = np.random.default_rng(seed)
    picks = np.arange(len(emb))
    if len(picks) > max_probes:
        picks = np.sort(rng.choice(picks, max_probes, replace=False))
    position = np.empty(len(emb), int)
    position[order] = np.arange(len(emb))
    counts = np.diff(np.append(starts, len(emb)))
    non_mated, mated_best, mated_correct = [], [], []
    step = _rows_per_chunk(len(emb))
    for i in range(0, len(picks), step):
        rows = picks[i : i + step]
        sims = emb[rows] @ g.T
        sims[np.arange(len(rows)), position[rows]] = -np.inf  # never against itself
        per_subject = np.maximum.reduceat(sims, starts, axis=1)
        own = np.searchsorted(subjects, labels[rows])
        hidden = per_subject.copy()
        hidden[np.arange(len(rows)), own] = np.nan
        non_mated.append(hidden)
        has_other = counts[own] > 1
        best_col = np.argmax(per_subject[has_other], axis=1)
        mated_best.append(per_subject[has_other][np.arange(has_other.sum()), best_col])
        mated_correct.append(best_col == own[has_other])
    return (
        np.concatenate(non_mated) if non_mated else np.zeros((0, len(subjects)), np.float32),
        np.concatenate(mated_best) if mated_best else np.zeros(0, np.float32),
        np.concatenate(mated_correct) if mated_correct else np.zeros(0, bool),
    )


def probe_scores(
    embeddings: np.ndarray, labels: np.ndarray, probes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(P × N best score per gallery subject, the subject labels in column order)."""
    labels = np.asarray(labels)
    order, subjects, starts = _columns(labels)
    g = np.asarray(embeddings, np.float32)[order]
    step = _rows_per_chunk(len(g))
    out = [
        np.maximum.reduceat(np.asarray(probes[i : i + step], np.float32) @ g.T, starts, axis=1)
        for i in range(0, len(probes), step)
    ]
    return (np.concatenate(out) if out else np.zeros((0, len(subjects)), np.float32)), subjects


def build_input(
    embeddings: np.ndarray,
    labels: np.ndarray,
    impostors: np.ndarray | None = None,
    probes: np.ndarray | None = None,
    probe_labels: np.ndarray | None = None,
    use_gallery: bool = True,
    max_probes: int = DEFAULT_MAX_PROBES,
) -> tuple[CalibrationInput, dict]:
    """Calibration scores from the gallery (leave one subject out), impostors and labelled probes
    (a probe whose label is a gallery subject is mated, any other is non-mated); and the sample counts."""
    labels = np.asarray(labels)
    n = len(np.unique(labels))
    blocks, m_best, m_ok = [], [], []
    counts = {
        "gallery_non_mated": 0,
        "gallery_mated": 0,
        "impostors": 0,
        "probes_mated": 0,
        "probes_non_mated": 0,
    }
    if use_gallery and n > 1:
        nm, mb, mc = leave_one_subject_out(embeddings, labels, max_probes)
        blocks.append(nm)
        m_best.append(mb)
        m_ok.append(mc)
        counts["gallery_non_mated"], counts["gallery_mated"] = len(nm), len(mb)
    if impostors is not None and len(impostors):
        scores, _ = probe_scores(embeddings, labels, impostors)
        blocks.append(scores)
        counts["impostors"] = len(scores)
    if probes is not None and len(probes):
        scores, subjects = probe_scores(embeddings, labels, probes)
        plabels = np.asarray(probe_labels)
        mated = np.isin(plabels, subjects)
        blocks.append(scores[~mated])
        best_col = np.argmax(scores[mated], axis=1)
        m_best.append(scores[mated][np.arange(mated.sum()), best_col])
        m_ok.append(subjects[best_col] == plabels[mated])
        counts["probes_mated"], counts["probes_non_mated"] = int(mated.sum()), int((~mated).sum())
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise ValueError("no non-mated probes: a gallery needs at least 2 subjects, or give impostor images")
    data = CalibrationInput(
        non_mated=np.concatenate(blocks),
        gallery_subjects=n,
        mated_best=np.concatenate(m_best) if m_best else None,
        mated_correct=np.concatenate(m_ok) if m_ok else None,
    )
    return data, counts
