"""Names, defaults, refusals and the config shape of the loss registry."""

from __future__ import annotations

import pytest
import torch

from training.losses import LOSS_NAMES, LossWithAux, build_loss, build_loss_from_config

REQUIRED = [
    "softmax", "normface", "lsoftmax", "sphereface", "cosface", "amsoftmax", "arcface", "combined", "airface",
    "adacos", "x2softmax", "magface", "elasticface-arc", "elasticface-cos", "elasticface-arc+",
    "elasticface-cos+", "curricularface", "adaface", "subcenter-arcface", "center", "triplet", "contrastive",
]  # fmt: skip


def test_every_required_name_builds_and_trains_one_step() -> None:
    assert sorted(LOSS_NAMES) == sorted(REQUIRED)
    x = torch.randn(8, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    for name in REQUIRED:
        loss = build_loss(name, 5, 4)
        value = loss(x, y)
        assert value.dim() == 0 and torch.isfinite(value), name
        value.backward()
        if getattr(loss, "has_classifier", False):
            assert loss.logits(x, y).shape == (8, 4), name
            assert loss.weight.shape[0] == 4, name


@pytest.mark.parametrize(
    ("name", "attribute", "expected"),
    [
        ("normface", "s", 30.0),
        ("cosface", "m", 0.35),
        ("cosface", "s", 64.0),
        ("amsoftmax", "s", 30.0),
        ("arcface", "m", 0.5),
        ("combined", "m2", 0.3),
        ("combined", "m3", 0.2),
        ("airface", "m", 0.45),
        ("x2softmax", "a", -0.9),
        ("x2softmax", "k", 0.65),
        ("magface", "lambda_g", 35.0),
        ("magface", "u_a", 110.0),
        ("elasticface-arc", "sigma", 0.05),
        ("elasticface-arc+", "sigma", 0.0175),
        ("elasticface-cos+", "sigma", 0.02),
        ("elasticface-cos", "m", 0.35),
        ("adaface", "h", 0.333),
        ("subcenter-arcface", "k", 3),
        ("sphereface", "m", 4),
        ("curricularface", "m", 0.5),
    ],
)
def test_defaults_are_those_of_the_catalogue(name: str, attribute: str, expected: float) -> None:
    assert getattr(build_loss(name, 4, 10), attribute) == expected


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown loss 'arcfase'.*arcface.*x2softmax"):
        build_loss("arcfase", 4, 10)


@pytest.mark.parametrize(
    ("name", "hp", "message"),
    [
        ("sphereface", {"m": 2.5}, "positive integer"),
        ("lsoftmax", {"m": True}, "positive integer"),
        ("sphereface", {"m": 0}, "positive integer"),
        ("magface", {"lambda_g": 10.0}, "below its bound"),
        ("magface", {"l_a": 50.0, "u_a": 20.0}, "l_a < u_a"),
        ("arcface", {"margin": 0.5}, "unknown hyperparameter.*margin.*accepted.*m"),
        ("arcface", {"m": float("nan")}, "finite"),
        ("cosface", {"s": -1.0}, "s must be"),
        ("x2softmax", {"a": 0.5}, "a must be"),
        ("adacos", {"dynamic": True, "s": 3}, "unknown hyperparameter"),
        ("triplet", {"mining": "hardest"}, "mining must be one of"),
        ("elasticface-arc", {"kind": "cos"}, "unknown hyperparameter"),
        ("subcenter-arcface", {"k": 0}, "positive integer"),
        ("center", {"base": "triplet"}, "base must be a classification loss"),
    ],
)
def test_invalid_hyperparameters_are_refused(name: str, hp: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_loss(name, 4, 10, **hp)


def test_magface_bound_is_checked_against_the_formula() -> None:
    bound = 64 * (0.8 - 0.45) / 100 * 110**2 * 10**2 / (110**2 - 10**2)
    build_loss("magface", 4, 10, lambda_g=bound + 1e-6)
    with pytest.raises(ValueError):
        build_loss("magface", 4, 10, lambda_g=bound - 1e-3)


def test_adacos_needs_three_classes() -> None:
    with pytest.raises(ValueError, match="at least 3 classes"):
        build_loss("adacos", 4, 2)


def test_aux_terms_add_with_their_weights() -> None:
    torch.manual_seed(0)
    x = torch.randn(12, 5, dtype=torch.float64)
    y = torch.arange(12) % 4
    combined = build_loss(
        "arcface", 5, 4, s=30.0, m=0.3,
        aux={"center": {"weight": 0.003, "alpha": 0.4}, "triplet": {"weight": 2.0, "mining": "all"},
             "contrastive": {"weight": 0.5, "margin": 1.2}},
    ).double().eval()  # fmt: skip
    assert isinstance(combined, LossWithAux)
    assert combined.aux["center"].alpha == 0.4
    arc = build_loss("arcface", 5, 4, s=30.0, m=0.3).double()
    arc.load_state_dict(combined.main.state_dict())
    center = build_loss("center", 5, 4).aux["center"].double()
    triplet = build_loss("triplet", 5, 4, mining="all")
    contrastive = build_loss("contrastive", 5, 4, margin=1.2)
    expected = arc(x, y) + 0.003 * center(x, y) + 2.0 * triplet(x, y) + 0.5 * contrastive(x, y)
    torch.testing.assert_close(combined(x, y), expected)
    torch.testing.assert_close(combined.logits(x, y), arc.logits(x, y))
    assert combined.weight is combined.main.weight
    assert set(combined.last_terms) == {"main", "center", "triplet", "contrastive"}


def test_config_shape_matches_build_loss() -> None:
    config = {
        "name": "cosface",
        "s": 30,
        "m": 0.4,
        "aux": {"triplet": {"weight": 1.0, "mining": "semi-hard"}},
    }
    loss = build_loss_from_config(config, 8, 6)
    assert loss.main.s == 30 and loss.main.m == 0.4 and loss.aux["triplet"].mining == "semi-hard"
    assert config["name"] == "cosface"  # the caller's mapping is left alone
    plain = build_loss_from_config({"name": "arcface"}, 8, 6)
    assert plain.m == 0.5
    with pytest.raises(ValueError, match="'name'"):
        build_loss_from_config({"s": 3}, 8, 6)
    with pytest.raises(ValueError, match="unknown aux term 'centre'"):
        build_loss_from_config({"name": "arcface", "aux": {"centre": {}}}, 8, 6)
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        build_loss_from_config({"name": "arcface", "aux": {"center": {"lambda": 1}}}, 8, 6)


def test_metric_losses_alone() -> None:
    center = build_loss("center", 5, 4)
    assert type(center.main).__name__ == "Softmax" and center.aux_weights == {"center": 0.003}
    assert build_loss("center", 5, 4, base="arcface", m=0.2).main.m == 0.2
    for name in ("triplet", "contrastive"):
        loss = build_loss(name, 5, 4)
        assert not loss.has_classifier
        with pytest.raises(NotImplementedError):
            loss.logits(torch.randn(2, 5), torch.tensor([0, 1]))


def test_raw_norm_flags() -> None:
    for name in ("magface", "adaface", "sphereface", "lsoftmax", "softmax"):
        assert build_loss(name, 4, 10).needs_raw_norm, name
    for name in ("arcface", "cosface", "normface", "x2softmax"):
        assert not build_loss(name, 4, 10).needs_raw_norm, name
