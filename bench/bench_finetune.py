"""Fine-tuning the default model (SFace) on CelebA identities: before/after on held-out identities and LFW.

Every model is measured in the same run, on the same crops: the default pack's SFace (imported into
PyTorch, parity ≥ 0.9999 with the served graph) and each fine-tuned checkpoint of ``RUNS``. Held-out
identities: every 5th of the 250 CelebA identities (50), never trained on. 1:N rank-1: the first crop of
each held-out identity is its gallery entry, every other crop a probe. TAR@FAR 1e-3: all pairs of held-out
crops. LFW: the 6,000 official pairs, 10 folds. Compatibility: gallery embedded by the old (base) model,
probes by the new one. Flip TTA everywhere; embeddings run in ONNX Runtime (exported backbones).

Prepare (see docs/training.md): ``marginface data align`` CelebA into ``ALIGNED``, ``marginface data
make-bin`` LFW into ``LFW_BIN``, ``python -m bench.bench_finetune --split``, then train each config.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.results import OUT_DIR, main_for

ALIGNED = Path(os.environ.get("MF_CELEBA_ALIGNED", "/tmp/i13/celeba-aligned"))
TRAIN = Path(os.environ.get("MF_CELEBA_TRAIN", "/tmp/i13/celeba-train"))
HELD = Path(os.environ.get("MF_CELEBA_HELDOUT", "/tmp/i13/celeba-heldout"))
LFW_BIN = Path(os.environ.get("MF_LFW_BIN", "/tmp/i13/lfw.bin"))
RUNS = Path(os.environ.get("MF_FT_RUNS", "runs"))
HELD_OUT_EVERY = 5
FINETUNED = [
    ("ArcFace (s 32, m 0.35)", "celeba_sface_ft_arcface"),
    ("CosFace (s 32, m 0.25)", "celeba_sface_ft_cosface"),
    ("ArcFace + compatibility (cosine, w 1)", "celeba_sface_ft_arcface_compat"),
]


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


def _held_out_crops() -> tuple[np.ndarray, np.ndarray]:
    from training.evaluation.ident_folders import list_identity_images, read_aligned_crops

    paths, names = list_identity_images(HELD)
    _, labels = np.unique(np.array(names), return_inverse=True)
    return read_aligned_crops(paths), labels


def _backbones() -> list[tuple[str, Path, object]]:
    """(label, weights file, loader) of the base model and of each fine-tuned run that has a checkpoint."""
    from training.evaluation.embed import load_backbone
    from training.finetune.init import recogniser_onnx
    from training.onnx_import import import_onnx

    onnx = recogniser_onnx("default")
    found = [("default pack SFace (before)", onnx, lambda: import_onnx(onnx)[0].eval())]
    for label, run in FINETUNED:
        path = RUNS / run / "checkpoint_last.pt"
        if path.is_file():
            found.append((label, path, lambda path=path: load_backbone(path)[0]))
    return found


def _cached(name: str, weights: Path, compute) -> np.ndarray:  # noqa: ANN001
    """Embeddings of one model on one set, cached under bench/out by the weights file's size and mtime
    (the CPU is shared: models are measured as their runs finish, each once)."""
    stat = weights.stat()
    path = OUT_DIR / "finetune" / f"{name}-{weights.stem}-{stat.st_size}-{int(stat.st_mtime)}.npy"
    if path.is_file():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, value)
    return value


def _embedder(backbone, work: str):
    from training.evaluation.embed import OnnxBackbone, embed_crops

    onnx = OnnxBackbone(backbone, work)
    return lambda crops: embed_crops(onnx, crops, flip=True, batch_size=64)


def _rank1(
    gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray, probe_labels: np.ndarray
) -> float:
    nearest = np.argmax(probes @ gallery.T, axis=1)
    return float(np.mean(gallery_labels[nearest] == probe_labels))


def _tar_at_far(embeddings: np.ndarray, labels: np.ndarray, other: np.ndarray | None = None) -> float:
    from models.evaluation.ijb import tar_at_far

    right = embeddings if other is None else other
    upper = np.triu_indices(len(labels), k=1)
    scores = (embeddings @ right.T)[upper]
    same = (labels[:, None] == labels[None, :])[upper].astype(np.int64)
    return float(tar_at_far(same, scores, fars=(1e-3,))["0.001"])


def _gallery_split(labels: np.ndarray) -> np.ndarray:
    """True for the first crop of each identity (its gallery entry)."""
    first = np.zeros(len(labels), dtype=bool)
    _, index = np.unique(labels, return_index=True)
    first[index] = True
    return first


def run(quick: bool) -> list[dict]:
    from training.evaluation.verification import embed_bin_images, load_bin, pair_cosines, verification_report

    if not HELD.is_dir() or not TRAIN.is_dir():
        return [
            {"title": "Fine-tuning SFace on CelebA", "skipped": f"no split at {TRAIN} / {HELD} (--split)"}
        ]
    crops, labels = _held_out_crops()
    lfw = (
        load_bin(LFW_BIN) if LFW_BIN.is_file() and not quick and not os.environ.get("MF_FT_NO_LFW") else None
    )
    first = _gallery_split(labels)
    rows, compat_rows, base_emb = [], [], None
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as work:
        for k, (label, weights, load) in enumerate(_backbones()):
            embedder: list = []

            def embed(crops, load=load, embedder=embedder):  # noqa: ANN001 - built on first use
                if not embedder:
                    embedder.append(_embedder(load(), work))
                return embedder[0](crops)

            emb = _cached(f"heldout{len(labels)}", weights, lambda embed=embed: embed(crops))
            rank1 = _rank1(emb[first], labels[first], emb[~first], labels[~first])
            tar = _tar_at_far(emb, labels)
            lfw_cell = "not measured"
            if lfw is not None:
                images, issame = lfw
                cos = _cached(
                    "lfw",
                    weights,
                    lambda embed=embed, images=images: pair_cosines(embed_bin_images(embed, images)),
                )
                report = verification_report(cos, issame)
                lfw_cell = f"{report['accuracy'] * 100:.2f} ± {report['accuracy_std'] * 100:.2f}"
            rows.append([label, f"{rank1 * 100:.2f}", f"{tar * 100:.2f}", lfw_cell])
            print(rows[-1], file=sys.stderr, flush=True)
            if k == 0:
                base_emb = emb
            else:
                assert base_emb is not None
                cross = _rank1(base_emb[first], labels[first], emb[~first], labels[~first])
                compat_rows.append([label, f"{cross * 100:.2f}", f"{rank1 * 100:.2f}"])
    n_ids = len(np.unique(labels))
    notes = [
        f"Held out: {n_ids} CelebA identities, {len(labels)} aligned crops ({int(first.sum())} gallery, "
        f"{int((~first).sum())} probes); trained on the other {len(list(TRAIN.iterdir()))} identities.",
        "Configs: configs/celeba_sface_finetune_{arcface,cosface,arcface_compat}.yaml (at most 100 steps of "
        "batch 32 or 12 minutes on a shared 2-core CPU, early layers frozen, BN statistics kept).",
        "LFW: official 6,000 pairs, 10-fold accuracy ± std over folds, flip TTA; 0.3 points is about one "
        "fold standard error here, so small differences are noise.",
    ]
    if len(rows) == 1:
        notes.append(
            "No fine-tuned checkpoint yet: on 2026-12-01 the shared CPU (load average 17–28) gave each niced "
            "run 5–10 % of a core, and the class-centre pass over 4,043 crops had not finished after 50 "
            "minutes; the runs were stopped. Only the base model is measured here."
        )
    tables = [
        {
            "title": "Fine-tuning SFace on CelebA: held-out identities and LFW, before and after",
            "columns": ["model", "held-out rank-1 (%)", "held-out TAR@FAR 1e-3 (%)", "LFW accuracy (%)"],
            "rows": rows,
            "notes": notes,
        }
    ]
    if compat_rows:
        tables.append(
            {
                "title": "Fine-tuning SFace: old gallery, new probes (backward compatibility)",
                "columns": ["new model", "rank-1, base-model gallery (%)", "rank-1, own gallery (%)"],
                "rows": compat_rows,
                "notes": [
                    "Gallery crops embedded by the default pack, probes by the fine-tuned model: what an "
                    "un-migrated gallery answers after the pack is swapped."
                ],
            }
        )
    return tables


if __name__ == "__main__":
    if "--split" in sys.argv:
        n_train, n_held = split()
        print(f"train {n_train} identities, held out {n_held}")
    else:
        main_for(run, __doc__)
