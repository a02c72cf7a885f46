"""The fine-tuning benchmark's plot: bars per model (held-out rank-1, TAR, LFW) and the held-out curve."""

from __future__ import annotations

import re
from pathlib import Path


def plot(rows: list[dict], curves: dict[str, list[list]], base: dict) -> Path:
    """Bars: held-out rank-1, TAR@FAR 1e-3 and LFW per model; lines: held-out metrics over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.results import BENCH_DIR

    path = BENCH_DIR / "img" / "finetune_sface_celeba.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), dpi=100)
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
        errors = [r.get("lfw_std") or 0.0 for r in rows] if key == "lfw" else None
        ax.bar(names, values, color=colours, yerr=errors, capsize=3)
        low, high = min(measured), max(measured)
        ax.set_ylim(low - max(1.0, (high - low)), high + max(0.5, (high - low) * 0.5))
        ax.axhline(base[key], color="grey", linestyle="--", linewidth=1)
        if key == "lfw":
            ax.axhline(base[key] - 0.3, color="red", linestyle=":", linewidth=1, label="base − 0.3")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
    ax = axes[3]
    if curves:
        _training_curves(ax, rows, curves, base, colours)
    else:
        _wise_curve(ax, rows, base)
    fig.suptitle("; ".join(f"{i}: {r['label']}" for i, r in enumerate(rows)), fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _training_curves(ax, rows: list[dict], curves: dict, base: dict, colours: list[str]) -> None:  # noqa: ANN001
    for i, row in enumerate(rows[1:], start=1):
        if row["label"] not in curves:  # WiSE-FT rows: no training curve
            continue
        points = [[0, base["rank1"], base["tar"]], *curves[row["label"]]]
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", color=colours[i], label=f"{i} rank-1")
        ax.plot(xs, [p[2] for p in points], marker="x", linestyle="--", color=colours[i], label=f"{i} TAR")
    ax.set_xlabel("training step (batch 32; 126 steps = 1 epoch)")
    ax.set_title("held-out during training (%)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2)


def _wise_curve(ax, rows: list[dict], base: dict) -> None:  # noqa: ANN001
    """Held-out rank-1 and TAR against the WiSE-FT α of each run (0 = the base, 1 = the fine-tuned run)."""
    for k, row in enumerate(rows[1:]):
        if "WiSE-FT" in row["label"]:
            continue
        name = row["label"].split(" (")[0]
        points = [(0.0, base["rank1"], base["tar"]), (1.0, row["rank1"], row["tar"])]
        for other in rows:
            found = re.search(r"WiSE-FT α ([0-9.]+)", other["label"])
            if found and other["label"].startswith(name + " +"):
                points.append((float(found.group(1)), other["rank1"], other["tar"]))
        points.sort()
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", color=f"C{k}", label=f"{name} rank-1")
        ax.plot(xs, [p[2] for p in points], marker="x", linestyle="--", color=f"C{k}", label=f"{name} TAR")
    ax.set_xlabel("WiSE-FT α (0 = default pack, 1 = fine-tuned)")
    ax.set_title("held-out (%) along the interpolation", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
