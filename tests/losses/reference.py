"""Independent per-sample recomputation of docs/losses.md in plain Python floats (float64)."""

from __future__ import annotations

import math

import torch


def rows(t: torch.Tensor) -> list:
    return t.detach().double().tolist()


def norm(v: list[float]) -> float:
    return math.sqrt(sum(a * a for a in v))


def cosine(x: list[float], w: list[float]) -> float:
    nx, nw = norm(x), norm(w)
    if nx == 0 or nw == 0:
        return 0.0
    return max(-1.0, min(1.0, sum(a * b for a, b in zip(x, w, strict=True)) / (nx * nw)))


def psi(theta: float, m: int) -> float:
    k = min(int(theta * m / math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def arc(c: float, m: float, easy: bool = False, fallback: bool = True) -> float:
    theta = math.acos(c)
    if easy:
        return math.cos(theta + m) if c > 0 else c
    if not fallback or c > math.cos(math.pi - m):
        return math.cos(theta + m)
    return c - math.sin(math.pi - m) * m


def cross_entropy(logits: list[list[float]], labels: list[int]) -> float:
    total = 0.0
    for row, y in zip(logits, labels, strict=True):
        top = max(row)
        total += top + math.log(sum(math.exp(v - top) for v in row)) - row[y]
    return total / len(labels)


def target_fn(name: str, hp: dict, c: float, xn: float, state: dict, i: int) -> float:
    """f(cos θ_y) for the ScaledCosine-style losses (before the scale)."""
    theta = math.acos(c)
    if name == "normface" or name == "adacos":
        return c
    if name in ("cosface", "amsoftmax"):
        return c - hp["m"]
    if name in ("arcface", "subcenter-arcface", "curricularface"):
        return arc(c, hp["m"], hp.get("easy_margin", False), hp.get("fallback", True))
    if name == "combined":
        m1, m2, m3 = hp["m1"], hp["m2"], hp["m3"]
        theta0 = (math.pi - m2) / m1
        if theta0 >= math.pi or c > math.cos(theta0):
            return math.cos(m1 * theta + m2) - m3
        return c - math.cos(theta0) - 1 - m3
    if name == "x2softmax":
        return hp["a"] * (theta - hp["h"]) ** 2 + hp["k"]
    if name == "magface":
        a = min(max(xn, hp["l_a"]), hp["u_a"])
        m = (hp["u_m"] - hp["l_m"]) / (hp["u_a"] - hp["l_a"]) * (a - hp["l_a"]) + hp["l_m"]
        return arc(c, m)
    if name.startswith("elasticface"):
        m = state["margins"][i]
        return c - m if name.startswith("elasticface-cos") else arc(c, m)
    if name == "adaface":
        safe = min(max(xn, 0.001), 100.0)
        z = max(-1.0, min(1.0, hp["h"] * (safe - state["mean"]) / (state["std"] + 1e-3)))
        t = min(max(theta - hp["m"] * z, 1e-3), math.pi - 1e-3)
        return math.cos(t) - (hp["m"] + hp["m"] * z)
    raise KeyError(name)


def logits(name: str, hp: dict, x: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, state: dict):
    """The [B][C] logits of loss ``name`` by the formulas, one sample and one class at a time."""
    xs, ws, ys = rows(x), rows(weight), labels.tolist()
    out = []
    for i, (xi, y) in enumerate(zip(xs, ys, strict=True)):
        xn = norm(xi)
        if name == "subcenter-arcface":
            cos = [max(cosine(xi, sub) for sub in wj) for wj in ws]
        else:
            cos = [cosine(xi, wj) for wj in ws]
        row = []
        for j, c in enumerate(cos):
            if name == "softmax":
                row.append(sum(a * b for a, b in zip(xi, ws[j], strict=True)) + state["bias"][j])
            elif name in ("lsoftmax", "sphereface"):
                mag = xn * (norm(ws[j]) if name == "lsoftmax" else 1.0)
                lam = state["lambda"]
                value = (lam * c + psi(math.acos(c), hp["m"])) / (1 + lam) if j == y else c
                row.append(mag * value)
            elif name == "airface":
                theta = math.acos(c) + (hp["m"] if j == y else 0.0)
                row.append(hp["s"] * (math.pi - 2 * theta) / math.pi)
            elif name == "adacos":
                row.append(state["scale"] * c)
            elif j == y:
                row.append(hp["s"] * target_fn(name, hp, c, xn, state, i))
            elif name == "curricularface" and c > math.cos(math.acos(cos[y]) + hp["m"]):
                row.append(hp["s"] * c * (state["t"] + c))
            else:
                row.append(hp["s"] * c)
        out.append(row)
    return out


def magface_penalty(hp: dict, x: torch.Tensor) -> float:
    total = 0.0
    for xi in rows(x):
        a = min(max(norm(xi), hp["l_a"]), hp["u_a"])
        total += hp["lambda_g"] * (a / hp["u_a"] ** 2 + 1 / a)
    return total / x.shape[0]
