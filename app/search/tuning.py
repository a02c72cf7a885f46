"""Choosing ``nprobe`` by measurement: the fewest IVF lists that reach a recall target on the gallery itself.

Face embeddings are close to isotropic (SFace on LFW: 40 of 128 dimensions hold half the variance), so IVF
cells split identities often and a fixed ``nprobe`` gives a recall that depends on the data. After each
(re)build, some gallery faces are searched as queries; the truth is each one's nearest *other* face by exact
search, kept when it is another photo of the same person (what an identify query of an enrolled person
looks like). ``nprobe`` doubles from the setting until recall@1 of the subject — what a search returns,
after the same exact re-ranking — reaches the target.
"""

from __future__ import annotations

import logging

import faiss
import numpy as np

from app.search.vectors import VectorTable

log = logging.getLogger("marginface.search")


def calibrate_nprobe(
    index: faiss.IndexIVF, table: VectorTable, start: int, target: float, queries: int, rerank: int
) -> tuple[int, float]:
    """(nprobe set on ``index``, recall@1 it reached) — the table may change meanwhile: a sample suffices."""
    n = len(table)
    count = min(queries, n - 1)
    if count < 10 or target <= 0:
        return index.nprobe, float("nan")
    rows = np.sort(np.random.default_rng(0).choice(n, count, replace=False))
    vectors = table.vectors_at(rows)
    self_ids = table.ids_at(rows)
    _, nearest = faiss.knn(vectors, table.live_vectors(), 2, faiss.METRIC_INNER_PRODUCT)
    truth = table.subjects_at(np.where(nearest[:, 0] == rows, nearest[:, 1], nearest[:, 0]))
    # Only faces whose nearest other face is of the same person: an identify query of someone enrolled.
    # A person's only face would make an arbitrary stranger the "truth" (no query looks like that).
    keep = truth == table.subjects_at(rows)
    if keep.sum() < 10:
        return index.nprobe, float("nan")
    vectors, self_ids, truth, count = vectors[keep], self_ids[keep], truth[keep], int(keep.sum())
    nprobe, recall = max(1, min(start, index.nlist)), 0.0
    while True:
        index.nprobe = nprobe
        _, found = index.search(vectors, rerank + 1)
        top = np.full(count, -1, np.int64)
        for q in range(count):
            ids = found[q][(found[q] >= 0) & (found[q] != self_ids[q])]
            rows_q = table.rows(ids)
            ids, rows_q = ids[rows_q >= 0], rows_q[rows_q >= 0]
            if len(ids):
                top[q] = table.subjects_at(rows_q[int(np.argmax(table.vectors_at(rows_q) @ vectors[q]))])
        recall = float(np.mean(top == truth))
        if recall >= target or nprobe >= index.nlist:
            break
        nprobe = min(index.nlist, nprobe * 2)
    log.info("nprobe %d of %d lists: recall@1 %.3f on %d gallery faces (target %.3f)", nprobe, index.nlist,
             recall, count, target)
    return nprobe, recall
