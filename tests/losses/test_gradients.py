"""gradcheck in float64 and NaN/inf safety at the singular points, also under bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from training.losses import CLASSIFICATION_LOSSES, build_loss

DIM, CLASSES = 3, 4
# Losses whose norm-dependent terms need norms inside their active range for a meaningful check.
NORM_SCALE = {"magface": 40.0, "adaface": 25.0}


def _inputs(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, DIM, generator=gen, dtype=torch.float64) * NORM_SCALE.get(name, 1.0)
    return x, torch.tensor([0, 1, 2, 3, 1])


@pytest.mark.parametrize("name", list(CLASSIFICATION_LOSSES))
def test_gradcheck_classification_losses(name: str) -> None:
    torch.manual_seed(0)
    # AdaFace's ẑ reads the detached norm by design: saturate it (h large) so the function is what
    # autograd differentiates. eval mode: ElasticFace uses its mean margin.
    loss = build_loss(name, DIM, CLASSES, **({"h": 1000.0} if name == "adaface" else {})).double().eval()
    x, y = _inputs(name)
    weight = loss.weight.detach().clone().normal_()

    def value(emb: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(loss, {"weight": w}, (emb, y))

    assert torch.autograd.gradcheck(
        value, (x.requires_grad_(True), weight.requires_grad_(True)), fast_mode=True
    )


@pytest.mark.parametrize(
    ("name", "hp"),
    [
        ("center", {}),
        ("triplet", {"mining": "all", "margin": 1.0}),
        ("triplet", {"mining": "batch-hard"}),
        ("contrastive", {"margin": 1.5}),
    ],
)
def test_gradcheck_metric_losses(name: str, hp: dict) -> None:
    loss = build_loss(name, DIM, CLASSES, **hp).double().eval()
    x = torch.randn(6, DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    assert torch.autograd.gradcheck(lambda e: loss(e, y), (x.requires_grad_(True),))


def _singular_batch(
    loss: torch.nn.Module, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings exactly on a class centre, exactly opposite one, and at zero norm."""
    w = loss.weight.detach().to(dtype)
    centre = w[0] if w.dim() == 2 else w[0, 0]
    x = torch.stack([centre * 30.0, -centre * 30.0, torch.zeros_like(centre), centre, -centre])
    return x, torch.tensor([0, 0, 1, 0, 0])


@pytest.mark.parametrize("name", [*CLASSIFICATION_LOSSES, "center", "triplet", "contrastive"])
def test_no_nan_or_inf_at_singular_points(name: str) -> None:
    torch.manual_seed(0)
    loss = build_loss(name, DIM, CLASSES)
    if not hasattr(loss, "weight"):
        loss.weight = torch.nn.Parameter(torch.randn(CLASSES, DIM))
    x, y = _singular_batch(loss)
    x.requires_grad_(True)
    value = loss(x, y)
    value.backward()
    assert torch.isfinite(value), name
    assert torch.isfinite(x.grad).all(), name
    for param in loss.parameters():
        if param.grad is not None:
            assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("name", [*CLASSIFICATION_LOSSES, "center", "triplet"])
def test_bf16_autocast_keeps_float32_angles(name: str) -> None:
    torch.manual_seed(0)
    loss = build_loss(name, 16, 6).eval()
    head = torch.nn.Linear(8, 16)
    inputs = torch.randn(12, 8) * 4
    y = torch.arange(12) % 6
    with torch.autocast("cpu", dtype=torch.bfloat16):
        emb = head(inputs)
        assert emb.dtype == torch.bfloat16
        value = loss(emb, y)
        if getattr(loss, "has_classifier", False):
            assert loss.logits(emb, y).dtype == torch.float32
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())
    with torch.no_grad():  # the same bf16 embeddings in float32 give the same loss: angles were fp32
        reference = loss(emb.detach().float(), y)
    assert float(value.detach()) == pytest.approx(float(reference), rel=1e-5, abs=1e-5)

    # the singular points in bf16
    x, ys = _singular_batch(
        loss if hasattr(loss, "weight") else build_loss("normface", 16, 6), torch.bfloat16
    )
    x.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, ys)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
