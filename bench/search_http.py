"""``/identify`` end to end over HTTP on a large gallery (``bench_search``'s ``http`` part).

A real SQLite store under bench/out/search_http holds ``n`` clustered synthetic 128-d faces
(``bench/search_data.py``, one subject per synthetic identity) plus the first photo of each LFW person of the
embedding cache, filled once through the repository's bulk path (``Repository.add_faces_many``: one
transaction per ``CHUNK`` faces with their change-log rows; subjects added in the same sessions) and kept
for later runs. A real ``marginface serve`` (``tests/server/servers.py``) then starts on it twice: the first
start reads every embedding from the store, builds the index (``auto`` → ``ivf_pqfs`` at scale) and saves a
snapshot when it stops; the second loads the snapshot. Probes are other LFW photos of the enrolled people
(JPEG files as they are), one face each (``max_faces=1``); an answer is right when its top candidate is the
photo's person, and agrees with exact search when it names exact search's top subject for the bench's own
embedding of the photo (the cached one: the same pack and largest face).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from bench.results import OUT_DIR
from bench.search_data import Clustered, lfw_faces

HTTP_DIR = OUT_DIR / "search_http"
CHUNK = 20_000  # faces a transaction
PROBES = 200
CONCURRENCY = (1, 16)
STORE_VERSION = 1


def _log(message: str) -> None:
    print(f"[search-http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _lfw_split():
    """(gallery rows, probe rows, names by label, paths) of the LFW cache: each person's first photo is
    enrolled, the next ``PROBES`` other photos are probes."""
    found = lfw_faces(compute=False)
    if found is None:
        raise RuntimeError("no LFW embedding cache: run `python -m bench.search_data` first")
    embeddings, labels, paths = found
    first = np.zeros(len(labels), bool)
    first[np.unique(labels, return_index=True)[1]] = True
    names = {int(label): paths[i].parent.name for i, label in enumerate(labels)}
    return embeddings, labels, paths, np.nonzero(first)[0], np.nonzero(~first)[0][:PROBES], names


def _exact_subjects(data: Clustered, lfw_vectors: np.ndarray, lfw_names: list[str],
                    probes: np.ndarray) -> list[str]:
    """Exact search's top subject name for each probe over the whole gallery, streamed chunk by chunk."""
    best = np.full(len(probes), -np.inf, np.float32)
    who: list[str] = [""] * len(probes)
    for _, owners, vectors in data.chunks(size=1 << 18):
        sims = probes @ vectors.T
        top = sims.argmax(1)
        better = sims[np.arange(len(probes)), top] > best
        for q in np.nonzero(better)[0].tolist():
            best[q], who[q] = sims[q, top[q]], f"s{int(owners[top[q]])}"
    sims = probes @ lfw_vectors.T
    for q in range(len(probes)):
        if sims[q].max() > best[q]:
            who[q] = lfw_names[int(sims[q].argmax())]
    return who


def fill_store(n: int, dim: int = 128) -> dict:
    """The store of ``n`` synthetic + LFW faces (made once; its JSON beside it says what it holds).

    Synthetic subjects and faces go in by direct SQL (SQLAlchemy Core ``executemany``, one transaction per
    ``CHUNK`` faces with their ``face_add`` change-log rows, the very rows ``Repository.add_faces_many``
    writes): that ORM path issues one INSERT per row on SQLite (AUTOINCREMENT keys leave SQLAlchemy no
    sentinel to batch RETURNING with), ~1,500 faces/s measured here, hours at 10M. The LFW people go in
    through ``Repository.add_faces_named`` as an enrollment would."""
    from sqlalchemy import func, insert, select

    from app.store.db import make_engine
    from app.store.migrate import upgrade
    from app.store.models import Change, FaceRecord, Subject
    from app.store.repository import NewFace, Repository
    from models.packs.store import resolve_pack

    path = HTTP_DIR / f"store_{n}.db"
    marker = path.with_suffix(".json")
    if marker.exists() and path.exists():
        info = json.loads(marker.read_text())
        if info.get("version") == STORE_VERSION:
            return info
    for old in HTTP_DIR.glob(f"store_{n}.*"):
        old.unlink()
    embeddings, labels, paths, first, probe_rows, names = _lfw_split()
    _, manifest = resolve_pack("default", verify=False)
    engine = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.create_gallery("bench", manifest.name, manifest.version, dim, "auto")
    data = Clustered(n, dim)
    started, made, face_id = time.perf_counter(), 0, 1  # an empty store: ids from 1
    for _, owners, vectors in data.chunks(size=CHUNK):
        top = int(owners[-1]) + 1  # subject id = identity + 1 (identities are contiguous, in order)
        face_ids = range(face_id, face_id + len(owners))
        subjects = [{"id": i + 1, "gallery_id": gallery.id, "name": f"s{i}", "metadata": {}}
                    for i in range(made, top)]
        faces = [{"id": f, "subject_id": o + 1, "gallery_id": gallery.id, "embedding": v.tobytes(),
                  "pack_name": gallery.pack_name, "pack_version": gallery.pack_version}
                 for f, o, v in zip(face_ids, owners.tolist(), vectors, strict=True)]
        changes = [{"gallery_id": gallery.id, "kind": "face_add", "face_id": f, "subject_id": o + 1}
                   for f, o in zip(face_ids, owners.tolist(), strict=True)]
        with engine.begin() as db:
            if subjects:
                db.execute(insert(Subject.__table__), subjects)
            db.execute(insert(FaceRecord.__table__), faces)
            db.execute(insert(Change.__table__), changes)
        made, face_id = top, face_id + len(owners)
        if (face_id - 1) % 1_000_000 < CHUNK:
            rate = (face_id - 1) / (time.perf_counter() - started)
            _log(f"store {n:,}: {face_id - 1:,} faces ({rate:,.0f}/s)")
    fill_s = time.perf_counter() - started
    for row in first.tolist():
        repo.add_faces_named(gallery, names[int(labels[row])], [NewFace(embeddings[row],
                                                                        source=str(paths[row].name))])
    with repo.session() as s:
        faces = s.scalar(select(func.count()).select_from(FaceRecord))
        subjects = s.scalar(select(func.count()).select_from(Subject))
    engine.dispose()
    _log(f"store {n:,}: {faces:,} faces, {subjects:,} subjects in {fill_s:.0f} s; exact search for the truth")
    lfw_names = [names[int(labels[r])] for r in first.tolist()]
    truth = _exact_subjects(data, embeddings[first], lfw_names, embeddings[probe_rows])
    info = {"version": STORE_VERSION, "n": n, "faces": faces, "subjects": subjects,
            "fill_s": round(fill_s, 1), "bytes": path.stat().st_size, "lfw_people": len(first),
            "exact": truth, "probes": [str(paths[r]) for r in probe_rows.tolist()],
            "people": [names[int(labels[r])] for r in probe_rows.tolist()]}
    marker.write_text(json.dumps(info))
    return info


def _rss_gib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS"):
                return round(int(line.split()[1]) / 2**20, 2)
    return float("nan")


def _ms(latencies: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(latencies) * 1000, q)), 1)


def _answers(result, people: list[str], exact: list[str]) -> tuple[float, float, list[str]]:
    """(share naming the photo's person, share naming exact search's subject, top names by probe)."""
    tops = [""] * len(people)
    for i, reply in result.replies.items():
        faces = reply.json().get("faces", []) if reply.status == 200 else []
        if faces and faces[0]["candidates"]:
            tops[i % len(people)] = faces[0]["candidates"][0]["name"] or ""
    right = float(np.mean([t == p for t, p in zip(tops, people, strict=True)]))
    same = float(np.mean([t == e for t, e in zip(tops, exact, strict=True)]))
    return right, same, tops


def _search_log(path: Path, offset: int) -> str:
    """The search lines the server logged since ``offset`` (build, calibration, snapshot load and save)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        lines = [line.split("marginface.search: ", 1)[1].strip() for line in handle
                 if "marginface.search: " in line]
    keep = ("built in", "nprobe", "indexed", "loaded in", "replayed", "saved in", "memory-mapped")
    return "; ".join(line for line in lines if any(k in line for k in keep))


def _stop(server) -> float:
    """Stop with SIGTERM and wait for the snapshot save (``ServerProcess.stop`` kills after 20 s)."""
    started = time.perf_counter()
    server.proc.terminate()
    server.proc.wait(timeout=3600)
    return time.perf_counter() - started


def http_table(n: int) -> dict:
    import httpx

    from bench.http_load import post_request, run_load
    from models.packs.store import packs_dir
    from tests.server.servers import ServerProcess

    info = fill_store(n)
    home = HTTP_DIR / f"home_{n}"
    shutil.rmtree(home, ignore_errors=True)  # no snapshot: the first start builds
    home.mkdir(parents=True)
    env = {"MARGINFACE_HOME": str(home), "MARGINFACE_PACKS_DIR": str(packs_dir()),
           "MARGINFACE_MAX_CONCURRENT_REQUESTS": "256", "MARGINFACE_SEARCH_SNAPSHOT_INTERVAL_S": "86400"}
    url = f"sqlite:///{HTTP_DIR / f'store_{n}.db'}"
    photos = [Path(p).read_bytes() for p in info["probes"]]
    people, exact = info["people"], info["exact"]
    label, rows = f"{n:,} × 128 + {info['lfw_people']} LFW people", []
    fields = {"gallery": "bench", "top_k": "1", "max_faces": "1"}
    tops_first: list[str] = []
    for start in ("first", "second"):
        log_path = home / "server.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        server = ServerProcess(url, log_path, **env)
        began = time.perf_counter()
        server.start(timeout=3600)
        ready = time.perf_counter() - began
        what = "reads the store, builds the index" if start == "first" else "loads the snapshot + log tail"
        kind = httpx.get(f"{server.url}/galleries/bench", timeout=60).json()["index"]
        rows.append([label, f"{start} start: ready", f"{ready:.1f} s", "", "", "", "",
                     _rss_gib(server.proc.pid), f"launch → /readyz 200 ({what}); index {kind['kind']} "
                     f"of {kind['faces']:,} faces; log: {_search_log(log_path, offset)}"])
        _log(f"{start} start ready in {ready:.1f} s")
        try:
            bodies = [post_request(server.url, "/identify", fields, p) for p in photos]
            for concurrency in CONCURRENCY if start == "first" else CONCURRENCY[-1:]:
                result = run_load(server.url, bodies, concurrency, len(bodies))
                bad = sorted({r.status for r in result.replies.values() if r.status != 200})
                right, same, tops = _answers(result, people, exact)
                if start == "first":
                    tops_first = tops
                    note = "" if not bad else f"statuses {bad}"
                else:
                    agree = np.mean([a == b for a, b in zip(tops, tops_first, strict=True)])
                    note = f"same top-1 as the first start: {agree:.3f}"
                rows.append([label, f"{start} start: /identify c{concurrency}", f"{result.rate:.1f} req/s",
                             _ms(result.latencies, 50), _ms(result.latencies, 99), round(right, 3),
                             round(same, 3), _rss_gib(server.proc.pid), note])
                _log(f"c{concurrency}: {result.rate:.1f} req/s right {right:.3f} = exact {same:.3f}")
        finally:
            offset = log_path.stat().st_size
            stopped = _stop(server)
        rows.append([label, f"{start} start: stop", f"{stopped:.1f} s", "", "", "", "", "",
                     f"SIGTERM → exit; log: {_search_log(log_path, offset)}"])
    snap = sum(f.stat().st_size for f in (home / "indexes").rglob("*") if f.is_file())
    notes = [f"store: {info['faces']:,} faces of {info['subjects']:,} subjects, SQLite "
             f"{info['bytes'] / 2**30:.1f} GiB, filled once in {info['fill_s']:.0f} s by direct SQL "
             "(SQLAlchemy Core executemany of the rows Repository.add_faces_many writes, faces with their "
             "change-log rows, 20,000 a transaction: that ORM path inserts one row per statement on SQLite, "
             "~1,500 faces/s here); the LFW people through Repository.add_faces_named; snapshot "
             f"{snap / 2**30:.2f} GiB.",
             f"probes: {len(photos)} other LFW photos of the enrolled people, one face each (max_faces=1, "
             "top_k=1), sent by bench/http_load.py (keep-alive, requests built once); right = top candidate "
             "is the photo's person; = exact = names exact search's top subject for the cached embedding of "
             "the photo. RSS = the server process's resident memory after the row."]
    return {"title": f"/identify over HTTP ({n:,} × 128-d + LFW)",
            "columns": ["gallery", "row", "value", "p50 ms", "p99 ms", "right person", "= exact search",
                        "server RSS GiB", "notes"], "rows": rows, "notes": notes}
