"""Fine-tuning the default model (SFace) on CelebA identities: before/after on held-out identities and LFW.

Every model is measured in the same run, on the same crops: the default pack's SFace (imported into
PyTorch, parity ≥ 0.9999 with the served graph) and each fine-tuned checkpoint of ``RUNS``. Held-out
identities: every 5th of the 250 CelebA identities (50), never trained on. 1:N rank-1: the first crop of
each held-out identity is its gallery entry, every other crop a probe. TAR@FAR 1e-3: all pairs of held-out
crops. LFW: the 6,000 official pairs, 10 folds. Compatibility: gallery embedded by the old (base) model,
probes by the new one. Flip TTA everywhere; embeddings run in ONNX Runtime (exported backbones).
Each fine-tuned run is measured at its last checkpoint; its earlier step checkpoints (every half epoch)
give the held-out curve (shown, never used to pick a model).

Prepare (see docs/training.md): ``marginface data align`` CelebA into ``ALIGNED``, ``marginface data
make-bin`` LFW into ``LFW_BIN``, ``python -m bench.bench_finetune --split``, then train each config.
Embeddings are cached in bench/out/finetune: run once without ``--write`` (niced, slow), then with
``--write`` under the bench lock (reads the cache).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.results import OUT_DIR, main_for

WORK = OUT_DIR / "finetune"  # aligned crops, the split and LFW's bin (the configs' data roots point here)
ALIGNED = Path(os.environ.get("MF_CELEBA_ALIGNED", WORK / "celeba-aligned"))
TRAIN = Path(os.environ.get("MF_CELEBA_TRAIN", WORK / "celeba-train"))
HELD = Path(os.environ.get("MF_CELEBA_HELDOUT", WORK / "celeba-heldout"))
LFW_BIN = Path(os.environ.get("MF_LFW_BIN", WORK / "lfw.bin"))
RUNS = Path(os.environ.get("MF_FT_RUNS", "runs"))
HELD_OUT_EVERY = 5
FINETUNED = [
    ("ArcFace (s 32, m 0.35), 1 epoch", "celeba_sface_ft_arcface"),
    ("CosFace (s 32, m 0.25), 1 epoch", "celeba_sface_ft_cosface"),
    ("ArcFace + compatibility (cosine, w 10), 1 epoch", "celeba_sface_ft_arcface_compat"),
]
BASE_LABEL = "default pack SFace (before)"
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


def _held_out_crops() -> tuple[np.ndarray, np.ndarray]:
    from training.evaluation.ident_folders import list_identity_images, read_aligned_crops

    paths, names = list_identity_images(HELD)
    _, labels = np.unique(np.array(names), return_inverse=True)
    return read_aligned_crops(paths), labels


def _checkpoints(run: str) -> list[Path]:
    """The run's step checkpoints in step order; ``checkpoint_last.pt`` alone when there are none."""
    steps = sorted((RUNS / run).glob(STEP_FILE))
    last = RUNS / run / "checkpoint_last.pt"
    return steps or ([last] if last.is_file() else [])


def _complete(run: str) -> bool:
    """The run reached the end its config asks for (a run still training is left out)."""
    from training.checkpoint import load_checkpoint

    checkpoints = _checkpoints(run)
    if not checkpoints:
        return False
    state = load_checkpoint(checkpoints[-1])
    cfg = state["config"]
    if cfg.get("steps"):
        return int(state["step"]) >= int(cfg["steps"])
    return int(state["epoch"]) >= int(cfg["epochs"] or 1) and int(state["batch_in_epoch"]) == 0


def _step_of(path: Path) -> int:
    from training.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["step"])


def _loader(path: Path):
    from training.evaluation.embed import load_backbone

    return lambda: load_backbone(path)[0]


def _backbones() -> list[tuple[str, Path, object]]:
    """(label, weights file, loader) of the base model and of each fine-tuned run's last checkpoint."""
    from training.finetune.init import recogniser_onnx
    from training.onnx_import import import_onnx

    onnx = recogniser_onnx("default")
    found = [(BASE_LABEL, onnx, lambda: import_onnx(onnx)[0].eval())]
    for label, run in FINETUNED:
        if _complete(run):
            last = _checkpoints(run)[-1]
            found.append((label, last, _loader(last)))
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

    threads = int(os.environ.get("MF_FT_THREADS", "0")) or None  # ONNX Runtime threads (default: all)
    onnx = OnnxBackbone(backbone, work, threads=threads)
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


def _embed_fn(load, work: str):  # noqa: ANN001
    """crops → embeddings, the ONNX export built on first use (a cached model is never exported)."""
    embedder: list = []

    def embed(crops):  # noqa: ANN001
        if not embedder:
            embedder.append(_embedder(load(), work))
        return embedder[0](crops)

    return embed


def _curve(run: str, crops: np.ndarray, labels: np.ndarray, first: np.ndarray, work: str) -> list[list]:
    """[step, rank-1, TAR] of every step checkpoint of ``run`` on the held-out identities."""
    points = []
    for path in _checkpoints(run):
        embed = _embed_fn(_loader(path), work)
        emb = _cached(f"heldout{len(labels)}", path, lambda embed=embed: embed(crops))
        rank1 = _rank1(emb[first], labels[first], emb[~first], labels[~first])
        points.append([_step_of(path), rank1 * 100, _tar_at_far(emb, labels) * 100])
    return points


def _plot(rows: list[dict], curves: dict[str, list[list]], base: dict) -> Path:
    """Bars: held-out rank-1, TAR@FAR 1e-3 and LFW per model; lines: held-out metrics over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.results import BENCH_DIR

    path = BENCH_DIR / "img" / "finetune_sface_celeba.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), dpi=100)
    names = [f"{i}" for i in range(len(rows))]
    colours = [f"C{i}" for i in range(len(rows))]
    for ax, key, title in zip(
        axes[:3],
        ("rank1", "tar", "lfw"),
        ("held-out rank-1 (%)", "held-out TAR@FAR 1e-3 (%)", "LFW accuracy (%)"),
        strict=True,
    ):
        measured = [r[key] for r in rows if r[key] is not None]
        if base[key] is None:
            ax.set_title(f"{title}: not measured")
            continue
        values = [float("nan") if r[key] is None else r[key] for r in rows]  # no bar: not measured
        errors = [r.get("lfw_std", 0.0) for r in rows] if key == "lfw" else None
        ax.bar(names, values, color=colours, yerr=errors, capsize=3)
        low, high = min(measured), max(measured)
        ax.set_ylim(low - max(1.0, (high - low)), high + max(0.5, (high - low) * 0.5))
        ax.axhline(base[key], color="grey", linestyle="--", linewidth=1)
        if key == "lfw":
            ax.axhline(base[key] - 0.3, color="red", linestyle=":", linewidth=1, label="base − 0.3")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
    ax = axes[3]
    for i, row in enumerate(rows[1:], start=1):
        points = [[0, base["rank1"], base["tar"]], *curves.get(row["label"], [])]
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", color=colours[i], label=f"{i} rank-1")
        ax.plot(xs, [p[2] for p in points], marker="x", linestyle="--", color=colours[i], label=f"{i} TAR")
    ax.set_xlabel("training step (batch 32; 126 steps = 1 epoch)")
    ax.set_title("held-out during training (%)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.suptitle("; ".join(f"{i}: {r['label']}" for i, r in enumerate(rows)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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
    results: list[dict] = []
    compat_rows, curves, base_emb = [], {}, None
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as work:
        for k, (label, weights, load) in enumerate(_backbones()):
            embed = _embed_fn(load, work)
            emb = _cached(f"heldout{len(labels)}", weights, lambda embed=embed: embed(crops))
            result = {
                "label": label,
                "rank1": _rank1(emb[first], labels[first], emb[~first], labels[~first]) * 100,
                "tar": _tar_at_far(emb, labels) * 100,
                "lfw": None,
            }
            held_up = k == 0 or (result["rank1"] > results[0]["rank1"] and result["tar"] > results[0]["tar"])
            if lfw is not None and (held_up or not os.environ.get("MF_FT_LFW_IF_HELD_OUT")):
                images, issame = lfw
                cos = _cached(
                    "lfw",
                    weights,
                    lambda embed=embed, images=images: pair_cosines(embed_bin_images(embed, images)),
                )
                report = verification_report(cos, issame)
                result["lfw"], result["lfw_std"] = report["accuracy"] * 100, report["accuracy_std"] * 100
            results.append(result)
            print(result, file=sys.stderr, flush=True)
            if k == 0:
                base_emb = emb
                continue
            assert base_emb is not None
            if not os.environ.get("MF_FT_NO_CURVES"):
                curves[label] = _curve(_run_of(label), crops, labels, first, work)
            cross = _rank1(base_emb[first], labels[first], emb[~first], labels[~first])
            cross_tar = _tar_at_far(emb, labels, other=base_emb)
            drift = float(np.mean(np.sum(emb * base_emb, axis=1)))
            compat_rows.append(
                [
                    label,
                    f"{cross * 100:.2f}",
                    f"{cross_tar * 100:.2f}",
                    f"{result['rank1']:.2f}",
                    f"{drift:.3f}",
                ]
            )
    base = results[0]

    def delta(value: float | None, ref: float | None) -> str:
        return "–" if value is None or ref is None else f"{value - ref:+.2f}"

    rows = []
    for r in results:
        lfw_cell = "not measured" if r["lfw"] is None else f"{r['lfw']:.2f} ± {r['lfw_std']:.2f}"
        if r["lfw"] is None and r is not base and not (r["rank1"] > base["rank1"] and r["tar"] > base["tar"]):
            lfw_cell = "not measured (held-out goal missed; CPU time went to the others)"
        goal = ""
        if r is not base:
            held = r["rank1"] > base["rank1"] and r["tar"] > base["tar"]
            lfw_ok = r["lfw"] is not None and r["lfw"] >= base["lfw"] - 0.3
            goal = "yes" if held and lfw_ok else "no" if r["lfw"] is not None or not held else "LFW missing"
        rows.append(
            [
                r["label"],
                f"{r['rank1']:.2f} ({delta(r['rank1'], base['rank1'])})"
                if r is not base
                else f"{r['rank1']:.2f}",
                f"{r['tar']:.2f} ({delta(r['tar'], base['tar'])})" if r is not base else f"{r['tar']:.2f}",
                lfw_cell if r is base else f"{lfw_cell} ({delta(r['lfw'], base['lfw'])})",
                goal,
            ]
        )
    n_ids = len(np.unique(labels))
    notes = [
        f"Held out: {n_ids} CelebA identities, {len(labels)} aligned crops ({int(first.sum())} gallery, "
        f"{int((~first).sum())} probes); trained on the other {len(list(TRAIN.iterdir()))} identities.",
        "Configs: configs/celeba_sface_finetune_{arcface,cosface,arcface_compat}.yaml: 1 epoch (126 steps "
        "of batch 32 over the 4,043 training crops), body.0-19 frozen, BN statistics kept, backbone at 0.1x "
        "the head's lr after 10 head-only steps and a 30-step ramp, poly decay. Each run is measured at its "
        "last step (no checkpoint picked by held-out numbers).",
        "Goal (issue 13): held-out rank-1 and TAR both above the base, LFW at most 0.3 points below it.",
        "LFW: official 6,000 pairs, 10-fold accuracy ± std over folds, flip TTA; 0.3 points is about one "
        "fold standard error here, so small differences are noise.",
    ]
    if base["lfw"] is None:
        notes.append(
            "LFW not measured in this run. The first session's 100-step runs (configs of commit df8af2d, "
            "2026-12-01 16:47 UTC) measured LFW 99.35 ± 0.40 (base) → 99.50 (ArcFace), 99.50 (CosFace), "
            "99.48 (ArcFace + compatibility w 1), held-out rank-1 82.22 → 82.88 / 83.10 / 82.88 and TAR "
            "81.14 → 79.62 / 80.29 / 80.18: see docs/training.md §7."
        )
    plots = [str(_plot(results, curves, base))] if not quick else []
    tables = [
        {
            "title": "Fine-tuning SFace on CelebA: held-out identities and LFW, before and after",
            "columns": [
                "model",
                "held-out rank-1 (%)",
                "held-out TAR@FAR 1e-3 (%)",
                "LFW accuracy (%)",
                "goal met",
            ],
            "rows": rows,
            "notes": notes,
            "plots": plots,
        }
    ]
    if curves:
        tables.append(
            {
                "title": "Fine-tuning SFace: held-out identities during training",
                "columns": ["run", "step", "epoch", "held-out rank-1 (%)", "held-out TAR@FAR 1e-3 (%)"],
                "rows": [["base", 0, "0", f"{base['rank1']:.2f}", f"{base['tar']:.2f}"]]
                + [
                    [label, step, f"{step / 126:.1f}", f"{r1:.2f}", f"{tar:.2f}"]
                    for label, points in curves.items()
                    for step, r1, tar in points
                ],
                "notes": ["Every saved step checkpoint (half an epoch apart); shown, not used to choose."],
            }
        )
    if compat_rows:
        tables.append(
            {
                "title": "Fine-tuning SFace: old gallery, new probes (backward compatibility)",
                "columns": [
                    "new model",
                    "rank-1, base-model gallery (%)",
                    "TAR@FAR 1e-3, base vs new embeddings (%)",
                    "rank-1, own gallery (%)",
                    "mean cos(new, base) per crop",
                ],
                "rows": compat_rows,
                "notes": [
                    "Gallery crops embedded by the default pack, probes by the fine-tuned model: what an "
                    "un-migrated gallery answers after the pack is swapped. TAR: every pair of held-out "
                    "crops, one side embedded by each model."
                ],
            }
        )
    return tables


def _run_of(label: str) -> str:
    return dict(FINETUNED)[label]


if __name__ == "__main__":
    if "--split" in sys.argv:
        n_train, n_held = split()
        print(f"train {n_train} identities, held out {n_held}")
    else:
        main_for(run, __doc__)
