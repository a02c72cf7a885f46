"""Benchmark /identify against a 100,000-face gallery at concurrency 1, 4 and 16 over HTTP (a real
``marginface serve`` process, micro-batching on), and the same work as a plain single-request loop
over the same pipeline in this process (no HTTP, no batching).

    .venv/bin/python bench/bench_server.py [--faces 100000] [--requests 60]

The gallery holds random L2-normalised vectors (inserted through the repository) plus the six real faces
of insightface's t1.jpg; the queries are crops of those faces, so each request detects, aligns, embeds
and searches one face.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.search.factory import IndexParams  # noqa: E402
from app.search.gallery_index import GalleryIndex  # noqa: E402
from app.store.db import make_engine  # noqa: E402
from app.store.migrate import upgrade  # noqa: E402
from app.store.models import Subject  # noqa: E402
from app.store.repository import NewFace, Repository  # noqa: E402
from bench.http_load import batch_mean  # noqa: E402
from models.images import decode_image  # noqa: E402
from models.pipeline import FacePipeline  # noqa: E402
from tests.server.servers import ServerProcess  # noqa: E402


def t1_crops(pipeline: FacePipeline) -> list[bytes]:
    from models.packs.checks import insightface_image

    image = cv2.imread(str(insightface_image("t1.jpg")))
    crops = []
    for face in sorted(pipeline.detect(image), key=lambda f: f.box[0]):
        x1, y1, x2, y2 = face.box
        mx, my = 0.4 * (x2 - x1), 0.4 * (y2 - y1)
        crop = image[max(0, int(y1 - my)) : int(y2 + my), max(0, int(x1 - mx)) : int(x2 + mx)]
        crops.append(cv2.imencode(".jpg", crop)[1].tobytes())
    return crops


def fill_gallery(url: str, pipeline: FacePipeline, crops: list[bytes], n_faces: int) -> None:
    engine = make_engine(url, sqlite_synchronous="NORMAL")
    upgrade(engine)
    repo = Repository(engine)
    gallery = repo.create_gallery(
        "bench", pipeline.pack_name, pipeline.manifest.version, pipeline.embedding_size, "flat"
    )
    rng = np.random.default_rng(0)
    per_subject, chunk = 5, 10_000
    for start in range(0, n_faces, chunk):
        count = min(chunk, n_faces - start)
        with repo.session() as s:
            subjects = [
                Subject(gallery_id=gallery.id, name=f"random{start + i}")
                for i in range(0, count, per_subject)
            ]
            s.add_all(subjects)
            s.flush()
            subject_ids = [subj.id for subj in subjects]
        vectors = rng.normal(size=(count, pipeline.embedding_size)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pairs = [(subject_ids[k // per_subject], NewFace(v)) for k, v in enumerate(vectors)]
        repo.add_faces_many(gallery, pairs)
    for i, crop in enumerate(crops):
        image = decode_image(crop)
        face = max(pipeline.detect(image), key=lambda f: f.area)
        embedding = pipeline.embed_faces(image, [face])[0]
        subject = repo.create_subject(gallery.id, f"t1_person{i}")
        repo.add_faces(gallery, subject.id, [NewFace(embedding)])
    engine.dispose()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def drive(base: str, crops: list[bytes], concurrency: int, total: int) -> tuple[float, list[float], int]:
    """/identify of t1's faces from ``concurrency`` connections: (req/s, latencies, correct top-1)."""
    from bench.http_load import post_request, run_load

    bodies = [post_request(base, "/identify", {"gallery": "bench", "top_k": "5"}, crop) for crop in crops]
    result = run_load(base, bodies, concurrency, total)
    correct = 0
    for i, reply in result.replies.items():
        if reply.status != 200:
            raise RuntimeError(f"/identify answered {reply.status}: {reply.body[:200]!r}")
        match = reply.json()["faces"][0]["match"]
        correct += match is not None and match["name"] == f"t1_person{i % len(crops)}"
    return result.rate, result.latencies, correct


def plain_loop(url: str, pipeline: FacePipeline, crops: list[bytes], total: int) -> tuple[float, list[float]]:
    """The same per-request work, one request after another, no HTTP and no batching."""
    repo = Repository(make_engine(url))
    gallery = repo.get_gallery("bench")
    index = GalleryIndex(gallery.embedding_size, IndexParams(kind="flat", use_gpu=False))
    for ids, subjects, vectors in repo.iter_embeddings(gallery.id):
        index.add(ids, subjects, vectors)
    latencies = []
    started = time.perf_counter()
    for i in range(total):
        t = time.perf_counter()
        image = decode_image(crops[i % len(crops)])
        faces = pipeline.detect(image, max_faces=20)
        embeddings = pipeline.embed_crops(pipeline.align(image, faces))
        index.search(embeddings, 5)
        latencies.append(time.perf_counter() - t)
    return total / (time.perf_counter() - started), latencies



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60, help="requests per concurrency level (x2 at 16)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    pipeline = FacePipeline.from_pack("default")
    crops = t1_crops(pipeline)
    started = time.perf_counter()
    fill_gallery(url, pipeline, crops, args.faces)
    print(
        f"gallery: {args.faces} random + {len(crops)} real faces stored in "
        f"{time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    with ServerProcess(url, workdir / "server.log", MARGINFACE_MAX_CONCURRENT_REQUESTS="256") as server:
        print(f"server ready (index rebuilt from the store) in {time.perf_counter() - started:.1f} s")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'mode':<28}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}{'top-1 ok':>10}")
        for concurrency in (1, 4, 16):
            total = args.requests * (2 if concurrency == 16 else 1)
            rps, lat, correct = drive(server.url, crops, concurrency, total)
            label = f"HTTP, conc {concurrency}"
            print(
                f"{label:<28}{rps:>8.1f}{percentile(lat, 50):>10.1f}{percentile(lat, 99):>10.1f}"
                f"{correct:>6}/{total}"
            )
        mean = batch_mean(server.url)
        print(f"mean embedding batch over the HTTP runs: {mean:.2f} faces (nan: analysis processes embed)")
    rps, lat = plain_loop(url, pipeline, crops, args.requests)
    print(
        f"{'plain loop (no HTTP/batch)':<28}{rps:>8.1f}"
        f"{percentile(lat, 50):>10.1f}{percentile(lat, 99):>10.1f}"
    )


if __name__ == "__main__":
    main()
