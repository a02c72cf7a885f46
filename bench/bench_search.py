"""Gallery search: queries/s and recall@1 (against exact search) for 10k, 100k and 1M 512-d vectors.

Flat (exact), IVF and HNSW as bare FAISS calls, beside MarginFace's ``app.search.GalleryIndex`` (what the
server searches: FAISS plus the face→subject bookkeeping) on the same vectors and queries. The gallery is
clustered synthetic data (identities with several faces each, like a real gallery); queries are new
noisy views of gallery identities. ``--quick`` skips 1M.

    .venv/bin/python -m bench.bench_search [--quick]
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time

import numpy as np

from bench.results import IMG_DIR, line_plot

DIM = 512
HNSW_BUILD_BUDGET_S = 240.0


def clustered(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in clusters of ~4 (one identity's faces) and ``queries`` unseen views."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 4, 1), DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    gallery = np.empty((n, DIM), np.float32)
    step = 100_000
    for start in range(0, n, step):  # chunks keep the temporary arrays small
        stop = min(start + step, n)
        owners = rng.integers(0, len(centres), stop - start)
        block = centres[owners] + 0.04 * rng.standard_normal((stop - start, DIM), dtype=np.float32)
        gallery[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    picks = rng.integers(0, n, queries)
    probe = gallery[picks] + 0.04 * rng.standard_normal((queries, DIM), dtype=np.float32)
    return gallery, (probe / np.linalg.norm(probe, axis=1, keepdims=True)).astype(np.float32)


def _qps(search, queries: np.ndarray, repeats: int = 3) -> tuple[float, np.ndarray]:
    best, ids = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        ids = search(queries)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, ids


def _bare(kind: str, gallery: np.ndarray, nprobe: int = 16, ef: int = 128):
    """(search function, build seconds, description) for a bare FAISS index."""
    import faiss

    n = len(gallery)
    start = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(DIM)
        index.add(gallery)
        desc = "IndexFlatIP"
    elif kind == "ivf":
        nlist = int(min(max(16, 4 * math.sqrt(n)), 1024 if n <= 100_000 else 256))  # bounded add time
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        per_list = 50 if n <= 100_000 else 20  # bounded training time at 1M (FAISS warns below 39)
        sample = gallery[np.random.default_rng(1).choice(n, min(n, per_list * nlist), replace=False)]
        index.cp.niter = 10  # bounded k-means: enough for clustered data, minutes saved at 1M
        index.train(sample)
        index.add(gallery)
        index.nprobe = nprobe
        desc = f"IndexIVFFlat nlist={nlist} nprobe={nprobe} (trained on {len(sample):,})"
    else:
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = ef
        deadline = start + HNSW_BUILD_BUDGET_S
        for chunk in range(0, n, 50_000):
            index.add(gallery[chunk : chunk + 50_000])
            if time.perf_counter() > deadline and chunk + 50_000 < n:
                rate = (chunk + 50_000) / (time.perf_counter() - start)
                raise TimeoutError(f"HNSW build over {HNSW_BUILD_BUDGET_S:.0f} s budget "
                                   f"(~{n / rate / 60:.0f} min at {rate:,.0f} vectors/s)")
        desc = f"IndexHNSWFlat M=32 efConstruction=40 efSearch={ef}"
    return (lambda q: index.search(q, 1)[1][:, 0]), time.perf_counter() - start, desc, index


def _marginface(kind: str, gallery: np.ndarray):
    from app.search.factory import IndexParams
    from app.search.gallery_index import GalleryIndex

    start = time.perf_counter()
    index = GalleryIndex(DIM, IndexParams(kind=kind, use_gpu=False))
    ids = np.arange(len(gallery), dtype=np.int64)
    index.add(ids, ids, gallery)  # one face per subject: the best subject is the best face
    build = time.perf_counter() - start

    def search(queries: np.ndarray) -> np.ndarray:
        return np.array([hits[0].face_id if hits else -1 for hits in index.search(queries, 1)])

    return search, build, f"GalleryIndex({kind}): {index.describe()}", index


def run(quick: bool = False) -> list[dict]:
    import faiss

    threads = os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    n_queries = 200 if quick else 1000
    rows, notes = [], []
    series: dict[str, tuple[list, list]] = {}
    for n in sizes:
        count = n_queries if n <= 100_000 else n_queries // 5  # exact search at 1M is the slow part
        gallery, queries = clustered(n, count)
        exact_search, build, desc, exact_index = _bare("flat", gallery)
        start = time.perf_counter()
        truth = exact_search(queries)
        seconds = time.perf_counter() - start
        rows.append([f"{n:,}", "FAISS flat", round(count / seconds, 1), 1.0, round(build, 1), desc])
        series.setdefault("FAISS flat", ([], []))
        series["FAISS flat"][0].append(n)
        series["FAISS flat"][1].append(count / seconds)
        plans = [("MarginFace", "flat"), ("FAISS", "ivf"), ("FAISS", "hnsw")]
        plans += [("MarginFace", "ivf"), ("MarginFace", "hnsw")] if n <= 10_000 else []
        for who, kind in plans:
            try:
                make = _bare if who == "FAISS" else _marginface
                search, build, desc, index = make(kind, gallery)
            except TimeoutError as exc:
                notes.append(f"{n:,}: {who} {kind} skipped — {exc}.")
                continue
            print(f"[search] {n:,} {who} {kind}: built in {build:.1f} s", file=sys.stderr, flush=True)
            qps, found = _qps(search, queries, repeats=3 if n <= 100_000 else 1)
            recall = float(np.mean(found == truth))
            rows.append([f"{n:,}", f"{who} {kind}", round(qps, 1), round(recall, 4), round(build, 1), desc])
            series.setdefault(f"{who} {kind}", ([], []))
            series[f"{who} {kind}"][0].append(n)
            series[f"{who} {kind}"][1].append(qps)
            del index, search
            gc.collect()
        if n > 10_000:
            notes.append(f"{n:,}: MarginFace IVF/HNSW not run — GalleryIndex trains IVF on the whole gallery "
                         "(nlist 4√N, 25 k-means iterations) and builds HNSW without a time bound; the "
                         "bare FAISS rows show those index types at this size.")
        del gallery, exact_index
        gc.collect()
    notes.insert(0, f"{n_queries} queries ({n_queries // 5} at 1M) searched as one batch, top-1, best of 3 "
                 f"(1 at 1M; FAISS flat: the single exact-search run); {threads} FAISS threads; "
                 "recall@1 = share of queries whose top hit equals exact search's.")
    plot = line_plot(IMG_DIR / "search_qps.png", "Gallery search, 512-d, CPU", "gallery size",
                     "queries/s", series, logy=True)
    ax_note = "build s = index construction (training included)"
    notes.append(ax_note)
    return [{"title": "Gallery search (512-d, clustered synthetic)",
             "columns": ["gallery", "index", "queries/s", "recall@1", "build s", "configuration"],
             "rows": rows, "notes": notes, "plots": [plot]}]


def main() -> None:
    from bench.results import main_for

    main_for(run, __doc__)


if __name__ == "__main__":
    main()
