"""Graph surgery used when a pack is installed: repair, fold constant dequantisation, free the batch axis.

Every function takes and returns an ``onnx.ModelProto`` and never changes what the model computes;
the installers check that with ONNX Runtime on real inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def remove_unconsumed_inputs(model: onnx.ModelProto) -> list[str]:
    """Drop graph inputs that no node reads (ONNX Runtime demands a value for each); returns their names."""
    graph = model.graph
    consumed = {name for node in graph.node for name in node.input}
    consumed |= {out.name for out in graph.output}
    dropped = [inp.name for inp in graph.input if inp.name not in consumed]
    keep = [inp for inp in graph.input if inp.name in consumed]
    del graph.input[:]
    graph.input.extend(keep)
    return dropped


def detach_initializer_inputs(model: onnx.ModelProto) -> int:
    """Stop listing initializers as graph inputs, so they are constants ONNX Runtime may fold."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    keep = [inp for inp in graph.input if inp.name not in initializers]
    removed = len(graph.input) - len(keep)
    del graph.input[:]
    graph.input.extend(keep)
    return removed


def dequantize_blocked(
    quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block_size: int
) -> np.ndarray:
    """The numbers of ONNX ``DequantizeLinear`` (per-tensor, per-axis or blocked) as float32."""
    q = quantized.astype(np.float32)
    s = scale.astype(np.float32)
    zp = np.zeros_like(s) if zero_point is None else zero_point.astype(np.float32)
    if s.size == 1:  # per tensor
        return (q - zp.reshape(())) * s.reshape(())
    axis = axis % q.ndim
    if block_size > 0:  # blocked: scale has q's rank, the axis dimension counts blocks
        s = np.repeat(s, block_size, axis=axis)
        zp = np.repeat(zp, block_size, axis=axis)
        index = [slice(None)] * q.ndim
        index[axis] = slice(0, q.shape[axis])
        s, zp = s[tuple(index)], zp[tuple(index)]
    else:  # per axis: a 1-D scale along ``axis``
        shape = [1] * q.ndim
        shape[axis] = q.shape[axis]
        s, zp = s.reshape(shape), zp.reshape(shape)
    return ((q - zp) * s).astype(np.float32)


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(onnx.helper.get_attribute_value(attr))
    return default


def fold_constant_dequantize(model: onnx.ModelProto) -> int:
    """Replace DequantizeLinear (and a following Reshape) on constant inputs by float32 initializers.

    Returns how many DequantizeLinear nodes were folded. Graph inputs that are also initializers
    must be detached first (they could be overridden at run time, so they are not constants).
    """
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    overridable = {inp.name for inp in graph.input}
    is_const = lambda name: name in constants and name not in overridable  # noqa: E731
    values: dict[str, np.ndarray] = {}
    folded_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(is_const(n) for n in node.input if n):
            arrays = [numpy_helper.to_array(constants[n]) if n else None for n in node.input]
            zero_point = arrays[2] if len(arrays) > 2 else None
            values[node.output[0]] = dequantize_blocked(
                arrays[0],
                arrays[1],
                zero_point,
                _attribute(node, "axis", 1),
                _attribute(node, "block_size", 0),
            )
            folded_nodes.append(node)
        elif node.op_type == "Reshape" and node.input[0] in values and is_const(node.input[1]):
            shape = numpy_helper.to_array(constants[node.input[1]]).astype(np.int64)
            source = values[node.input[0]]
            if 0 in shape:  # copy-dimension semantics; keep the node rather than guess
                continue
            values[node.output[0]] = source.reshape(shape)
            folded_nodes.append(node)
    folded_ids = {id(n) for n in folded_nodes}
    remaining = [n for n in graph.node if id(n) not in folded_ids]
    del graph.node[:]
    graph.node.extend(remaining)
    needed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for name, array in values.items():
        if name in needed:
            graph.initializer.append(numpy_helper.from_array(array, name))
    prune_unused_initializers(model)
    return sum(1 for n in folded_nodes if n.op_type == "DequantizeLinear")


def prune_unused_initializers(model: onnx.ModelProto) -> int:
    """Remove initializers that no node or output reads; returns how many."""
    graph = model.graph
    needed = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    keep = [init for init in graph.initializer if init.name in needed]
    removed = len(graph.initializer) - len(keep)
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return removed


def free_input_dims(model: onnx.ModelProto, dims: dict[int, str]) -> None:
    """Make the given axes of every graph input and output symbolic (e.g. ``{0: "batch"}``).

    Intermediate shape annotations are dropped so ONNX Runtime infers them afresh.
    """
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        shape = value.type.tensor_type.shape
        for axis, symbol in dims.items():
            if axis < len(shape.dim):
                shape.dim[axis].Clear()
                shape.dim[axis].dim_param = symbol
    del graph.value_info[:]


def free_output_dims(model: onnx.ModelProto, axes: list[int]) -> None:
    """Make the given axes of every graph output unknown (their size follows the input)."""
    for value in model.graph.output:
        shape = value.type.tensor_type.shape
        for axis in axes:
            if axis < len(shape.dim):
                shape.dim[axis].Clear()


def replace_reshape_batch_one(model: onnx.ModelProto) -> int:
    """Turn constant Reshape targets ``[1, -1, ...]`` into ``[0, -1, ...]`` (keep the batch dimension).

    Exact for batch 1; lets outputs such as YuNet's ``(1, -1, C)`` heads follow any batch size.
    """
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in constants:
            continue
        if _attribute(node, "allowzero", 0):
            continue
        shape = numpy_helper.to_array(constants[node.input[1]])
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1 and -1 in shape[1:]:
            new = shape.copy()
            new[0] = 0
            init = constants[node.input[1]]
            init.CopyFrom(numpy_helper.from_array(new.astype(shape.dtype), init.name))
            changed += 1
    return changed
