"""Map an ONNX recogniser's initializers onto a registry backbone, layer by layer, and check the fit.

Two ways, tried in order: by name (an ONNX exported from PyTorch without constant folding keeps the
state_dict names, as insightface's arcface_torch exports do), then by structure: the backbone's
parameterised layers in execution order are matched with the graph's in node order, each shape checked.
A convolution whose batch norm was folded into it (a Conv with a bias where the backbone has Conv → BN)
sets that BN to the identity plus the bias; a BN epsilon that differs from the module's is folded into
the running variance. Exact: the imported module computes what the graph computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.errors import MarginFaceError
from training.onnx_import.graph import Layer, OnnxGraph, read_graph

LEAF_TYPES = (nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU, nn.Linear)
# SFace's in-graph normalisation, which training.backbones.sface reproduces.
SFACE_SCALES = [("Sub", 127.5), ("Mul", 1 / 128)]


class OnnxImportError(MarginFaceError):
    """An ONNX graph whose weights do not fit the backbone (``onnx_import_failed``)."""

    code = "onnx_import_failed"


@dataclass
class ImportReport:
    backbone: str
    method: str  # "names" or "structure"
    tensors: int
    folded_bn: int = 0
    scales: list[tuple[str, float]] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)


def execution_order(model: nn.Module, size: int = 112) -> list[tuple[str, nn.Module]]:
    """The backbone's parameterised leaf modules in the order a forward pass runs them."""
    names = {id(m): n for n, m in model.named_modules()}
    order: list[tuple[str, nn.Module]] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _inp: order.append((names[id(mod)], mod)))
        for m in model.modules()
        if isinstance(m, LEAF_TYPES)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return order


def _copy(param: torch.Tensor, array: np.ndarray, what: str) -> None:
    if array is None:
        raise OnnxImportError(f"{what}: the graph computes this tensor instead of storing it")
    if tuple(array.shape) != tuple(param.shape):
        if array.size != param.numel():
            raise OnnxImportError(f"{what}: graph shape {array.shape} does not fit {tuple(param.shape)}")
        array = array.reshape(param.shape)
    param.data.copy_(torch.from_numpy(np.array(array, dtype=np.float32)))


def _load_bn(module: nn.Module, layer: Layer, what: str) -> None:
    for key in ("weight", "bias", "running_mean", "running_var"):
        _copy(getattr(module, key), layer.arrays[key], f"{what}.{key}")
    eps = float(layer.attrs.get("epsilon", 1e-5))
    if abs(eps - module.eps) > 1e-12:  # same denominator: var + eps_graph = var' + eps_module
        module.running_var.data.add_(eps - module.eps).clamp_(min=0.0)


def _identity_bn(module: nn.Module, bias: np.ndarray, what: str) -> None:
    """A BN that adds ``bias`` and nothing else (its conv had the BN folded in)."""
    module.weight.data.fill_(1.0)
    _copy(module.bias, bias, f"{what}.bias")
    module.running_mean.data.zero_()
    module.running_var.data.fill_(1.0 - module.eps)


def load_by_structure(model: nn.Module, graph: OnnxGraph) -> tuple[int, int]:
    """Copy the graph's layers onto the model's, in order; returns (tensors copied, BNs folded)."""
    layers = [layer for layer in graph.layers if layer.kind != "scale"]
    modules = execution_order(model)
    i = k = copied = folded = 0
    while k < len(modules):
        name, module = modules[k]
        if i >= len(layers):
            raise OnnxImportError(f"the graph has no layer left for {name} ({type(module).__name__})")
        layer = layers[i]
        kind = _kind(module)
        if layer.kind != kind:
            raise OnnxImportError(
                f"{name} is a {kind} but the graph's next layer is a {layer.kind} ({layer.name})"
            )
        if kind in ("conv", "linear"):
            _copy(module.weight, layer.arrays["weight"], name)
            copied += 1
            bias = layer.arrays.get("bias")
            if bias is not None and module.bias is not None:
                _copy(module.bias, bias, f"{name}.bias")
                copied += 1
            elif bias is not None:
                following = modules[k + 1] if k + 1 < len(modules) else None
                has_bn = any(other.kind == "bn" and other.source == layer.output for other in layers)
                if following is None or _kind(following[1]) != "bn" or has_bn:
                    raise OnnxImportError(f"{name}: the graph has a bias where the backbone has none")
                _identity_bn(following[1], bias, following[0])
                folded += 1
                k += 1
            elif module.bias is not None:
                module.bias.data.zero_()
        elif kind == "bn":
            _load_bn(module, layer, name)
            copied += 4
        else:
            _copy(module.weight, layer.arrays["weight"], name)
            copied += 1
        i += 1
        k += 1
    if i != len(layers):
        raise OnnxImportError(f"{len(layers) - i} graph layers are left over after the backbone's last layer")
    return copied, folded


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "bn"
    return "prelu"


def load_by_names(model: nn.Module, graph: OnnxGraph) -> int | None:
    """Load when every state_dict tensor is an initializer of the same name and size; else None."""
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if not all(k in graph.named and graph.named[k].size == v.numel() for k, v in state.items()):
        return None
    with torch.no_grad():
        for key, tensor in state.items():
            _copy(tensor, graph.named[key], key)
    return len(state)


def load_onnx_weights(model: nn.Module, path: str | Path, backbone: str = "?") -> ImportReport:
    """Copy the weights of the ONNX file at ``path`` into ``model`` (a registry backbone)."""
    graph = read_graph(path)
    scales = [
        (layer.attrs["op"], float(np.asarray(layer.arrays["value"]).ravel()[0]))
        for layer in graph.layers
        if layer.kind == "scale"
    ]
    if backbone == "sface" and [(op, round(v, 7)) for op, v in scales] != [
        (op, round(v, 7)) for op, v in SFACE_SCALES
    ]:
        raise OnnxImportError(f"the graph normalises its input with {scales}, SFace's is {SFACE_SCALES}")
    if backbone != "sface" and scales:
        raise OnnxImportError(
            f"the graph normalises its input inside ({scales}); backbone {backbone} does not"
        )
    with torch.no_grad():
        named = load_by_names(model, graph)
        if named is not None:
            return ImportReport(backbone, "names", named, 0, scales, graph.ops)
        copied, folded = load_by_structure(model, graph)
    return ImportReport(backbone, "structure", copied, folded, scales, graph.ops)


def _conv_count(graph: OnnxGraph) -> int:
    return sum(1 for layer in graph.layers if layer.kind == "conv")


def _output_size(graph: OnnxGraph) -> int:
    last = [layer for layer in graph.layers if layer.kind in ("linear", "conv", "bn")][-1]
    array = last.arrays.get("weight")
    return int(array.shape[0])


def import_onnx(path: str | Path, backbone: str | None = None) -> tuple[nn.Module, ImportReport]:
    """A registry backbone carrying the ONNX file's weights (``backbone`` None: the first that fits)."""
    from training.backbones import build_backbone

    graph = read_graph(path)
    size = _output_size(graph)
    candidates = [backbone] if backbone else _candidates(graph)
    errors = [] if candidates else [f"no registry layout has {_conv_count(graph)} convolutions"]
    for name in candidates:
        model = build_backbone(name, embedding_size=size)
        try:
            report = load_onnx_weights(model, path, name)
        except OnnxImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return model.eval(), report
    raise OnnxImportError(
        f"{Path(path).name} ({graph.ops}) fits no registry backbone:\n  " + "\n  ".join(errors)
    )


# Convolutions per registry layout: only layouts with the graph's count are tried (building one is costly).
CONVS_PER_BACKBONE = {
    "sface": 27,
    "mobilefacenet": 50,
    "mobilefacenet_relu6": 51,
    "iresnet18": 21,
    "iresnet34": 37,
    "iresnet50": 53,
    "iresnet100": 103,
}


def _candidates(graph: OnnxGraph) -> list[str]:
    return [name for name, n in CONVS_PER_BACKBONE.items() if n == _conv_count(graph)]
