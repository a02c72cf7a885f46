"""Exact re-ranking of compressed candidates, as deep and as wide as each query needs (issue 16).

Compressed kinds (SQ8, PQ, 4-bit fast-scan) score candidates approximately; the top ``depth`` are
re-scored exactly from the float table. Real LFW probes among 10M synthetic faces found exact search's
best face 0.965 of the time with a fixed 64 and the calibrated lists, synthetic probes 0.995. The misses
(7 of 200) were of two kinds, both of queries without a close match:

- near ties: the best face is one of many at nearly the same similarity (the best two within 0.001–0.01:
  a stranger, or a real probe whose enrolled photo looks little like it). The 4-bit codes err by ~0.06 in
  cosine (standard deviation), so they cannot order such ties: exact search's best face ranked 90th to
  2,205th by the codes. **Deeper**: the candidates re-ranked for a query measure the codes' error on it
  (exact − approximate: mean and spread); while the last candidate's approximate score plus mean + ``Z``
  × spread still reaches the best exact similarity, an unseen candidate could be better, and the query is
  searched again ``DEEPEN`` times deeper, up to ``max_depth``.
- a weak match in a list not searched: the probe's enrolled photo (0.48 and 0.53) sat in lists ranked
  505th and 762nd of 1,024 for the probe (real faces sit apart from the synthetic ones the lists were
  trained on, and IVF cells split identities often). **Wider**: a query whose best face is weaker than
  ``WEAK_QUANTILE`` of the gallery's own same-person matches (measured when ``nprobe`` is calibrated,
  ``app.search.tuning``) is searched again over every list.

Queries with a close match stop at the first search (synthetic probes at 1M: 6 % deeper, 2 % wider;
real LFW probes: 9 % deeper, 15 % wider), so the cost is paid where the answer is in doubt.
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from app.search.vectors import ABSENT, VectorTable

Z = 4.0  # spreads of the codes' error a skipped candidate may still gain
DEEPEN = 8  # each deeper search asks for this many times more candidates
WEAK_QUANTILE = 0.05  # a best face below this share of the gallery's own same-person matches: search wide

Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (queries, k) → (approx, ids)


def exact(table: VectorTable, queries: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exact similarities, table rows) in the candidates' order; -inf / ``ABSENT`` for padding and faces
    no longer in the table (tombstones)."""
    rows = table.rows(ids.reshape(-1)).reshape(ids.shape)
    rows[ids < 0] = ABSENT
    valid = rows != ABSENT
    vecs = table.vectors_at(np.where(valid, rows, 0).reshape(-1)).reshape(*rows.shape, table.dim)
    sims = np.einsum("qcd,qd->qc", vecs, queries)
    sims[~valid] = -np.inf
    return sims, rows


def unsure(approx: np.ndarray, ids: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """Queries whose candidates not yet seen could hold a face better than the best re-ranked one."""
    valid = np.isfinite(sims)
    count = valid.sum(1)
    err = np.where(valid, sims - approx, 0.0)
    mean = err.sum(1) / np.maximum(count, 1)
    spread = np.sqrt((np.where(valid, err - mean[:, None], 0.0) ** 2).sum(1) / np.maximum(count - 1, 1))
    best = np.where(count > 0, sims.max(1), np.inf)
    more = ids[:, -1] >= 0  # a full page of candidates: the index holds more
    return more & (count >= 2) & (approx[:, -1] + mean + Z * spread >= best)


def rerank(search: Search, table: VectorTable, queries: np.ndarray, depth: int, max_depth: int,
           exclude: np.ndarray | None = None, wide: Search | None = None,
           weak: float = -np.inf) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(exact similarities, table rows, (queries searched deeper, queries searched wide)): ``depth``
    candidates per query, best first, the best of as many as each query needed (at most ``max_depth``).
    ``exclude``: one face id per query left out (a gallery face searched as a query: itself). A query whose
    best face is below ``weak`` is searched again with ``wide`` (an IVF index: every list)."""
    sims, rows, deeper = _reranked(search, table, queries, depth, max_depth, exclude)
    low = np.nonzero(sims[:, 0] < weak)[0] if wide is not None else np.empty(0, np.int64)
    if len(low):
        again = None if exclude is None else exclude[low]
        sims[low], rows[low], more = _reranked(wide, table, queries[low], depth, max_depth, again)
        deeper += more
    return sims, rows, (deeper, len(low))


def _reranked(search: Search, table: VectorTable, queries: np.ndarray, depth: int, max_depth: int,
              exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    def scored(q: slice, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sims, rows = exact(table, queries[q], ids)
        if exclude is not None:
            mask = ids == exclude[q, None]
            sims[mask], rows[mask] = -np.inf, ABSENT
        return sims, rows

    # one page of DEEPEN × depth candidates (FAISS fast-scan at 10M: +5 % time over 64): the first step
    # deeper re-ranks the rest of it without scanning the lists again
    fetch = min(max_depth, depth * DEEPEN) if max_depth > depth else depth
    approx, ids = search(queries, fetch)
    sims, rows = scored(slice(None), ids[:, :depth])
    deeper = np.nonzero(unsure(approx[:, :depth], ids[:, :depth], sims))[0].tolist() if fetch > depth else []
    for q in deeper:
        a, i, k = approx[q : q + 1], ids[q : q + 1], fetch
        while True:
            s, r = scored(slice(q, q + 1), i[:, :k])
            if k >= max_depth or not unsure(a[:, :k], i[:, :k], s)[0]:
                break
            k = min(max_depth, k * DEEPEN)
            a, i = search(queries[q : q + 1], k)
        top = np.argsort(-s[0], kind="stable")[:depth]
        sims[q, : len(top)], rows[q, : len(top)] = s[0][top], r[0][top]
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(sims, order, 1), np.take_along_axis(rows, order, 1), len(deeper)


def every_list(index: faiss.Index) -> Search | None:
    """A search of ``index`` over all its inverted lists (None when it is not IVF or already does)."""
    try:
        inner = faiss.extract_index_ivf(index)
    except RuntimeError:  # not IVF
        return None
    if inner.nprobe >= inner.nlist:
        return None
    params = faiss.SearchParametersIVF(nprobe=int(inner.nlist))
    return lambda queries, k: index.search(queries, k, params=params)


def weak_level(match_sims: np.ndarray) -> float:
    """The similarity below which a query counts as weak: the ``WEAK_QUANTILE`` of the similarities
    between gallery faces and their nearest other face of the same person (-inf without any)."""
    return float(np.quantile(match_sims, WEAK_QUANTILE)) if len(match_sims) else -np.inf
