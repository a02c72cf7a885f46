"""Backbone registry, parameter counts against the published layouts, shapes, memory formats, autocast."""

from __future__ import annotations

import copy

import pytest
import torch

from training.backbones import UnknownBackboneError, build_backbone, list_backbones


def insightface_iresnet_params(blocks: tuple[int, ...], embedding: int = 512) -> int:
    """Parameter count of insightface's IResNet, derived from its layout (not from our module)."""
    count = 3 * 64 * 9 + 2 * 64 + 64  # stem conv, BN, PReLU
    in_ch = 64
    for channels, n in zip((64, 128, 256, 512), blocks, strict=True):
        for i in range(n):
            count += 2 * in_ch + in_ch * channels * 9 + 2 * channels + channels  # bn1, conv1, bn2, prelu
            count += channels * channels * 9 + 2 * channels  # conv2, bn3
            if i == 0:
                count += in_ch * channels + 2 * channels  # 1×1 stride-2 projection + BN
            in_ch = channels
    return count + 2 * 512 + 512 * 49 * embedding + embedding + 2 * embedding  # bn2, fc, features


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def calibrated(model: torch.nn.Module, batch: int = 2) -> torch.nn.Module:
    """Set BN running statistics from one batch, so eval-mode activations keep a sane scale."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(torch.randn(batch, 3, 112, 112))
    return model.eval()


@pytest.fixture(scope="module")
def r18() -> torch.nn.Module:
    torch.manual_seed(0)
    return calibrated(build_backbone("iresnet18"))


@pytest.fixture(scope="module")
def mbf() -> torch.nn.Module:
    torch.manual_seed(0)
    return calibrated(build_backbone("mobilefacenet", embedding_size=128))


def test_registry_lists_and_refuses_unknown_names():
    assert {"iresnet18", "iresnet34", "iresnet50", "iresnet100", "mobilefacenet"} <= set(list_backbones())
    with pytest.raises(UnknownBackboneError) as info:
        build_backbone("resnet50")
    assert info.value.code == "unknown_backbone"
    assert "iresnet50" in str(info.value)
    with pytest.raises(ValueError):
        build_backbone("iresnet18", dropout=1.0)


@pytest.mark.parametrize(
    ("name", "blocks"),
    [
        ("iresnet18", (2, 2, 2, 2)),
        ("iresnet34", (3, 4, 6, 3)),
        ("iresnet50", (3, 4, 14, 3)),
        ("iresnet100", (3, 13, 30, 3)),
    ],
)
def test_iresnet_parameter_counts_match_insightface_layout(name, blocks):
    with torch.device("meta"):  # counts only: no memory, no initialisation
        assert n_params(build_backbone(name)) == insightface_iresnet_params(blocks)
        assert n_params(build_backbone(name, embedding_size=128)) == insightface_iresnet_params(blocks, 128)


def test_iresnet50_published_size_and_shapes():
    model = build_backbone("iresnet50", dropout=0.2)
    # 43,590,848 = insightface's fp32 r50 with a 512-d embedding (≈ 43.6M in the papers)
    assert n_params(model) == 43_590_848
    model.eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        both, first = model(x), model(x[:1])
    assert both.shape == (2, 512) and both.dtype == torch.float32
    torch.testing.assert_close(first, both[:1], rtol=1e-4, atol=1e-4 * both.abs().max().item())


def test_iresnet_state_dict_uses_insightface_names():
    keys = set(build_backbone("iresnet18").state_dict())
    for key in ("conv1.weight", "prelu.weight", "layer1.0.downsample.0.weight", "layer4.1.bn3.running_var",
                "bn2.weight", "fc.weight", "fc.bias", "features.weight", "features.running_mean"):
        assert key in keys


def test_eval_is_deterministic(r18, mbf):
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(r18(x), r18(x))
        out = mbf(x)
        assert out.shape == (2, 128)
        assert torch.equal(out, mbf(x))


def test_mobilefacenet_matches_paper_size():
    # the paper reports 0.99M parameters for the 128-d model
    count = n_params(build_backbone("mobilefacenet", embedding_size=128))
    assert abs(count - 990_000) / 990_000 < 0.02
    assert n_params(build_backbone("mobilefacenet")) == count + 384 * 512 + 2 * 384  # 512-d: bigger 1×1 + BN


@pytest.mark.parametrize("fixture", ["r18", "mbf"])
def test_channels_last_matches_contiguous(fixture, request):
    model = copy.deepcopy(request.getfixturevalue(fixture))
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-3 * ref.abs().max().item())


@pytest.mark.parametrize("fixture", ["r18", "mbf"])
def test_bf16_autocast_forward_close_to_fp32(fixture, request):
    model = request.getfixturevalue(fixture)
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x).float()
    cos = torch.nn.functional.cosine_similarity(low, ref, dim=1)
    assert (cos > 0.98).all(), cos


def test_bf16_training_step_keeps_feature_scale_fixed(r18):
    model = copy.deepcopy(r18).train()
    assert not model.features.weight.requires_grad
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 112, 112))
    out.float().square().mean().backward()
    assert model.features.weight.grad is None
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4).step()
    assert torch.equal(model.features.weight, torch.ones(512))
