"""``marginface eval ijb``: IJB-B / IJB-C template verification (TAR@FAR table and ROC)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Attach ``ijb`` to the ``eval`` group (created by cli.eval_cmd / cli.eval_train_cmd)."""
    from cli.eval_train_cmd import add_checkpoint_option
    from cli.inference_cmd import add_pipeline_options

    evaluate = subparsers.choices.get("eval")
    if evaluate is None:
        return
    commands = next(a for a in evaluate._actions if isinstance(a, argparse._SubParsersAction))
    p = commands.add_parser(
        "ijb",
        help="IJB-B/IJB-C 1:1 template verification: TAR@FAR 1e-6…1e-1 and ROC (insightface's protocol)",
        description="ROOT holds meta/<set>_face_tid_mid.txt, <set>_template_pair_label.txt, "
        "<set>_name_5pts_score.txt and loose_crop/. Images are aligned with the meta landmarks, embedded "
        "with their mirror, weighted by face score, pooled per media then per template.",
    )
    p.add_argument("root", type=Path, help="the IJB folder (e.g. IJB_release/IJBC)")
    p.add_argument("--set", default="ijbc", choices=["ijbb", "ijbc"], help="meta file prefix (default ijbc)")
    p.add_argument("--no-flip", action="store_true", help="no mirrored view")
    p.add_argument("--no-face-score", action="store_true", help="no face-score weighting")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the table (and pair scores) to this file")
    p.add_argument("--roc", type=Path, metavar="PNG", help="plot the ROC here")
    add_pipeline_options(p)
    add_checkpoint_option(p)
    p.set_defaults(func=run_ijb)


def run_ijb(args: argparse.Namespace) -> int:
    from cli.eval_train_cmd import apply_checkpoint
    from cli.inference_cmd import load_pipeline
    from models.evaluation.ijb import evaluate_ijb

    pipeline = apply_checkpoint(load_pipeline(args), args)
    report = evaluate_ijb(
        args.root,
        pipeline.embed_crops,
        args.set,
        flip=not args.no_flip,
        face_score=not args.no_face_score,
        progress=lambda line: print(f"{args.set}: {line}", flush=True),
    )
    print(
        f"{args.set.upper()} ({report['templates']} templates, {report['pairs']} pairs, "
        f"flip {not args.no_flip}, face score {not args.no_face_score})"
    )
    print("FAR      " + " ".join(f"{far:>8}" for far in report["tar_at_far"]))
    print(
        "TAR (%)  "
        + " ".join(
            f"{v * 100:8.2f}" if v is not None else f"{'n/a':>8}" for v in report["tar_at_far"].values()
        )
    )
    if args.json:
        out = {k: v for k, v in report.items() if k not in ("scores", "roc")}
        out["scores"] = [round(float(s), 6) for s in report["scores"]]
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    if args.roc:
        _plot(report, args.roc)
    return 0


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr = report["roc"]["fpr"], report["roc"]["tpr"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(fpr[1:], tpr[1:])
    ax.set_xscale("log")
    ax.set_xlabel("FAR")
    ax.set_ylabel("TAR")
    ax.set_title(f"{report['set'].upper()} ROC")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
