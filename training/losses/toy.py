"""The papers' toy experiment on scikit-learn's digits: a small network, a 2-D/3-D (or wider) embedding,
one loss. Used by ``marginface losses toy`` and by the convergence tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training.losses import build_loss

# Hyperparameters the 2-D/3-D toy uses instead of the catalogue defaults (see docs/losses.md): s = 64 is
# tuned for ~10⁵ classes, and CosFace's m = 0.35 cannot be met by 8 classes on a circle (neighbours 45°
# apart give at most 1 - cos 45° = 0.29); λ of SphereFace reaches its floor within the short run.
TOY_SETTINGS: dict[str, dict[str, object]] = {
    "normface": {"s": 16.0},
    "cosface": {"s": 30.0, "m": 0.2},
    "arcface": {"s": 30.0},
    "x2softmax": {"s": 30.0},
    "sphereface": {"lambda_gamma": 1.0},
    "lsoftmax": {"lambda_gamma": 1.0},
}


@dataclass
class DigitsSplit:
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def load_digits_split(num_classes: int = 10, test_fraction: float = 0.25, seed: int = 0) -> DigitsSplit:
    """sklearn's 8×8 digits (1797 images, shipped with scikit-learn), standardised, split per class."""
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = data.target < num_classes
    x = torch.tensor(data.data[keep], dtype=torch.float32)
    y = torch.tensor(data.target[keep], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    x, y = x[order], y[order]
    n_test = int(len(y) * test_fraction)
    mean, std = x[n_test:].mean(0), x[n_test:].std(0) + 1.0
    x = (x - mean) / std
    return DigitsSplit(x[n_test:], y[n_test:], x[:n_test], y[:n_test])


class EmbeddingNet(nn.Module):
    """MLP 64 → hidden → hidden → dim with PReLU (the toy backbone)."""

    def __init__(self, dim: int, hidden: int = 128, in_features: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.PReLU(hidden),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.PReLU(hidden),
            nn.Linear(hidden, dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


@dataclass
class ToyResult:
    name: str
    net: EmbeddingNet
    loss: nn.Module
    train_features: Tensor
    test_features: Tensor
    test_accuracy: float


def predict(loss: nn.Module, features: Tensor) -> Tensor:
    """Class predictions from the loss's margin-free scores."""
    scorer = loss.main if hasattr(loss, "main") else loss
    return scorer.scores(features).argmax(dim=1)


def train_toy(
    name: str,
    data: DigitsSplit,
    dim: int = 2,
    steps: int = 300,
    batch_size: int = 128,
    lr: float = 1e-2,
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
    **hyperparameters: object,
) -> ToyResult:
    """Train EmbeddingNet + loss ``name`` with Adam (cosine LR decay) and report test accuracy."""
    torch.manual_seed(seed)
    num_classes = int(data.y_train.max()) + 1
    net = EmbeddingNet(dim)
    loss = build_loss(name, dim, num_classes, **hyperparameters)
    optimizer = torch.optim.Adam([*net.parameters(), *loss.parameters()], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps))
    )
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    net.train()
    loss.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        value = loss(net(data.x_train[idx]), data.y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
        if on_step is not None:
            on_step()
    net.eval()
    loss.eval()
    with torch.no_grad():
        train_features, test_features = net(data.x_train), net(data.x_test)
        accuracy = float((predict(loss, test_features) == data.y_test).float().mean())
    return ToyResult(name, net, loss, train_features, test_features, accuracy)
