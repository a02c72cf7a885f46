"""Data, models and metrics of the fine-tuning benchmark (bench/bench_finetune.py): the CelebA split, the
runs' checkpoints, WiSE-FT interpolations of them, cached embeddings, rank-1 and TAR@FAR."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.results import OUT_DIR

WORK = OUT_DIR / "finetune"  # aligned crops, the split and LFW's bin (the configs' data roots point here)
ALIGNED = Path(os.environ.get("MF_CELEBA_ALIGNED", WORK / "celeba-aligned"))
TRAIN = Path(os.environ.get("MF_CELEBA_TRAIN", WORK / "celeba-train"))
HELD = Path(os.environ.get("MF_CELEBA_HELDOUT", WORK / "celeba-heldout"))
LFW_BIN = Path(os.environ.get("MF_LFW_BIN", WORK / "lfw.bin"))
RUNS = Path(os.environ.get("MF_FT_RUNS", "runs"))
WISE_DIR = WORK / "wise"
HELD_OUT_EVERY = 5
STEP_FILE = "step_*.pt"


def split(aligned: Path = ALIGNED, train: Path = TRAIN, held: Path = HELD) -> tuple[int, int]:
    """Symlink identity folders: every ``HELD_OUT_EVERY``-th (sorted) is held out, the rest trains."""
    identities = sorted(p for p in aligned.iterdir() if p.is_dir() and any(p.iterdir()))
    for folder in (train, held):
        folder.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(identities):
        target = (held if i % HELD_OUT_EVERY == 0 else train) / source.name
        if not target.exists():
            target.symlink_to(source.resolve(), target_is_directory=True)
    return len(list(train.iterdir())), len(list(held.iterdir()))


def held_out_crops() -> tuple[np.ndarray, np.ndarray]:
    from training.evaluation.ident_folders import list_identity_images, read_aligned_crops

    paths, names = list_identity_images(HELD)
    _, labels = np.unique(np.array(names), return_inverse=True)
    return read_aligned_crops(paths), labels


def checkpoints(run: str) -> list[Path]:
    """The run's step checkpoints in step order; ``checkpoint_last.pt`` alone when there are none."""
    steps = sorted((RUNS / run).glob(STEP_FILE))
    last = RUNS / run / "checkpoint_last.pt"
    return steps or ([last] if last.is_file() else [])


def complete(run: str) -> bool:
    """The run reached the end its config asks for (a run still training is left out)."""
    from training.checkpoint import load_checkpoint

    found = checkpoints(run)
    if not found:
        return False
    state = load_checkpoint(found[-1])
    cfg = state["config"]
    if cfg.get("steps"):
        return int(state["step"]) >= int(cfg["steps"])
    return int(state["epoch"]) >= int(cfg["epochs"] or 1) and int(state["batch_in_epoch"]) == 0


def step_of(path: Path) -> int:
    from training.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["step"])


def loader(path: Path) -> Callable[[], object]:
    from training.evaluation.embed import load_backbone

    return lambda: load_backbone(path)[0]


def wise_checkpoint(run: str, alpha: float) -> Path:
    """The run's last checkpoint interpolated with the initial weights (WiSE-FT), written once under
    bench/out/finetune/wise (again when the run's checkpoint is newer)."""
    from training.finetune.interpolate import interpolate_checkpoint

    last = checkpoints(run)[-1]
    path = WISE_DIR / f"{run}-a{alpha:.2f}.pt"
    if not path.is_file() or path.stat().st_mtime < last.stat().st_mtime:
        interpolate_checkpoint(last, alpha, path)
    return path


def cache_path(name: str, weights: Path) -> Path:
    stat = weights.stat()
    return WORK / f"{name}-{weights.stem}-{stat.st_size}-{int(stat.st_mtime)}.npy"


def cached(name: str, weights: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Embeddings of one model on one set, cached under bench/out by the weights file's size and mtime
    (the CPU is shared: models are measured as their runs finish, each once)."""
    path = cache_path(name, weights)
    if path.is_file():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


def embed_fn(load: Callable[[], object], work: str) -> Callable[[np.ndarray], np.ndarray]:
    """crops → embeddings in ONNX Runtime (flip TTA), the export built on first use (a cached model is
    never exported). ``MF_FT_THREADS``: ONNX Runtime threads (default: all)."""
    embedder: list = []

    def embed(crops: np.ndarray) -> np.ndarray:
        if not embedder:
            from training.evaluation.embed import OnnxBackbone, embed_crops

            threads = int(os.environ.get("MF_FT_THREADS", "0")) or None
            onnx = OnnxBackbone(load(), work, threads=threads)
            embedder.append(lambda c: embed_crops(onnx, c, flip=True, batch_size=64))
        return embedder[0](crops)

    return embed


def correct_at_rank1(
    gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, probe_labels: np.ndarray
) -> np.ndarray:
    """Per probe: is its nearest gallery entry of its identity."""
    nearest = np.argmax(probes @ gallery.T, axis=1)
    return gallery_labels[nearest] == probe_labels


def rank1(gallery, gallery_labels, probes, probe_labels) -> float:  # noqa: ANN001
    return float(np.mean(correct_at_rank1(gallery, gallery_labels, probes, probe_labels)))


def pair_labels(labels: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """(upper-triangle index of every pair of crops, 1 for a same-identity pair)."""
    upper = np.triu_indices(len(labels), k=1)
    return upper, (labels[:, None] == labels[None, :])[upper].astype(np.int64)


def tar_at_far(embeddings: np.ndarray, labels: np.ndarray, other: np.ndarray | None = None) -> float:
    """TAR at FAR 1e-3 over every pair of crops (``other``: the right side embedded by another model)."""
    from models.evaluation.ijb import tar_at_far as tar_table

    right = embeddings if other is None else other
    upper, same = pair_labels(labels)
    return float(tar_table(same, (embeddings @ right.T)[upper], fars=(1e-3,))["0.001"])


def gallery_split(labels: np.ndarray) -> np.ndarray:
    """True for the first crop of each identity (its gallery entry)."""
    first = np.zeros(len(labels), dtype=bool)
    _, index = np.unique(labels, return_index=True)
    first[index] = True
    return first


def held_out_metrics(emb: np.ndarray, labels: np.ndarray, first: np.ndarray) -> dict:
    """rank-1 (%), TAR (%), the per-probe rank-1 outcome, and TAR (%) on each half of the identities
    (even / odd label): a difference of the same sign in both halves is less likely to be noise."""
    correct = correct_at_rank1(emb[first], labels[first], emb[~first], labels[~first])
    halves = [labels % 2 == k for k in (0, 1)]
    return {
        "rank1": float(correct.mean()) * 100,
        "tar": tar_at_far(emb, labels) * 100,
        "correct": correct,
        "tar_halves": [tar_at_far(emb[h], labels[h]) * 100 for h in halves],
    }


def curve(run: str, crops: np.ndarray, labels: np.ndarray, first: np.ndarray, work: str) -> list[list]:
    """[step, rank-1, TAR] of every step checkpoint of ``run`` on the held-out identities."""
    points = []
    for path in checkpoints(run):
        embed = embed_fn(loader(path), work)
        emb = cached(f"heldout{len(labels)}", path, lambda embed=embed: embed(crops))
        r1 = rank1(emb[first], labels[first], emb[~first], labels[~first])
        points.append([step_of(path), r1 * 100, tar_at_far(emb, labels) * 100])
    return points
