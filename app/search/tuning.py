"""Choosing ``nprobe`` by measurement: the fewest IVF lists that reach a recall target on the gallery itself.

Face embeddings are close to isotropic (SFace on LFW: 40 of 128 dimensions hold half the variance), so IVF
cells split identities often and a fixed ``nprobe`` gives a recall that depends on the data. After each
(re)build, some gallery faces are searched as queries; the truth is each one's nearest *other* face by exact
search, kept when it is another photo of the same person (what an identify query of an enrolled person
looks like). ``nprobe`` doubles from the setting until recall@1 — the top face after the same exact
re-ranking a search does is exact search's top face (stricter than the right subject) — reaches the
target; then the midpoint below it is tried once (doubling alone overshoots by up to 2×) and kept when it
reaches the same recall on the sample (200 faces measure 0.99 ± 0.007: one more miss is no margin).
"""

from __future__ import annotations

import logging

import faiss
import numpy as np

from app.search import rerank
from app.search.vectors import ABSENT, VectorTable

log = logging.getLogger("marginface.search")


def calibrate_nprobe(
    index: faiss.IndexIVF, table: VectorTable, start: int, target: float, queries: int, rerank_depth: int,
    max_depth: int = 0,
) -> tuple[int, float, float]:
    """(nprobe set on ``index``, recall@1 it reached, weak level) — the table may change meanwhile: a
    sample suffices.

    Searched as searches are: re-ranked (``rerank_depth`` > 1: a compressed index; deeper where in doubt,
    at most ``max_depth`` candidates) and searched over every list when the best face is below the weak
    level (``app.search.rerank``), which is measured here on the same sample."""
    n = len(table)
    count = min(queries, n - 1)
    if count < 10 or target <= 0:
        return index.nprobe, float("nan"), -np.inf
    rows = np.sort(np.random.default_rng(0).choice(n, count, replace=False))
    vectors = table.vectors_at(rows)
    self_ids = table.ids_at(rows)
    near_sims, nearest = table.knn(vectors, 2)
    other = nearest[:, 0] == rows
    truth_rows = np.where(other, nearest[:, 1], nearest[:, 0])
    truth_sims = np.where(other, near_sims[:, 1], near_sims[:, 0])
    # Only faces whose nearest other face is of the same person: an identify query of someone enrolled.
    # A person's only face would make an arbitrary stranger the "truth" (no query looks like that).
    keep = table.subjects_at(truth_rows) == table.subjects_at(rows)
    if keep.sum() < 10:
        return index.nprobe, float("nan"), -np.inf
    truth = table.ids_at(truth_rows[keep])
    vectors, self_ids = vectors[keep], self_ids[keep]
    depth, weak = max(rerank_depth, 2), rerank.weak_level(truth_sims[keep])

    def recall_at(nprobe: int) -> float:
        index.nprobe = nprobe
        _, found, _ = rerank.rerank(index.search, table, vectors, depth, max(depth, max_depth), self_ids,
                                    rerank.every_list(index), weak)
        top = np.where(found[:, 0] != ABSENT, table.ids_at(np.maximum(found[:, 0], 0)), -1)
        return float(np.mean(top == truth))

    nprobe, below = max(1, min(start, index.nlist)), 0
    while (recall := recall_at(nprobe)) < target and nprobe < index.nlist:
        below, nprobe = nprobe, min(index.nlist, nprobe * 2)
    if recall >= target and below and nprobe - below > 1:
        middle = (nprobe + below) // 2
        if (reached := recall_at(middle)) >= recall:  # only when it loses nothing on the sample
            nprobe, recall = middle, reached
    index.nprobe = nprobe
    log.info("nprobe %d of %d lists: recall@1 %.3f on %d gallery faces (target %.3f); weak below %.3f",
             nprobe, index.nlist, recall, len(truth), target, weak)
    return nprobe, recall, weak
