"""Vectors for the search benchmark: clustered synthetic galleries and real LFW embeddings (cached).

Synthetic galleries mimic real face embeddings: identities with several faces each (cosine ~0.6 between two
faces of one identity), identity centres that share a few coarse directions (as real embeddings share pose,
age and demographic directions), unit length. Generated in chunks straight into the index under test, so a
10M gallery never exists twice in memory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from bench.results import OUT_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW_DIR = SHARED / "data" / "lfw" / "images_deepfunneled"
GROUPS = 256
GROUP_WEIGHT = 0.4
LFW_MAX = 1600
NOISE = 0.8  # per-face noise norm relative to the unit identity centre


class Clustered:
    """A reproducible clustered gallery of ``n`` faces and queries from it.

    Faces are stored identity by identity (1–7 faces each, 4 on average), as galleries are enrolled; identity
    centres are generated in blocks from per-block seeds, so any range is made without keeping them all.
    """

    BLOCK = 4096  # identities per centre block

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.n, self.dim, self.seed = n, dim, seed
        rng = np.random.default_rng((seed, 0))
        self.groups = _unit(rng.standard_normal((GROUPS, dim), dtype=np.float32))
        counts = rng.integers(1, 8, n // 4 + 16 + 8 * int(n**0.5))  # enough for n faces (the sum varies)
        self.owners = np.repeat(np.arange(len(counts), dtype=np.int64), counts)[:n]  # face → identity
        self.identities = int(self.owners[-1]) + 1

    def _block(self, block: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 1, block))
        noise = rng.standard_normal((self.BLOCK, self.dim), dtype=np.float32) / np.sqrt(self.dim)
        group = rng.integers(0, GROUPS, self.BLOCK)
        return _unit(noise + GROUP_WEIGHT * self.groups[group])

    def centres(self, identities: np.ndarray) -> np.ndarray:
        """Unit centres of ``identities`` (any order)."""
        out = np.empty((len(identities), self.dim), np.float32)
        blocks = identities // self.BLOCK
        for block in np.unique(blocks).tolist():
            where = blocks == block
            out[where] = self._block(block)[identities[where] % self.BLOCK]
        return out

    def chunks(self, size: int = 500_000) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(face ids, identity ids, unit vectors) in order, ``size`` faces at a time."""
        for start in range(0, self.n, size):
            stop = min(start + size, self.n)
            yield np.arange(start, stop, dtype=np.int64), self.owners[start:stop], self.faces(start, stop)

    def faces(self, start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, 2, start))
        noise = rng.standard_normal((stop - start, self.dim), dtype=np.float32) * (NOISE / np.sqrt(self.dim))
        return _unit(self.centres(self.owners[start:stop]) + noise)

    def queries(self, count: int, seed: int = 7) -> np.ndarray:
        """New views of identities that have faces in the gallery."""
        rng = np.random.default_rng((self.seed, 3, seed))
        owners = self.owners[rng.integers(0, self.n, count)]
        noise = rng.standard_normal((count, self.dim), dtype=np.float32) * (NOISE / np.sqrt(self.dim))
        return _unit(self.centres(owners) + noise)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def lfw_embeddings(pack: str = "default", compute: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """(embeddings, identity index) of LFW images with the pack, cached in bench/out; None without them.

    Computing takes ~3–10 min on 2 cores: ``python -m bench.search_data`` makes the cache ahead of a bench."""
    found = lfw_faces(pack, compute)
    return None if found is None else (found[0], found[1])


def lfw_faces(pack: str = "default", compute: bool = True,
              ) -> tuple[np.ndarray, np.ndarray, list[Path]] | None:
    """(embeddings, identity index, image paths) of LFW images with the pack (the largest face of each),
    cached in bench/out (a cache without paths is made again); None without LFW."""
    cache = OUT_DIR / f"lfw_embeddings_{pack}.npz"
    if cache.exists():
        data = np.load(cache)
        if "paths" in data:
            return data["embeddings"], data["labels"], [LFW_DIR / str(p) for p in data["paths"]]
    if not compute or not LFW_DIR.is_dir():
        return None
    from models.evaluation.pairs_runner import embed_images
    from models.pipeline import FacePipeline

    by_person: dict[str, list[Path]] = {}
    for path in sorted(LFW_DIR.glob("*/*.jpg")):
        by_person.setdefault(path.parent.name, []).append(path)
    # people with 2+ images, at most 4 each, LFW_MAX images in all (~3 images/s on this CPU)
    paths = [p for group in by_person.values() if len(group) > 1 for p in group[:4]][:LFW_MAX]
    names = sorted({p.parent.name for p in paths})
    label_of = {name: i for i, name in enumerate(names)}
    started = time.perf_counter()
    results = embed_images(FacePipeline.from_pack(pack), paths, workers=2, progress=True)
    keep = [p for p in paths if results[p].embedding is not None]
    embeddings = _unit(np.stack([results[p].embedding for p in keep]).astype(np.float32))
    labels = np.array([label_of[p.parent.name] for p in keep], np.int64)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    relative = np.array([str(p.relative_to(LFW_DIR)) for p in keep])
    np.savez(cache, embeddings=embeddings, labels=labels, paths=relative)
    print(f"[search] embedded {len(keep)} LFW images in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return embeddings, labels, keep


if __name__ == "__main__":
    found = lfw_embeddings(sys.argv[1] if len(sys.argv) > 1 else "default")
    print("no LFW" if found is None else f"{found[0].shape} embeddings, {len(set(found[1].tolist()))} people")
