"""Triplet (three minings) and contrastive losses against per-triplet / per-pair loops."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import build_loss


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(a * a for a in v))
    return [a / n for a in v]


def _sq(a: list[float], b: list[float]) -> float:
    return sum((p - q) ** 2 for p, q in zip(a, b, strict=True))


def _triplet_reference(x: torch.Tensor, y: list[int], margin: float, mining: str) -> float:
    f = [_unit(v) for v in x.tolist()]
    n = len(y)
    losses = []
    for a in range(n):
        pos = [p for p in range(n) if p != a and y[p] == y[a]]
        neg = [q for q in range(n) if y[q] != y[a]]
        if not pos or not neg:
            continue
        if mining == "batch-hard":
            d_ap = max(_sq(f[a], f[p]) for p in pos)
            d_an = min(_sq(f[a], f[q]) for q in neg)
            losses.append(max(0.0, d_ap - d_an + margin))
            continue
        for p in pos:
            for q in neg:
                d_ap, d_an = _sq(f[a], f[p]), _sq(f[a], f[q])
                if mining == "semi-hard" and not (d_ap < d_an < d_ap + margin):
                    continue
                losses.append(max(0.0, d_ap - d_an + margin))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("mining", ["all", "batch-hard", "semi-hard"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_the_loops(mining: str, margin: float) -> None:
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(12, 3, generator=gen, dtype=torch.float64) * 5
    y = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4]  # class 4 has no positive
    got = build_loss("triplet", 3, 5, margin=margin, mining=mining)(x, torch.tensor(y))
    expected = _triplet_reference(x, y, margin, mining)
    assert expected > 0
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_triplet_without_valid_triplets_is_zero_with_a_gradient() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    value = build_loss("triplet", 4, 3, mining="batch-hard")(x, torch.tensor([0, 1, 2]))
    value.backward()
    assert float(value.detach()) == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_hard_is_an_alias_of_batch_hard() -> None:
    assert build_loss("triplet", 4, 3, mining="hard").mining == "batch-hard"


@pytest.mark.parametrize("margin", [1.0, 1.7])
def test_contrastive_matches_the_pairs(margin: float) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    y = [0, 0, 1, 1, 1, 2, 2, 3, 0]
    f = [_unit(v) for v in x.tolist()]
    total, count = 0.0, 0
    for i in range(9):
        for j in range(i + 1, 9):
            d = math.sqrt(_sq(f[i], f[j]))
            total += 0.5 * d * d if y[i] == y[j] else 0.5 * max(0.0, margin - d) ** 2
            count += 1
    got = build_loss("contrastive", 4, 4, margin=margin)(x, torch.tensor(y))
    assert float(got) == pytest.approx(total / count, rel=1e-10)
