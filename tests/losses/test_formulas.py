"""Every classification loss against the formulas of docs/losses.md, recomputed per sample in float64."""

from __future__ import annotations

import math

import pytest
import torch

from tests.losses import reference as ref
from training.losses import build_loss

MAGFACE = {"s": 64.0, "l_a": 10.0, "u_a": 110.0, "l_m": 0.45, "u_m": 0.8, "lambda_g": 35.0}
CASES = [
    ("softmax", {}),
    ("normface", {"s": 30.0}),
    ("normface", {"s": 5.0}),
    ("lsoftmax", {"m": 4}),
    ("lsoftmax", {"m": 2, "fixed_lambda": 0.0}),
    ("lsoftmax", {"m": 3, "fixed_lambda": 1.5}),
    ("sphereface", {"m": 4}),
    ("sphereface", {"m": 3, "fixed_lambda": 0.0}),
    ("cosface", {"s": 64.0, "m": 0.35}),
    ("amsoftmax", {"s": 30.0, "m": 0.35}),
    ("cosface", {"s": 10.0, "m": 0.6}),
    ("arcface", {"s": 64.0, "m": 0.5}),
    ("arcface", {"s": 16.0, "m": 0.8, "easy_margin": True}),
    ("arcface", {"s": 8.0, "m": 1.2, "fallback": False}),
    ("arcface", {"s": 8.0, "m": 1.2}),
    ("combined", {"s": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2}),
    ("combined", {"s": 20.0, "m1": 1.35, "m2": 0.5, "m3": 0.1}),
    ("combined", {"s": 20.0, "m1": 0.9, "m2": 0.2, "m3": 0.0}),
    ("airface", {"s": 64.0, "m": 0.45}),
    ("airface", {"s": 5.0, "m": 1.0}),
    ("adacos", {"dynamic": False}),
    ("adacos", {"dynamic": True}),
    ("x2softmax", {"s": 64.0, "a": -0.9, "h": 0.0, "k": 0.65}),
    ("x2softmax", {"s": 10.0, "a": -0.5, "h": -0.2, "k": 1.1}),
    ("magface", MAGFACE),
    ("magface", {"s": 32.0, "l_a": 5.0, "u_a": 60.0, "l_m": 0.3, "u_m": 0.6, "lambda_g": 50.0}),
    ("elasticface-arc", {"s": 64.0, "m": 0.5, "sigma": 0.05}),
    ("elasticface-cos", {"s": 64.0, "m": 0.35, "sigma": 0.05}),
    ("elasticface-arc+", {"s": 30.0, "m": 0.4, "sigma": 0.0175}),
    ("elasticface-cos+", {"s": 30.0, "m": 0.3, "sigma": 0.02}),
    ("curricularface", {"s": 64.0, "m": 0.5}),
    ("curricularface", {"s": 30.0, "m": 0.3}),
    ("adaface", {"s": 64.0, "m": 0.4, "h": 0.333}),
    ("adaface", {"s": 30.0, "m": 0.5, "h": 1.0}),
    ("subcenter-arcface", {"s": 64.0, "m": 0.5, "k": 3}),
    ("subcenter-arcface", {"s": 30.0, "m": 0.3, "k": 2}),
]


def _data(seed: int, loss: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch, dim = 12, 4
    x = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    x = (
        x
        / x.norm(dim=1, keepdim=True)
        * torch.empty(batch, 1, dtype=torch.float64).uniform_(0.5, 130, generator=gen)
    )
    with torch.no_grad():
        w = torch.randn(loss.weight.shape, generator=gen, dtype=torch.float64)
        loss.weight.copy_(w * torch.empty(w.shape[0], *[1] * (w.dim() - 1)).uniform_(0.3, 2.0, generator=gen))
    labels = torch.randint(0, loss.num_classes, (batch,), generator=gen)
    return x, labels


def _state(name: str, hp: dict, loss: torch.nn.Module, seed: int) -> dict:
    """Put the stateful losses in a non-trivial state and return it for the reference."""
    state: dict = {}
    with torch.no_grad():
        if name == "softmax":
            loss.bias.copy_(torch.linspace(-0.5, 0.5, loss.num_classes))
            state["bias"] = loss.bias.tolist()
        if name in ("lsoftmax", "sphereface"):
            loss.iteration.fill_(7 * seed)
            t = 7 * seed
            state["lambda"] = hp.get("fixed_lambda", max(5.0, 1000.0 / (1.0 + 0.12 * t)))
        if name == "adacos":
            if hp["dynamic"]:
                loss.scale.fill_(7.3)
            state["scale"] = 7.3 if hp["dynamic"] else math.sqrt(2) * math.log(loss.num_classes - 1)
        if name == "curricularface":
            loss.t.fill_(0.4 if hp["m"] == 0.5 else 0.0)
            state["t"] = float(loss.t)
        if name == "adaface":
            if hp["h"] == 1.0:
                loss.norm_mean.fill_(30.0)
                loss.norm_std.fill_(15.0)
            state["mean"], state["std"] = float(loss.norm_mean), float(loss.norm_std)
    return state


# Only ElasticFace's logits differ between train and eval mode (random margins).
RUNS = [(n, hp, False) for n, hp in CASES] + [(n, hp, True) for n, hp in CASES if n.startswith("elastic")]


@pytest.mark.parametrize(
    ("name", "hp", "train_mode"), RUNS, ids=[f"{n}-{i}{'-train' * t}" for i, (n, _, t) in enumerate(RUNS)]
)
def test_logits_and_loss_match_the_formula(name: str, hp: dict, train_mode: bool) -> None:
    seed = CASES.index((name, hp)) + 1
    loss = build_loss(name, 4, 5, **hp).double()
    loss.train(train_mode)
    x, labels = _data(seed, loss)
    state = _state(name, hp, loss, seed)
    got_logits = loss.logits(x, labels)
    if name.startswith("elasticface"):
        state["margins"] = loss.last_margins.tolist()
        if not train_mode:
            assert state["margins"] == [hp["m"]] * len(labels)
    expected = ref.logits(name, hp, x, loss.weight, labels, state)
    torch.testing.assert_close(got_logits, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)

    got_loss = loss(x, labels)
    if name.startswith("elasticface"):
        state["margins"] = loss.last_margins.tolist()
    expected_loss = ref.cross_entropy(ref.logits(name, hp, x, loss.weight, labels, state), labels.tolist())
    if name == "magface":
        expected_loss += ref.magface_penalty(hp, x)
    assert float(got_loss.detach()) == pytest.approx(expected_loss, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("name", ["arcface", "cosface", "magface", "x2softmax", "lsoftmax", "adaface"])
def test_float32_matches_float64(name: str) -> None:
    loss64 = build_loss(name, 4, 5).double().eval()
    x, labels = _data(3, loss64)
    loss32 = build_loss(name, 4, 5).eval()
    loss32.load_state_dict({k: v.float() for k, v in loss64.state_dict().items()})
    value32, value64 = float(loss32(x.float(), labels).detach()), float(loss64(x, labels).detach())
    assert value32 == pytest.approx(value64, rel=2e-4, abs=2e-4)
