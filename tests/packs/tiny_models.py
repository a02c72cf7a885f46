"""Small but real ONNX models and pack folders for testing installs and verification quickly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.packs.store import sha256_file


def tiny_recogniser(path: Path, width: int = 16) -> Path:
    """N×3×112×112 → mean colour → N×width linear embedding."""
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, width)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "tiny_recogniser",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["batch", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", width])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def tiny_detector(path: Path, outputs: int = 9) -> Path:
    """N×3×H×W → ``outputs`` pooled maps (an SCRFD-like output count; numbers are meaningless)."""
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"])]
    outs = []
    for i in range(outputs):
        nodes.append(helper.make_node("Identity", ["pooled"], [f"out{i}"]))
        outs.append(helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes,
        "tiny_detector",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        outs,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def tiny_pack(folder: Path, name: str = "tiny") -> Path:
    """A complete pack folder (tiny detector + recogniser + pack.json) named ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    det = tiny_detector(folder / "det.onnx")
    rec = tiny_recogniser(folder / "rec.onnx")
    manifest = {
        "name": name,
        "version": "0.1",
        "license": "test",
        "source": "tests/packs/tiny_models.py",
        "models": [
            {"file": det.name, "sha256": sha256_file(det), "role": "detector", "format": "scrfd"},
            {
                "file": rec.name,
                "sha256": sha256_file(rec),
                "role": "recogniser",
                "format": "arcface",
                "input_size": [112, 112],
                "embedding_size": 16,
                "dynamic_batch": True,
            },
        ],
        "thresholds": {"default": {"value": 0.5, "source": "test"}},
    }
    (folder / "pack.json").write_text(json.dumps(manifest))
    return folder
