"""Read an ONNX recogniser as an ordered list of parameterised layers (conv, BN, PReLU, linear)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Ops that carry no weights and that the backbones express without parameters (or that are no-ops).
PASS_THROUGH = {
    "Add",
    "Flatten",
    "Reshape",
    "Dropout",
    "Identity",
    "Constant",
    "Relu",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Shape",
    "Gather",
    "Concat",
    "Cast",
}


@dataclass
class Layer:
    """One parameterised ONNX op: ``kind`` conv | bn | prelu | linear | scale, its arrays and attributes."""

    kind: str
    name: str
    arrays: dict[str, np.ndarray]
    attrs: dict[str, object] = field(default_factory=dict)
    source: str = ""  # the tensor it reads (its first input)
    output: str = ""


@dataclass
class OnnxGraph:
    layers: list[Layer]
    named: dict[str, np.ndarray]  # every initializer by name (for name-based loading)
    input_name: str
    ops: dict[str, int]


def _attrs(node) -> dict[str, object]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_graph(path: str | Path) -> OnnxGraph:
    """The model's parameterised layers in node order (ONNX nodes are topologically sorted)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    named = {t.name: numpy_helper.to_array(t).astype(np.float32, copy=False) for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold weights in some exporters
        if node.op_type == "Constant" and node.output:
            value = _attrs(node).get("value")
            if value is not None:
                named.setdefault(node.output[0], numpy_helper.to_array(value).astype(np.float32))
    initializer_names = {t.name for t in graph.initializer}
    real_inputs = [i.name for i in graph.input if i.name not in initializer_names]
    layers: list[Layer] = []
    ops: dict[str, int] = {}
    scaled = set(real_inputs)
    for node in graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
        if node.op_type == "Identity" and node.input[0] in named:  # shared weights routed through Identity
            named[node.output[0]] = named[node.input[0]]
            continue
        arrays = [named.get(name) for name in node.input]
        attrs = _attrs(node)
        before = len(layers)
        if node.op_type == "Conv":
            found = {"weight": arrays[1]}
            if len(arrays) > 2 and arrays[2] is not None:
                found["bias"] = arrays[2]
            layers.append(Layer("conv", node.name or node.output[0], found, attrs))
        elif node.op_type == "BatchNormalization":
            keys = ("weight", "bias", "running_mean", "running_var")
            found = dict(zip(keys, arrays[1:5], strict=True))
            layers.append(
                Layer("bn", node.name or node.output[0], found, {"epsilon": attrs.get("epsilon", 1e-5)})
            )
        elif node.op_type == "PRelu":
            layers.append(Layer("prelu", node.name or node.output[0], {"weight": arrays[1]}))
        elif node.op_type == "Gemm":
            weight = arrays[1] if attrs.get("transB", 0) else arrays[1].T
            found = {"weight": weight}
            if len(arrays) > 2 and arrays[2] is not None:
                found["bias"] = arrays[2]
            layers.append(Layer("linear", node.name or node.output[0], found))
        elif node.op_type == "MatMul" and arrays[1] is not None:
            layers.append(Layer("linear", node.name or node.output[0], {"weight": arrays[1].T}))
        elif node.op_type in ("Sub", "Mul", "Div") and node.input[0] in scaled and arrays[1] is not None:
            # input normalisation inside the graph, e.g. SFace's (x − 127.5) · (1/128)
            layers.append(Layer("scale", node.output[0], {"value": arrays[1]}, {"op": node.op_type}))
            scaled.add(node.output[0])
        elif node.op_type == "Add" and arrays[1] is not None and layers and layers[-1].kind == "linear":
            layers[-1].arrays.setdefault("bias", arrays[1])  # MatMul + Add = a linear layer with bias
            layers[-1].output = node.output[0]
            continue
        if len(layers) > before:
            layers[-1].source, layers[-1].output = node.input[0], node.output[0]
    return OnnxGraph(layers, named, real_inputs[0], ops)
