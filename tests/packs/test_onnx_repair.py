"""Folding DequantizeLinear reproduces ONNX Runtime's own dequantisation exactly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.packs import onnx_repair
from models.packs.checks import ort_session


def dequantize_model(
    q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int, block: int
) -> onnx.ModelProto:
    """y = x @ Reshape(DequantizeLinear(q, scale, zp)): a constant dequantisation feeding a MatMul."""
    attrs = {"axis": axis} | ({"block_size": block} if block else {})
    inits = [
        numpy_helper.from_array(q, "q"),
        numpy_helper.from_array(scale, "s"),
        numpy_helper.from_array(zp, "z"),
    ]
    inits.append(numpy_helper.from_array(np.array([q.shape[0], -1], np.int64), "shape"))
    graph = helper.make_graph(
        [
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["w"], **attrs),
            helper.make_node("Reshape", ["w", "shape"], ["w2"]),
            helper.make_node("MatMul", ["x", "w2"], ["y"]),
        ],
        "dq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", q.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", None])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


@pytest.mark.parametrize(
    ("scale_shape", "axis", "block"),
    [((6, 3), 1, 4), ((6, 1), 1, 16), ((2, 10), 0, 4), ((6,), 0, 0)],
    ids=["blocked-partial-last-block", "one-block", "blocked-axis0", "per-axis"],
)
def test_fold_equals_onnxruntime(scale_shape: tuple[int, ...], axis: int, block: int) -> None:
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, size=(6, 10), dtype=np.int8)
    scale = rng.uniform(0.001, 0.1, size=scale_shape).astype(np.float32)
    zp = rng.integers(-5, 5, size=scale_shape, dtype=np.int8)
    model = dequantize_model(q, scale, zp, axis, block)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    expected = ort_session(model.SerializeToString()).run(None, {"x": x})[0]
    assert onnx_repair.fold_constant_dequantize(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    folded = ort_session(model.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(folded, expected)


def test_overridable_initializers_are_not_folded() -> None:
    q = np.ones((2, 4), np.int8)
    model = dequantize_model(q, np.full((2, 1), 0.5, np.float32), np.zeros((2, 1), np.int8), 1, 4)
    model.graph.input.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, [2, 1]))
    assert onnx_repair.fold_constant_dequantize(model) == 0
    assert onnx_repair.detach_initializer_inputs(model) == 1
    assert onnx_repair.fold_constant_dequantize(model) == 1


def test_unconsumed_inputs_are_removed() -> None:
    model = dequantize_model(
        np.ones((2, 4), np.int8), np.ones((2, 1), np.float32), np.zeros((2, 1), np.int8), 1, 4
    )
    model.graph.input.append(helper.make_tensor_value_info("unused_weight", TensorProto.FLOAT, [3]))
    assert onnx_repair.remove_unconsumed_inputs(model) == ["unused_weight"]
    assert [i.name for i in model.graph.input] == ["x"]
