"""Evaluation during export: the checkpoint and its ONNX exports scored on the same verification set,
and the pack's cosine thresholds at FAR 1e-3 / 1e-4.

Two kinds of set: an insightface ``.bin`` (aligned crops; identities unknown) and an LFW-format pairs file
with raw photos (detected and aligned with the pack's detector; identity = the photo's folder name).
A FAR of 1e-4 needs well over 10,000 impostor pairs, more than LFW's 3,000 different-person pairs, so the
thresholds come from an impostor set widened with sampled cross pairs (see ``impostor_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.export.errors import ExportError

THRESHOLD_FARS = (1e-3, 1e-4)
SAMPLED_IMPOSTORS = 200_000


@dataclass
class ScoredSet:
    """Unit-norm embeddings of a set's distinct images and its pairs as index pairs."""

    name: str
    embeddings: np.ndarray
    pairs: np.ndarray  # P×2 indices into embeddings
    issame: np.ndarray
    identities: np.ndarray | None = None  # per image; None when unknown (.bin)
    extra: dict = field(default_factory=dict)

    @property
    def scores(self) -> np.ndarray:
        e = self.embeddings
        return np.sum(e[self.pairs[:, 0]] * e[self.pairs[:, 1]], axis=1).astype(np.float64)


def impostor_scores(
    scored: ScoredSet, count: int = SAMPLED_IMPOSTORS, seed: int = 0
) -> tuple[np.ndarray, str]:
    """The set's different-person pairs plus ``count`` sampled cross pairs of its distinct images.

    With identities (pairs files) a sampled pair joins two different identities. Without them (``.bin``)
    it joins two distinct images that the set never pairs as the same person; a few such pairs may show
    one person twice, which can only raise the threshold (conservative).
    """
    rng = np.random.default_rng(seed)
    n = len(scored.embeddings)
    if n * (n - 1) // 2 <= count:  # small set: every pair of distinct images, once
        a, b = np.triu_indices(n, k=1)
    else:  # large set: random pairs (repeats are negligible at this size)
        a = rng.integers(0, n, size=count * 2)
        b = rng.integers(0, n, size=count * 2)
    keep = a != b
    if scored.identities is not None:
        keep &= scored.identities[a] != scored.identities[b]
        how = "cross-identity pairs of the set's images"
    else:
        same = {(int(x), int(y)) for (x, y), s in zip(scored.pairs, scored.issame, strict=True) if s}
        same |= {(y, x) for x, y in same}
        keep &= np.array([(int(x), int(y)) not in same for x, y in zip(a, b, strict=True)])
        how = "pairs of distinct images that the set does not label as the same person"
    a, b = a[keep][:count], b[keep][:count]
    sampled = np.sum(scored.embeddings[a] * scored.embeddings[b], axis=1).astype(np.float64)
    official = scored.scores[~scored.issame]
    note = f"{len(official)} different-person pairs of the set + {len(sampled)} sampled {how}"
    return np.concatenate([official, sampled]), note


def thresholds_at(scored: ScoredSet, fars=THRESHOLD_FARS) -> dict[str, dict]:
    """Cosine threshold at each FAR over the widened impostor set; TAR over the set's same-person pairs."""
    from models.evaluation.metrics import tar_at_far

    impostors, note = impostor_scores(scored)
    positives = scored.scores[scored.issame]
    scores = np.concatenate([positives, impostors])
    labels = np.concatenate([np.ones(len(positives), bool), np.zeros(len(impostors), bool)])
    out = {}
    for far, value in tar_at_far(scores, labels, fars).items():
        if value is None:
            raise ExportError(
                f"{scored.name}: {len(impostors)} impostor pairs cannot measure FAR {far:g} "
                f"(needs ≥ {int(np.ceil(1 / far))}); use a larger evaluation set",
                code="bad_eval_set",
            )
        out[f"{far:g}"] = {**value, "impostor_pairs": int(len(impostors)), "impostors": note}
    return out


def verification(scored: ScoredSet) -> dict[str, Any]:
    """The LFW protocol on the set's own pairs (10-fold accuracy, TAR at FAR)."""
    from models.evaluation.metrics import evaluate_verification

    result = evaluate_verification(scored.scores, scored.issame).to_dict()
    result.update(scored.extra)
    result["set"] = scored.name
    return result


def _unique_crops(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct crops (by content) and, per original image, its index among them."""
    index_of: dict[bytes, int] = {}
    order = np.empty(len(images), dtype=np.int64)
    unique: list[np.ndarray] = []
    for k, image in enumerate(images):
        key = np.ascontiguousarray(image).tobytes()
        if key not in index_of:
            index_of[key] = len(unique)
            unique.append(image)
        order[k] = index_of[key]
    return np.stack(unique).astype(np.uint8), order


def load_bin_set(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct BGR crops, P×2 pair indices, issame) of an insightface ``.bin``."""
    from training.evaluation.verification import load_bin

    images, issame = load_bin(path)
    bad = [k for k, im in enumerate(images) if np.asarray(im).shape != (112, 112, 3)]
    if bad:
        raise ExportError(f"{path}: image {bad[0]} is not a 112×112 aligned crop", code="bad_eval_set")
    crops, order = _unique_crops(images)
    return crops, order.reshape(-1, 2), np.asarray(issame, dtype=bool)


def score_bin_torch(model: Any, bin_data: tuple, name: str) -> ScoredSet:
    """The checkpoint's own flip-summed embeddings of a loaded ``.bin``."""
    from training.evaluation.embed import embed_crops

    crops, pairs, issame = bin_data
    return ScoredSet(name, embed_crops(model, crops, flip=True, batch_size=64), pairs, issame)


def score_bin_embedder(embedder: Any, bin_data: tuple, name: str) -> ScoredSet:
    """Flip-summed embeddings from a runtime ``models.embedder.Embedder`` (what the server runs)."""
    crops, pairs, issame = bin_data
    chunks = [embedder.embed(crops[s : s + 256], flip=True) for s in range(0, len(crops), 256)]
    return ScoredSet(name, np.concatenate(chunks), pairs, issame)


def score_pairs_pack(pack_dir: Path, pairs_txt: Path, images_dir: Path | None, name: str) -> ScoredSet:
    """Detect, align and embed (flip) every photo of an LFW-format pairs file with a pack folder."""
    from models.evaluation.lfw import read_pairs
    from models.evaluation.pairs_runner import embed_images
    from models.pipeline import FacePipeline

    pairs = read_pairs(pairs_txt, images_dir)
    paths = sorted({Path(p) for pair in pairs for p in pair[:2]})
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ExportError(
            f"{len(missing)} image(s) of {pairs_txt} are missing, e.g. {missing[0]}", "bad_eval_set"
        )
    pipeline = FacePipeline.from_pack(pack_dir)
    results = embed_images(pipeline, paths, flip=True, no_face="mean-landmarks", progress=True)
    position = {p: k for k, p in enumerate(paths)}
    dim = pipeline.embedding_size
    embeddings = np.stack(
        [r.embedding if r.embedding is not None else np.zeros(dim, np.float32) for r in results.values()]
    )
    index = np.array([[position[Path(a)], position[Path(b)]] for a, b, *_ in pairs])
    identities = np.array([p.parent.name for p in paths])
    statuses = [r.status for r in results.values()]
    extra = {s: statuses.count(s) for s in ("detected", "fallback", "no_face", "unreadable")}
    issame = np.array([bool(p[2]) for p in pairs])
    return ScoredSet(name, embeddings, index, issame, identities, {"images": extra})
