"""Stateful losses: the update rules of docs/losses.md, buffers in state_dict, round trips."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import build_loss


def _batch(seed: int = 0, batch: int = 10, dim: int = 6, classes: int = 5):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, generator=gen, dtype=torch.float64) * 30
    return x, torch.randint(0, classes, (batch,), generator=gen)


def _target_cos(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    w = torch.nn.functional.normalize(loss.weight.detach(), dim=1)
    return (torch.nn.functional.normalize(x, dim=1) * w[y]).sum(dim=1)


def _ce(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(loss.logits(x, y), y))


def test_adacos_dynamic_scale_follows_the_batch() -> None:
    loss = build_loss("adacos", 6, 5).double().train()
    x, y = _batch()
    s0 = math.sqrt(2) * math.log(4)
    assert float(loss.scale) == pytest.approx(s0, rel=1e-6)
    cos = (
        torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(loss.weight, dim=1).t()
    ).detach()
    s_prev = float(loss.scale)
    b_avg = sum(
        math.exp(s_prev * float(cos[i, j])) for i in range(len(y)) for j in range(5) if j != int(y[i])
    ) / len(y)
    thetas = sorted(math.acos(float(cos[i, int(y[i])])) for i in range(len(y)))
    theta_med = thetas[(len(thetas) - 1) // 2]  # torch.median: the lower of the two middle values
    expected = math.log(b_avg) / math.cos(min(math.pi / 4, theta_med))
    value = loss(x, y)
    assert float(loss.scale) == pytest.approx(expected, rel=1e-6)
    # the step used the new scale: the logits after the step reproduce the loss value
    assert _ce(loss, x, y) == pytest.approx(float(value.detach()))
    loss.eval()
    loss(x * 0.5, y)
    assert float(loss.scale) == pytest.approx(expected, rel=1e-6)  # no update outside training


def test_adacos_fixed_scale_does_not_move() -> None:
    loss = build_loss("adacos", 6, 5, dynamic=False).train()
    loss(*(t.float() if t.is_floating_point() else t for t in _batch()))
    assert float(loss.scale) == pytest.approx(math.sqrt(2) * math.log(4), rel=1e-6)


def test_curricularface_t_is_an_ema_of_the_target_cosine() -> None:
    loss = build_loss("curricularface", 6, 5).double().train()
    x, y = _batch(1)
    t = 0.0
    for step in range(3):
        x = x + step
        t = 0.01 * float(_target_cos(loss, x, y).mean()) + 0.99 * t
        value = loss(x, y)
        assert float(loss.t) == pytest.approx(t, rel=1e-9)
    assert _ce(loss, x, y) == pytest.approx(float(value.detach()))  # the step used the updated t


def test_adaface_norm_statistics_are_emas_of_clipped_norms() -> None:
    loss = build_loss("adaface", 6, 5).double().train()
    x, y = _batch(2)
    x[0] = 0.0  # norm clipped to 0.001
    x[1] *= 100  # norm clipped to 100
    norms = x.norm(dim=1).clamp(0.001, 100)
    loss(x, y)
    assert float(loss.norm_mean) == pytest.approx(0.01 * float(norms.mean()) + 0.99 * 20.0)
    assert float(loss.norm_std) == pytest.approx(0.01 * float(norms.std()) + 0.99 * 100.0)
    loss(x[:1], y[:1])  # a single sample: the std is undefined and is left alone
    assert math.isfinite(float(loss.norm_std))


def test_sphereface_lambda_anneals_with_the_iteration() -> None:
    loss = build_loss("sphereface", 6, 5).train()
    assert loss.current_lambda == 1000.0
    x, y = _batch(3)
    for _ in range(10):
        loss(x.float(), y)
    assert int(loss.iteration) == 10
    assert loss.current_lambda == pytest.approx(1000 / (1 + 0.12 * 10))
    loss.iteration.fill_(100000)
    assert loss.current_lambda == 5.0


def test_center_update_rule() -> None:
    loss = build_loss("center", 6, 5, lambda_c=0.1, alpha=0.5).double().train()
    term = loss.aux["center"]
    with torch.no_grad():
        term.centers.normal_()
    before = term.centers.clone()
    x, y = _batch(4)
    expected_term = 0.5 * sum(float(((x[i] - before[y[i]]) ** 2).sum()) for i in range(len(y))) / len(y)
    value = loss(x, y)
    softmax_part = _ce(loss, x, y)
    assert float(value.detach()) == pytest.approx(softmax_part + 0.1 * expected_term)
    for j in range(5):
        members = [i for i in range(len(y)) if int(y[i]) == j]
        delta = sum((before[j] - x[i] for i in members), torch.zeros(6, dtype=torch.float64)) / (
            1 + len(members)
        )
        torch.testing.assert_close(term.centers[j], before[j] - 0.5 * delta)


@pytest.mark.parametrize(
    ("name", "buffers"),
    [
        ("adacos", ["scale"]),
        ("curricularface", ["t"]),
        ("adaface", ["norm_mean", "norm_std"]),
        ("sphereface", ["iteration"]),
        ("lsoftmax", ["iteration"]),
        ("center", ["aux.center.centers"]),
    ],
)
def test_state_is_in_state_dict_and_round_trips(name: str, buffers: list[str]) -> None:
    loss = build_loss(name, 6, 5).double().train()
    x, y = _batch(5)
    for step in range(3):
        loss(x + step, y)
    state = loss.state_dict()
    for key in buffers:
        assert key in state
    fresh = build_loss(name, 6, 5).double()
    changed = [k for k in buffers if not torch.equal(fresh.state_dict()[k], state[k])]
    assert changed == buffers  # training moved every piece of state
    fresh.load_state_dict(state)
    loss.eval()
    fresh.eval()
    torch.testing.assert_close(fresh.logits(x, y), loss.logits(x, y))
    torch.testing.assert_close(fresh(x, y), loss(x, y))


def test_elasticface_plus_gives_the_largest_margins_to_the_hardest_samples() -> None:
    torch.manual_seed(0)
    loss = build_loss("elasticface-arc+", 6, 5, sigma=0.2).double().train()
    x, y = _batch(6, batch=32)
    loss.logits(x, y)
    margins = loss.last_margins
    order = torch.argsort(_target_cos(loss, x, y))  # hardest (smallest cosine) first
    assert torch.all(margins[order][:-1] >= margins[order][1:])
    assert float(margins.std()) > 0.05  # they were drawn, not fixed
    plain = build_loss("elasticface-arc", 6, 5, sigma=0.2).double().train()
    plain.logits(x, y)
    assert not torch.all(plain.last_margins[order][:-1] >= plain.last_margins[order][1:])
