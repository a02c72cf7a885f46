"""Training: images/s of MarginFace's trainer beside a bare PyTorch loop, and the real CelebA → LFW runs.

    python -m bench.bench_training [--quick]        # throughput, plus the runs table
    python -m bench.bench_training --collect runs/celeba_mbf_softmax runs/celeba_mbf_cosface ... [--note TEXT]

Throughput: the trainer's ``fit()`` (JPEG decoding, loader worker, seeded flips, loss, clipping, schedule)
against the same backbone, loss and optimiser stepped on one batch already in memory: the bare loop is the
floor every trainer pays, so the gap is the trainer's own cost. On a GPU it adds iresnet50 at batch 128
with mixed precision (fp16 with a grad scaler, and bf16).

The runs table is read from ``bench/training_runs.json``, which ``--collect`` writes from finished run
folders (``metrics.csv``, ``checkpoint_last.pt``, and ``lfw.json`` from ``marginface eval bin --json``):
training a run takes far longer than a benchmark should, so its results are kept, with machine and date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.results import BENCH_DIR, machine, main_for
from training.run_log import read_metrics

RUNS_JSON = BENCH_DIR / "training_runs.json"
LOSS = {"name": "arcface", "s": 64.0, "m": 0.5}
CLASSES = 8
THROUGHPUT_NOTES = [
    "images/s: batch ÷ median step time after warm-up, for both (the trainer's steps from its own "
    "metrics.csv, logged every step). Loss: ArcFace (s 64, m 0.5) over 8 classes; SGD momentum 0.9, clip 5.",
    "The trainer reads 112×112 JPEGs from a folder through one loader worker (six on a GPU); the bare "
    "loop steps one batch already in memory, so the gap includes data loading.",
]
RUNS_NOTES = [
    "Same budget for every loss: the configs differ only in `loss:`. LFW through `marginface eval bin "
    "--engine onnx --flip` on a `.bin` made by `marginface data make-bin --face central`.",
    "Far below MS1MV3-scale results (an iresnet50 on 5.2M images reaches about 99.8% on LFW): these are "
    "5,004 crops of 250 identities for under 5 epochs on a 2-core CPU.",
]


def _synthetic_folder(root: Path, classes: int, per_class: int) -> Path:
    """A folder of identities with random 112×112 JPEGs: decoding cost as real, content irrelevant."""
    import cv2

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"id{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i:03d}.jpg"), image)
    return root


def _trainer_images_per_s(
    backbone: str, batch: int, steps: int, warmup: int, precision: str, device: str, data_root: Path
) -> float:
    from training.config import validate_config
    from training.trainer import Trainer

    cfg = validate_config(
        {
            "name": f"bench_{backbone}",
            "backbone": backbone,
            "loss": LOSS,
            "data": {"kind": "folder", "root": str(data_root), "workers": 1 if device == "cpu" else 6},
            "batch_size": batch,
            "optimizer": {"name": "sgd", "lr": 0.01},
            "schedule": {"name": "constant", "unit": "step"},
            "steps": warmup + steps,
            "precision": precision,
            "grad_clip": 5.0,
            "device": device,
            "channels_last": device != "cpu",
            "checkpoint": {"every_steps": 10**6, "keep_last": 1},
            "log_every": 1,
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        Trainer(cfg, out, progress=False).fit()
        rates = [float(row["images_per_s"]) for row in read_metrics(out, "images_per_s")]
    return statistics.median(rates[warmup:])


def _bare_loop_images_per_s(
    backbone_name: str, batch: int, steps: int, warmup: int, precision: str, device: str
) -> float:
    """Backbone + the same loss + SGD + clipping on one in-memory batch: no data loading at all."""
    import torch

    from training.backbones import build_backbone
    from training.losses import build_loss_from_config

    dev = torch.device(device)
    torch.manual_seed(0)
    backbone = build_backbone(backbone_name, embedding_size=512).to(dev)
    head = build_loss_from_config(dict(LOSS), 512, CLASSES).to(dev)
    params = [*backbone.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.rand(batch, 3, 112, 112, device=dev) * 2 - 1
    labels = torch.randint(0, CLASSES, (batch,), device=dev)
    if dev.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    amp = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def step() -> None:
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            embeddings = backbone(images)
        loss = head(embeddings.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(steps):
        sync()
        start = time.perf_counter()
        step()
        sync()
        seconds.append(time.perf_counter() - start)
    return batch / statistics.median(seconds)


def throughput_table(quick: bool) -> dict:
    import torch

    # (backbone, batch, timed steps, warm-up steps, precision, device)
    cases: list[tuple[str, int, int, int, str, str]] = [
        ("mobilefacenet", 32, 4 if quick else 12, 2, "fp32", "cpu")
    ]
    if not quick:
        cases.append(("iresnet50", 32, 3, 1, "fp32", "cpu"))
    if torch.cuda.is_available():
        cases += [("iresnet50", 128, 30, 10, p, "cuda") for p in ("fp16", "bf16")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        data_root = _synthetic_folder(Path(tmp), CLASSES, 40)
        for backbone, batch, steps, warmup, precision, device in cases:
            print(f"[bench_training] {backbone} b{batch} {precision} {device}", file=sys.stderr, flush=True)
            bare = _bare_loop_images_per_s(backbone, batch, steps, warmup, precision, device)
            ours = _trainer_images_per_s(backbone, batch, steps, warmup, precision, device, data_root)
            where = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
            rows.append([backbone, batch, precision, where, ours, bare, f"{(bare - ours) / bare:+.1%}"])
    notes = list(THROUGHPUT_NOTES)
    if not torch.cuda.is_available():
        notes.append(
            "No GPU in this run: iresnet50 at batch 128 with mixed precision needs one (it runs the "
            "fp16 and bf16 rows automatically where torch.cuda.is_available())."
        )
    return {
        "title": "Training throughput: MarginFace trainer vs a bare PyTorch loop",
        "columns": [
            "backbone",
            "batch",
            "precision",
            "device",
            "trainer images/s",
            "bare loop images/s",
            "trainer cost",
        ],
        "rows": rows,
        "notes": notes,
    }


def runs_table(path: Path = RUNS_JSON) -> dict:
    """The runs table from a JSON written by ``collect``."""
    title = "Real training runs: CelebA subset (250 identities) → LFW (open set)"
    if not path.exists():
        return {
            "title": title,
            "skipped": f"no {path.name}: run `python -m bench.bench_training --collect RUN…`",
        }
    saved = json.loads(path.read_text())
    rows = []
    for r in saved["runs"]:
        tar = " / ".join("–" if v is None else f"{100 * v:.1f}" for v in r["tar_at_far"].values())
        rows.append(
            [
                loss_label(r["loss_config"]),
                f"`{r['config']}`",
                f"{r['steps']} ({r['epochs']:.1f} ep)",
                f"{r['loss_first']:.2f} → {r['loss_last']:.2f}",
                r["train_images_per_s"],
                f"{r['images'] / r['train_images_per_s'] / 60:.1f}",
                f"**{100 * r['lfw_accuracy']:.2f} ± {100 * r['lfw_std']:.2f}**",
                tar,
                f"{r['roc_auc']:.3f}",
                f"{r['mean_cosine_same']:.3f} / {r['mean_cosine_different']:.3f}",
            ]
        )
    return {
        "title": title,
        "columns": [
            "loss",
            "config",
            "steps",
            "training loss first → last window",
            "train images/s",
            "train minutes",
            "LFW 10-fold accuracy %",
            "TAR % at FAR 1e-1 / 1e-2 / 1e-3",
            "ROC AUC",
            "mean cos same / different",
        ],
        "rows": rows,
        "notes": [f"Collected {saved['date']} on {saved['machine']}.", *saved.get("notes", [])],
        "plots": [str(path.parent / p) for p in saved.get("plots", [])],
    }


def _read_run(run: Path) -> dict:
    import torch

    from training.config import validate_config
    from training.data_setup import build_dataset

    state = torch.load(run / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    cfg = state["config"]
    rows = read_metrics(run)
    lfw = json.loads((run / "lfw.json").read_text())
    images = state["step"] * cfg["batch_size"] * state["world_size"]
    rates = [float(r["images_per_s"]) for r in rows[1:]]  # the first window holds loader start-up
    return {
        "loss_config": cfg["loss"],
        "config": f"configs/{cfg['name']}.yaml",
        "steps": state["step"],
        "images": images,
        "epochs": images / len(build_dataset(validate_config(cfg))),
        "loss_first": float(rows[0]["loss"]),
        "loss_last": float(rows[-1]["loss"]),
        "train_images_per_s": round(statistics.median(rates), 1),
        "lfw_accuracy": lfw["accuracy"],
        "lfw_std": lfw["accuracy_std"],
        "tar_at_far": {
            k: (v["tar"] if v else None)
            for k, v in lfw["tar_at_far"].items()
            if k in ("0.1", "0.01", "0.001")
        },
        "roc_auc": lfw["roc_auc"],
        "mean_cosine_same": lfw["mean_cosine_same"],
        "mean_cosine_different": lfw["mean_cosine_different"],
        "flip": lfw["flip"],
        "pair_scores": lfw.get("pair_scores"),
    }


def loss_label(loss_cfg: dict) -> str:
    """``arcface s=64 m=0.5``: the loss and its hyperparameters, as a table row or legend names them."""
    params = " ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in loss_cfg.items() if k != "name"
    )
    return f"{loss_cfg['name']} {params}".strip()


def collect(
    run_dirs: list[Path],
    out: Path = RUNS_JSON,
    img_dir: Path = BENCH_DIR / "img",
    notes: list[str] | None = None,
) -> Path:
    """Summarise finished runs into ``bench/training_runs.json`` and draw the comparison plots; ``notes``
    (how a run differs from its config, say) go under the table."""
    from bench.training_plots import plot_runs

    runs = [_read_run(Path(d)) for d in run_dirs]
    plots = plot_runs(runs, [Path(d) for d in run_dirs], img_dir)
    out.write_text(
        json.dumps(
            {
                "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d}",
                "machine": machine(),
                "runs": runs,
                "plots": [os.path.relpath(p, out.parent) for p in plots],
                "notes": [*RUNS_NOTES, *(notes or [])],
            },
            indent=2,
        )
        + "\n"
    )
    return out


def run(quick: bool) -> list[dict]:
    return [throughput_table(quick), runs_table()]


def _collect_main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.bench_training --collect")
    parser.add_argument("--collect", nargs="+", type=Path, metavar="RUN", required=True)
    parser.add_argument("--note", action="append", default=[], help="a line under the table (repeatable)")
    args = parser.parse_args(argv)
    print(collect(args.collect, notes=args.note))


if __name__ == "__main__":
    if "--collect" in sys.argv:
        _collect_main(sys.argv[1:])
    else:
        main_for(run, __doc__)
