"""A genuinely different model pack for migration tests: SFace followed by a fixed random rotation.

Same accuracy as the default pack, but its embeddings are incompatible with the default's (cosine
across packs ≈ 0): a gallery that mixed the two would answer wrongly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def rotated_pack(default_pack: Path, dst: Path, seed: int = 7) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    from models.packs.manifest import PackManifest
    from models.packs.store import sha256_file

    shutil.copytree(default_pack, dst)
    manifest = PackManifest.read(dst)
    entry = manifest.model("recogniser")
    model = onnx.load(str(dst / entry.file))
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(128, 128)))
    graph = model.graph
    old_out = graph.output[0].name
    graph.initializer.append(numpy_helper.from_array(q.astype(np.float32), "rotation"))
    graph.node.append(helper.make_node("MatMul", [old_out, "rotation"], ["rotated"]))
    graph.output[0].name = "rotated"
    # the original output becomes an intermediate value
    onnx.save(model, str(dst / entry.file))
    entry.sha256 = sha256_file(dst / entry.file)
    manifest.name, manifest.version = "sface-rotated", "2.0.0"
    manifest.write(dst)
    return dst
