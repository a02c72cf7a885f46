"""1:N identification metrics (numpy + FAISS): rank-k accuracy and open-set TPIR at FPIR.

Protocol (protocols.md): probes whose identity is enrolled in the gallery give rank-k accuracy; for the
open set, the threshold at a given FPIR is set on the best scores of probes whose identity is NOT enrolled,
and TPIR is the fraction of enrolled probes whose best match is correct and scores above it. Distractors
(MegaFace style) are extra gallery images that belong to no probe identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DISTRACTOR = -1


@dataclass
class IdentificationResult:
    rank_accuracy: dict[int, float]  # k → fraction of enrolled probes with the right identity in the top k
    tpir_at_fpir: dict[float, dict[str, float]] = field(default_factory=dict)  # fpir → {tpir, threshold}
    enrolled_probes: int = 0
    non_enrolled_probes: int = 0
    gallery_size: int = 0
    distractors: int = 0

    def to_dict(self) -> dict:
        return {
            "rank_accuracy": {f"rank{k}": v for k, v in self.rank_accuracy.items()},
            "tpir_at_fpir": {f"{f:g}": v for f, v in self.tpir_at_fpir.items()},
            "enrolled_probes": self.enrolled_probes,
            "non_enrolled_probes": self.non_enrolled_probes,
            "gallery_size": self.gallery_size,
            "distractors": self.distractors,
        }


def search(gallery: np.ndarray, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search with FAISS: (scores P×k, gallery indices P×k), best first."""
    import faiss

    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    index = faiss.IndexFlatIP(gallery.shape[1])
    index.add(gallery)
    scores, idx = index.search(np.ascontiguousarray(probes, dtype=np.float32), min(k, len(gallery)))
    return scores, idx


def ranked_identities(labels_topk: np.ndarray) -> list[list[int]]:
    """Per probe, the distinct identities in search order (each distractor image counts as its own)."""
    out = []
    for row in labels_topk:
        seen, ranked = set(), []
        for j, label in enumerate(row):
            key = ("d", j) if label == DISTRACTOR else label
            if key not in seen:
                seen.add(key)
                ranked.append(int(label))
        out.append(ranked)
    return out


def evaluate_identification(
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    probes: np.ndarray,
    probe_labels: np.ndarray,
    distractors: np.ndarray | None = None,
    ranks: tuple[int, ...] = (1, 5, 10),
    fpirs: tuple[float, ...] = (0.1, 0.01, 0.001),
) -> IdentificationResult:
    """Rank-k over enrolled probes; TPIR@FPIR when some probes are not enrolled (FPIRs that the number of
    non-enrolled probes cannot resolve, i.e. below 1/n, are left out). A search is accepted when its best
    score is strictly above the threshold. Embeddings must be L2-normalised."""
    gallery_labels = np.asarray(gallery_labels)
    probe_labels = np.asarray(probe_labels)
    if gallery_labels.min(initial=0) < 0 or probe_labels.min(initial=0) < 0:
        raise ValueError("identity labels must be non-negative (-1 marks distractors)")
    n_distractors = 0
    if distractors is not None and len(distractors):
        n_distractors = len(distractors)
        gallery = np.concatenate([gallery, distractors])
        gallery_labels = np.concatenate([gallery_labels, np.full(n_distractors, DISTRACTOR)])
    max_per_id = int(np.bincount(gallery_labels[gallery_labels >= 0]).max()) if len(gallery_labels) else 1
    scores, idx = search(gallery, probes, max(ranks) * max_per_id)
    ranked = ranked_identities(gallery_labels[idx])
    enrolled = np.isin(probe_labels, gallery_labels[gallery_labels >= 0])

    rank_acc: dict[int, float] = {}
    for k in ranks:
        hits = [probe_labels[i] in ranked[i][:k] for i in np.flatnonzero(enrolled)]
        rank_acc[k] = float(np.mean(hits)) if hits else float("nan")

    best_score = scores[:, 0]
    best_correct = gallery_labels[idx[:, 0]] == probe_labels
    tpir: dict[float, dict[str, float]] = {}
    non_mated = np.sort(best_score[~enrolled])[::-1]
    for fpir in fpirs:
        allowed = int(np.floor(fpir * len(non_mated) + 1e-9))  # non-mated searches that may pass
        if len(non_mated) == 0 or allowed < 1:
            continue
        # accept a search whose best score is above the (allowed+1)-th highest non-mated best score
        threshold = float(non_mated[allowed]) if allowed < len(non_mated) else -1.0
        accepted = best_correct[enrolled] & (best_score[enrolled] > threshold)
        tpir[fpir] = {
            "tpir": float(np.mean(accepted)) if enrolled.any() else float("nan"),
            "threshold": threshold,
            "fpir_measured": float(np.mean(non_mated > threshold)),
        }
    return IdentificationResult(
        rank_accuracy=rank_acc,
        tpir_at_fpir=tpir,
        enrolled_probes=int(enrolled.sum()),
        non_enrolled_probes=int((~enrolled).sum()),
        gallery_size=int(len(gallery) - n_distractors),
        distractors=n_distractors,
    )
