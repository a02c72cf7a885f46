"""Pictures of the catalogue (matplotlib, Agg): target logit vs θ, decision margin vs the angle between
class centres, and the toy experiment's learned features."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from training.losses.curves import curve_losses, decision_margin, other_over_scale, target_over_scale


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_target_logits(path: Path) -> Path:
    """Target logit / s against θ (degrees), every loss on one figure (as the X2-Softmax paper draws it)."""
    plt = _pyplot()
    theta = torch.linspace(0, math.pi, 721, dtype=torch.float64)
    degrees = torch.rad2deg(theta).numpy()
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=100)
    for label, loss, options in curve_losses():
        if "band" in options:
            low, high = (target_over_scale(loss, theta, n).numpy() for n in options["band"])
            middle = target_over_scale(loss, theta, options["x_norm"]).numpy()
            line = ax.plot(degrees, middle, lw=1.6, label=label)[0]
            ax.fill_between(degrees, low, high, color=line.get_color(), alpha=0.18, lw=0)
        else:
            ax.plot(degrees, target_over_scale(loss, theta).numpy(), lw=1.6, label=label)
    airface_other = other_over_scale(curve_losses()[5][1], theta).numpy()
    ax.plot(degrees, airface_other, color="0.5", lw=1, ls=":", label="airface non-target (π - 2θ)/π")
    ax.set(xlim=(0, 180), ylim=(-2.1, 1.05), xlabel="θ (degrees) between the embedding and its class centre")
    ax.set_ylabel("target logit / s")
    ax.set_xticks(range(0, 181, 30))
    ax.axhline(0, color="0.8", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="lower left")
    ax.set_title("Target logit of each loss (non-target logits are cos θ_j)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_margins(path: Path) -> Path:
    """Angular gap between two classes' decision regions against the angle φ between their centres."""
    plt = _pyplot()
    phi = torch.linspace(1e-3, math.pi, 541, dtype=torch.float64)
    degrees = torch.rad2deg(phi).numpy()
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=100)
    for label, loss, options in curve_losses():
        if "band" in options:
            low, high = (torch.rad2deg(decision_margin(loss, phi, n)).numpy() for n in options["band"])
            middle = torch.rad2deg(decision_margin(loss, phi, options["x_norm"])).numpy()
            line = ax.plot(degrees, middle, lw=1.6, label=label)[0]
            ax.fill_between(degrees, low, high, color=line.get_color(), alpha=0.18, lw=0)
        else:
            ax.plot(degrees, torch.rad2deg(decision_margin(loss, phi)).numpy(), lw=1.6, label=label)
    ax.set(xlim=(0, 180), ylim=(-2, 80), xlabel="φ (degrees) between the two class centres")
    ax.set_ylabel("angular margin between the decision regions (degrees)")
    ax.set_xticks(range(0, 181, 30))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title("Decision margin vs angle between class centres (boundary: f(θ1) = g(φ - θ1))")
    ax.text(
        178, 1, "a curve starts at the φ where a class can first win at its own centre: f(0) = g(φ)",
        ha="right", va="bottom", fontsize=7.5, color="0.35",
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def angular_spread(features: Tensor, labels: Tensor) -> list[float]:
    """Per class: mean angle (degrees) between its unit features and their mean direction."""
    unit = torch.nn.functional.normalize(features.float(), dim=1)
    spreads = []
    for c in range(int(labels.max()) + 1):
        members = unit[labels == c]
        centre = torch.nn.functional.normalize(members.mean(0), dim=0)
        spreads.append(float(torch.rad2deg(torch.acos((members @ centre).clamp(-1, 1))).mean()))
    return spreads


def plot_toy(
    results: Sequence[tuple[str, Tensor, Tensor, float]],
    path: Path,
    dim: int = 2,
    columns: int = 3,
    title: str = "",
) -> Path:
    """One panel per loss: (name, features, labels, test accuracy). 2-D: features scaled into the unit
    disk (radial spread visible) with the unit circle; 3-D: unit features on the sphere."""
    plt = _pyplot()
    rows = math.ceil(len(results) / columns)
    fig = plt.figure(figsize=(3.6 * columns, 3.75 * rows), dpi=80)
    cmap = plt.get_cmap("tab10")
    for i, (name, features, labels, accuracy) in enumerate(results):
        spreads = angular_spread(features, labels)
        colors = [cmap(int(c) % 10) for c in labels]
        if dim == 3:
            ax = fig.add_subplot(rows, columns, i + 1, projection="3d")
            unit = torch.nn.functional.normalize(features.float(), dim=1).numpy()
            ax.scatter(unit[:, 0], unit[:, 1], unit[:, 2], c=colors, s=3, alpha=0.6, depthshade=False)
            ax.set_box_aspect((1, 1, 1))
            ax.set_axis_off()
        else:
            ax = fig.add_subplot(rows, columns, i + 1)
            norms = features.norm(dim=1)
            shown = (features / norms.quantile(0.98).clamp_min(1e-12)).numpy()
            circle = torch.linspace(0, 2 * math.pi, 200)
            ax.plot(torch.cos(circle).numpy(), torch.sin(circle).numpy(), color="0.75", lw=0.8)
            ax.scatter(shown[:, 0], shown[:, 1], c=colors, s=3, alpha=0.6, linewidths=0)
            ax.set(xlim=(-1.15, 1.15), ylim=(-1.15, 1.15), aspect="equal", xticks=[], yticks=[])
        text = " ".join(f"{s:.0f}" for s in spreads)
        ax.set_title(
            f"{name}  (test acc {accuracy:.2f})\nmean angular spread {sum(spreads) / len(spreads):.1f}°\n"
            f"per class (°): {text}",
            fontsize=8,
        )
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
