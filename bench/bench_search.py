"""Gallery search at scale: 1M and 10M faces at 128-d, 1M at 512-d, every index kind; exact search, bare
FAISS with the same parameters and Milvus Lite measured beside MarginFace in the same run.

The gallery is clustered synthetic data (``bench/search_data.py``: identities with 1–7 faces, shared coarse
directions) generated straight into the index; queries are new views of gallery identities, and one row
uses real embeddings of LFW faces (``../shared``, cached in bench/out) as queries against a gallery holding
other images of the same people among the synthetic faces. recall@1 = share of queries whose top face is
exact search's top face. Rows: ``BENCH_SEARCH_PARTS`` (comma list of scale128, milvus, kinds, start,
scale512, http; default scale128,kinds,scale512), ``BENCH_SEARCH_SIZES`` (e.g. ``1000000,10000000``) and
``BENCH_SEARCH_512_SIZES`` (default ``1000000``; 10M × 512 keeps its 20 GB float table in a memory-mapped
file under bench/out/vectors, as ``auto`` does past the memory budget); ``BENCH_SEARCH_KINDS_N`` the kinds
table's size; ``BENCH_SEARCH_HTTP_SIZES`` (default ``100000``) the ``http`` part's gallery sizes
(``/identify`` over HTTP on a real store: ``bench/search_http.py``). Every gallery uses the default
memory budget (8 GiB). ``--quick``: 100k only.

    .venv/bin/python -m bench.bench_search --write
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.results import IMG_DIR, OUT_DIR, line_plot
from bench.search_data import Clustered, lfw_embeddings

QUERIES = 200
SEPARATE_BARE_MAX = 2_000_000  # above: bare FAISS searches MarginFace's own index (saves a build)
MILVUS_MAX = 100_000  # pymilvus inserts ran ~200 rows/s on the shared CPU: 300k did not finish in 25 min
EXACT_B1_QUERIES = 20  # exact search one query at a time is the slow part at 10M
EXACT_DISK_QUERIES = (2, 32)  # (b1, b32) queries timed when exact search reads its float table from disk
VECTORS_DIR = OUT_DIR / "vectors"
COLUMNS = ["gallery", "index", "build s", "RAM GiB", "bytes/face", "qps b1", "p99 b1 ms", "qps b32",
           "p99 b32 ms", "recall@1 face", "recall@1 subject", "configuration"]


def _rss() -> int:
    """Anonymous resident memory: what the process holds itself (memory-mapped float files are page cache)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) * 1024
    return 0


def _log(message: str) -> None:
    print(f"[search {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _timed(search, queries: np.ndarray, batch: int) -> tuple[float, float, np.ndarray]:
    """(queries/s, p99 latency ms of one call, top-1 ids) searching ``batch`` queries per call."""
    latencies, found = [], []
    for start in range(0, len(queries), batch):
        began = time.perf_counter()
        found.append(search(queries[start : start + batch]))
        latencies.append(time.perf_counter() - began)
    return len(queries) / sum(latencies), 1000 * float(np.percentile(latencies, 99)), np.concatenate(found)


def _row(label: str, n: int, name: str, build: float, ram: int, search, queries, truth, config: str,
         b1_queries: int = QUERIES, subject_of=None, b32_timed: tuple | None = None) -> list:
    q1, p1, _ = _timed(search, queries[:b1_queries], 1)
    q32, p32, found = b32_timed or _timed(search, queries, 32)
    recall = float(np.mean(found == truth))
    by_subject = float(np.mean(subject_of(found) == subject_of(truth))) if subject_of else recall
    _log(f"{label} {name}: qps b1 {q1:.1f} b32 {q32:.1f}, recall {recall:.4f} / {by_subject:.4f}")
    return [label, name, round(build, 1), round(ram / 2**30, 2), round(ram / n) if ram else "–",
            round(q1, 1), round(p1, 1), round(q32, 1), round(p32, 1), round(recall, 4), round(by_subject, 4),
            config]


def _subjects(data: Clustered, real) -> callable:
    """face id → identity: synthetic ids index the owners; LFW faces follow them."""
    extra = real[0][1] if real is not None else np.empty(0, np.int64)

    def subject_of(ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        synthetic = data.owners[np.clip(ids, 0, data.n - 1)]
        lfw = extra[np.clip(ids - data.n, 0, max(len(extra) - 1, 0))] if len(extra) else synthetic
        return np.where(ids < 0, -1, np.where(ids < data.n, synthetic, lfw))

    return subject_of


def _marginface(data: Clustered, params, extra: tuple | None = None):
    from app.search.gallery_index import GalleryIndex

    before, started = _rss(), time.perf_counter()
    index = GalleryIndex(data.dim, params)
    index.reserve(data.n + (len(extra[0]) if extra else 0))
    with index.bulk():
        for ids, owners, vectors in data.chunks(size=2**26 // data.dim):  # 256 MiB of floats a chunk
            index.add(ids, owners, vectors)
        if extra is not None:
            index.add(*extra)
    index.wait_idle()
    return index, time.perf_counter() - started, _rss() - before


def _mf_search(index):
    def search(queries: np.ndarray) -> np.ndarray:
        return np.array([hits[0].face_id if hits else -1 for hits in index.search(queries, 1)])

    return search


def _bare_faiss(index, params):
    """A bare FAISS index with MarginFace's kind, nlist, sample size and nprobe, no re-ranking."""
    from app.search import factory

    table = index._table  # noqa: SLF001 - the same vectors, without a second copy
    n = len(table)
    before, started = _rss(), time.perf_counter()
    sample = table.sample(factory.training_sample_size(params, n), seed=1)
    bare = factory.make_trained(index.kind, params, index.dim, n, sample)
    bare.nprobe = index._index.nprobe  # noqa: SLF001 - as calibrated for MarginFace
    ids, _, vectors = table.views()
    for start in range(0, n, 262_144):
        stop = start + 262_144
        bare.add_with_ids(np.ascontiguousarray(vectors[start:stop]), ids[start:stop])
    build, ram = time.perf_counter() - started, _rss() - before
    config = f"{type(bare).__name__} {factory.details(bare)}"
    return (lambda q: bare.search(q, 1)[1][:, 0]), build, ram, config


def _top1(faiss_index):
    return lambda queries: faiss_index.search(queries, 1)[1][:, 0]


def _exact(index):
    table = index._table  # noqa: SLF001

    def search(queries: np.ndarray) -> np.ndarray:  # a file-backed table: one sequential pass of preadv
        return table.ids_at(table.knn(queries, 1)[1][:, 0])

    return search


def _real_faces(n: int):
    """(gallery ids, subjects, vectors) of LFW people's first images, and queries of their other images."""
    found = lfw_embeddings(compute=False)
    if found is None:
        return None
    embeddings, labels = found
    first = np.zeros(len(labels), bool)
    _, first_rows = np.unique(labels, return_index=True)
    first[first_rows] = True
    gallery = embeddings[first]
    ids = np.arange(n, n + len(gallery), dtype=np.int64)
    subjects = 10**9 + labels[first]
    return (ids, subjects, gallery), embeddings[~first][:QUERIES]


def scale_table(dim: int, n: int, kind: str = "auto", milvus: bool = False) -> dict:
    from app.search.factory import IndexParams, bytes_per_face, details

    rows, notes = [], []
    budget = int(os.environ.get("BENCH_SEARCH_BUDGET_MB", 8192))  # the default setting (smoke tests: less)
    params = IndexParams(kind=kind, use_gpu=False, vectors_dir=str(VECTORS_DIR), memory_budget_mb=budget)
    label = f"{n:,} × {dim}"
    data = Clustered(n, dim)
    real = _real_faces(n) if dim == 128 else None
    _log(f"{label}: building MarginFace {kind}")
    index, build, ram = _marginface(data, params, real[0] if real else None)
    queries = data.queries(QUERIES)
    exact = _exact(index)
    subject_of = _subjects(data, real)
    disk = index.floats_on_disk
    b1, b32 = EXACT_DISK_QUERIES if disk else (EXACT_B1_QUERIES if n > 1_000_000 else QUERIES, QUERIES)
    _log(f"{label}: exact search, {b32} queries 32 a call")
    timed = _timed(exact, queries[:b32], 32)
    truth = timed[2] if b32 == QUERIES else exact(queries)  # one pass of all queries: the truth for recall
    where = (f"a memory-mapped float file ({n * dim * 4 / 1e9:.1f} GB, read from disk where the page cache "
             "does not hold it)") if disk else "the float table"
    rows.append(_row(label, n, "exact (faiss.knn)", 0.0, 0, exact, queries[:b32], truth[:b32],
                     f"brute force over {where}; b1 over {b1} queries, b32 over {b32}", b1_queries=b1,
                     subject_of=subject_of, b32_timed=timed))
    cfg = f"{index.describe()} {details(index._index)} rerank {params.rerank}"  # noqa: SLF001
    if index.calibration:
        cfg += f" (nprobe calibrated: face recall@1 {index.calibration[1]:.3f} on gallery faces)"
    model = bytes_per_face(index.kind, params, dim, on_disk=disk)
    cfg += f"; model {model} B/face in RAM" + (" (float table memory-mapped from disk)" if disk else "")
    rows.append(_row(label, n, f"MarginFace {kind} → {index.kind}", build, ram, _mf_search(index),
                     queries, truth, cfg, subject_of=subject_of))
    if real is not None:
        real_queries = real[1]
        real_truth = exact(real_queries)
        rows.append(_row(label + " + LFW", n, f"MarginFace {kind}, real LFW queries", build, 0,
                         _mf_search(index), real_queries, real_truth,
                         f"{len(real[0][0])} LFW people enrolled among the synthetic faces, "
                         f"{len(real_queries)} other images of them as queries", subject_of=subject_of))
    if index.kind != "flat" and n > SEPARATE_BARE_MAX:
        bare = index._index  # noqa: SLF001 - the very FAISS index MarginFace searches, searched bare
        rows.append(_row(label, n, "bare FAISS, same index", 0.0, 0, _top1(bare), queries, truth,
                         subject_of=subject_of,
                         config=f"MarginFace's {index.describe()} searched directly: no re-ranking, no "
                         "face→subject step (a second build would take as long again)"))
    elif index.kind != "flat":
        search, bare_build, bare_ram, bare_cfg = _bare_faiss(index, params)
        rows.append(_row(label, n, "bare FAISS, same parameters", bare_build, bare_ram, search, queries,
                         truth, bare_cfg + ", no re-ranking", subject_of=subject_of))
        del search
    if milvus and n <= MILVUS_MAX:
        try:
            nprobe = index._index.nprobe if index._index is not None else params.nprobe  # noqa: SLF001
            rows.append(_milvus_row(label, data, replace(params, nprobe=nprobe), queries, truth, subject_of))
        except Exception as exc:  # noqa: BLE001 - the other rows stand
            notes.append(f"{label}: Milvus Lite row failed: {type(exc).__name__}: {exc}")
    elif milvus:
        notes.append(f"{label}: no Milvus Lite row — inserting through pymilvus ran ~200 rows/s on this "
                     "shared CPU (see the 100,000 table).")
    del index, exact
    gc.collect()
    notes.append(f"{QUERIES} synthetic queries; qps b1 = one query per call, b32 = 32 per call; p99 of call "
                 "latency. RAM = anonymous resident-memory growth while building (float table when in RAM, "
                 "codes, bookkeeping; a memory-mapped float file is page cache, not counted).")
    series = {f"{r[1]}{' (LFW)' if 'LFW' in r[0] else ''}": ([1, 32], [r[5], r[7]]) for r in rows}
    plot = line_plot(IMG_DIR / f"search_scale_{n}_{dim}.png", f"{n:,} × {dim}-d faces, CPU",
                     "queries per call", "queries/s", series, logx=True, logy=True)
    return {"title": f"Gallery search at scale ({n:,} × {dim}-d, clustered synthetic)", "columns": COLUMNS,
            "rows": rows, "notes": notes, "plots": [plot]}


def _milvus_row(label: str, data: Clustered, params, queries, truth, subject_of) -> list:
    import shutil
    import tempfile

    from app.search.milvus_index import MilvusGalleryIndex, client_for

    folder = tempfile.mkdtemp(prefix="bench-milvus-")
    try:
        client = client_for(f"{folder}/milvus.db")
        before, started = _rss(), time.perf_counter()
        index = MilvusGalleryIndex(data.dim, replace(params, kind="ivf_sq8"), client, "bench",
                                   expected_faces=data.n)
        for ids, owners, vectors in data.chunks():
            index.add(ids, owners, vectors)
        index.search(queries[:1], 1)  # Milvus builds its index segments lazily
        build, ram = time.perf_counter() - started, _rss() - before
        nprobe = index.params.nprobe
        return _row(label, data.n, "Milvus Lite IVF_SQ8", build, ram, _mf_search(index), queries, truth,
                    f"milvus-lite, nlist by size, nprobe {nprobe} (MarginFace's calibrated value); "
                    "RAM: this process only", subject_of=subject_of)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def kinds_table(n: int, dim: int = 128) -> dict:
    """bytes/face and recall@1 of every kind on one gallery."""
    from app.search.factory import IndexParams, bytes_per_face, details

    data = Clustered(n, dim, seed=3)
    queries = data.queries(QUERIES)
    rows, truth = [], None
    for kind in ("flat", "ivf", "ivf_sq8", "ivf_pq", "ivf_pqfs", "hnsw"):
        params = IndexParams(kind=kind, use_gpu=False, hnsw_build_budget_s=900.0)
        _log(f"kinds {n:,}: {kind}")
        index, build, ram = _marginface(data, params)
        if truth is None:
            truth = _exact(index)(queries)
        cfg = f"{index.describe()} {details(index._index)}"  # noqa: SLF001
        if index.build_error:
            cfg += f" ({index.build_error})"
        rows.append(_row(f"{n:,} × {dim}", n, f"{kind} → {index.kind}", build, ram, _mf_search(index),
                         queries, truth, f"{cfg}; model {bytes_per_face(index.kind, params, dim)} B/face",
                         subject_of=_subjects(data, None)))
        del index
        gc.collect()
    return {"title": f"Index kinds ({n:,} × {dim}-d)", "columns": COLUMNS, "rows": rows,
            "notes": ["bytes/face = measured resident growth / faces (model: float table + codes + 32 B "
                      "bookkeeping); HNSW builds under a 900 s budget here (wall clock on a shared CPU; "
                      "default 300 s) and falls back to IVF-SQ8 past it."]}


def start_table(n: int, dim: int = 128) -> dict:
    """Fast start: saving and loading a snapshot against building the index from the vectors."""
    import shutil
    import tempfile
    from types import SimpleNamespace

    from app.search.factory import IndexParams
    from app.search.snapshots import SnapshotStore

    params = IndexParams(kind="auto", use_gpu=False, memory_budget_mb=12 * 1024)
    data = Clustered(n, dim, seed=11)
    _log(f"start {n:,}: building")
    index, build, _ = _marginface(data, params)
    gallery = SimpleNamespace(id=1, name="bench", created_at="now", embedding_size=dim, index_kind="auto")
    folder = Path(tempfile.mkdtemp(prefix="bench-snap-", dir=OUT_DIR))
    try:
        store = SnapshotStore(folder)
        started = time.perf_counter()
        store.save(gallery, index, 123)
        save = time.perf_counter() - started
        size = sum(f.stat().st_size for f in store.folder(1).iterdir())
        queries = data.queries(QUERIES)
        before = _mf_search(index)(queries)
        del index
        gc.collect()
        started = time.perf_counter()
        loaded, position = store.load(gallery, params)
        load = time.perf_counter() - started
        same = float(np.mean(_mf_search(loaded)(queries) == before))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = [[f"{n:,} × {dim}", loaded.kind, round(build, 1), round(save, 1), round(size / 2**30, 2),
             round(load, 1), position, same]]
    return {"title": f"Fast start ({n:,} × {dim}-d)",
            "columns": ["gallery", "index", "build s", "save s", "snapshot GiB", "load s", "position",
                        "same top-1"],
            "rows": rows,
            "notes": ["build = bulk load of the vectors already in memory plus training (a start-up without "
                      "a snapshot also reads every embedding from the store first); load = read + CRC-32 "
                      "check of every file + FAISS index read; then only the log's tail is replayed."]}


def run(quick: bool = False) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    parts = os.environ.get("BENCH_SEARCH_PARTS", "scale128,kinds,scale512").split(",")
    sizes = [int(s) for s in os.environ.get("BENCH_SEARCH_SIZES", "").split(",") if s]
    sizes = sizes or ([100_000] if quick else [1_000_000, 10_000_000])
    tables = []
    if "scale128" in parts:
        tables += [scale_table(128, n, milvus="milvus" in parts) for n in sizes]
    if "milvus" in parts and not any(n <= MILVUS_MAX for n in sizes):  # a size Milvus Lite can be loaded at
        tables.append(scale_table(128, MILVUS_MAX, kind="ivf_sq8", milvus=True))
    if "kinds" in parts:
        kinds_n = int(os.environ.get("BENCH_SEARCH_KINDS_N", 0)) or (100_000 if quick else 1_000_000)
        tables.append(kinds_table(kinds_n))
    if "start" in parts:
        tables.append(start_table(sizes[0]))
    if "http" in parts:  # /identify over HTTP on a real store (bench/search_http.py)
        from bench.search_http import http_table

        http_sizes = [int(s) for s in os.environ.get("BENCH_SEARCH_HTTP_SIZES", "100000").split(",") if s]
        tables += [http_table(n) for n in http_sizes]
    if "scale512" in parts:
        sizes512 = [int(s) for s in os.environ.get("BENCH_SEARCH_512_SIZES", "").split(",") if s]
        sizes512 = sizes512 or [min(sizes[0], 1_000_000)]
        tables += [scale_table(512, n) for n in sizes512]
    machine_note = (f"CPU shared with other work while measuring (load average {os.getloadavg()[0]:.0f} on "
                    f"{os.cpu_count()} cores at the end): compare rows of one table, not absolute numbers.")
    for table in tables:
        table.setdefault("notes", []).append(machine_note)
    return tables


def main() -> None:
    from bench.results import main_for

    main_for(run, __doc__)


if __name__ == "__main__":
    main()
