"""Inference overhead benchmark: MarginFace's embedder and detector beside bare ONNX Runtime sessions.

For the same model files and thread count, in the same run, measures
  - embedder faces/s at batch 1, 8 and 32: ``Embedder.embed`` (uint8 BGR crops in: colour order,
    normalisation, batching and L2 normalisation included) vs ``InferenceSession.run`` on a ready tensor;
  - detector milliseconds on a 640×480 photo: ``Detector.detect`` (resize/pad, blob, decode, NMS) vs
    ``InferenceSession.run`` on a ready 1×3×480×640 tensor.
Timings alternate between the two sides and report medians, so load from other processes hits both alike.

    python bench/bench_inference.py [--pack default] [--threads 2] [--repeats 30] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

CLOCK = time.perf_counter


def paired_medians(ours, bare, repeats: int, warmup: int = 3) -> tuple[float, float]:
    for _ in range(warmup):
        ours()
        bare()
    times_ours, times_bare = [], []
    for i in range(repeats):
        pair = [(ours, times_ours), (bare, times_bare)]
        for fn, out in pair if i % 2 == 0 else pair[::-1]:
            start = CLOCK()
            fn()
            out.append(CLOCK() - start)
    return statistics.median(times_ours), statistics.median(times_bare)


def detector_row(detector, session, image, label: str, repeats: int) -> tuple:
    """MarginFace ``detect`` on a 640×480 image vs ``session.run`` on the ready input tensor."""
    canvas, _, _ = detector.letterbox(image)
    blob = detector.make_blob(canvas)
    name = session.get_inputs()[0].name
    ours_s, bare_s = paired_medians(
        lambda: detector.detect(image), lambda: session.run(None, {name: blob}), repeats
    )
    size = f"{canvas.shape[1]}×{canvas.shape[0]}"
    return (
        f"{label} 640×480 (in {size})",
        f"{ours_s * 1000:8.2f} ms",
        f"{bare_s * 1000:8.2f} ms",
        (ours_s - bare_s) / bare_s * 100,
    )


def bare_session(path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pack", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time; cpu: CPU time of the calling thread, which is robust to other processes "
        "on a busy machine (forces --threads 1, so ORT computes in the calling thread)",
    )
    args = parser.parse_args()
    if args.clock == "cpu":
        global CLOCK
        CLOCK = time.thread_time
        args.threads = 1

    from models.detectors import SCRFDDetector
    from models.images import read_image
    from models.onnx_session import create_session
    from models.packs.checks import insightface_image
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack(args.pack, ["cpu"], threads=args.threads)
    photo = read_image(insightface_image("t1.jpg"))
    faces = pipeline.detect(photo)
    crops = pipeline.align(photo, faces)
    crops = np.concatenate([crops] * (32 // len(crops) + 1))[:32]
    embedder = pipeline.embedder
    rec_session = bare_session(pipeline.pack_dir / pipeline.manifest.model("recogniser").file, args.threads)
    det_session = bare_session(pipeline.pack_dir / pipeline.manifest.model("detector").file, args.threads)

    rows = []
    for batch in (1, 8, 32):
        chunk = crops[:batch]
        tensor = embedder.preprocess(chunk)
        name = rec_session.get_inputs()[0].name
        if embedder.fixed_batch:  # a fixed-batch model: the bare loop runs one call per crop too
            singles = [embedder.preprocess(chunk[i : i + 1]) for i in range(batch)]

            def bare(singles=singles, name=name):
                for x in singles:
                    rec_session.run(None, {name: x})
        else:

            def bare(tensor=tensor, name=name):
                rec_session.run(None, {name: tensor})

        ours_s, bare_s = paired_medians(lambda chunk=chunk: embedder.embed(chunk), bare, args.repeats)
        rows.append(
            (
                f"embed batch {batch}",
                f"{batch / ours_s:8.1f} faces/s",
                f"{batch / bare_s:8.1f} faces/s",
                (ours_s - bare_s) / bare_s * 100,
            )
        )

    image = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    rows.append(detector_row(pipeline.detector, det_session, image, "detect", args.repeats))
    shared_models = Path(__file__).resolve().parents[2] / "shared" / "models"
    for name in ("scrfd_500m_bnkps.onnx", "scrfd_2.5g_bnkps.onnx"):  # research-only files: used if present
        if (shared_models / name).is_file():
            session, _ = create_session(shared_models / name, ["cpu"], threads=args.threads)
            label = f"detect {name.split('_bnkps')[0]}"
            rows.append(
                detector_row(
                    SCRFDDetector(session),
                    bare_session(shared_models / name, args.threads),
                    image,
                    label,
                    args.repeats,
                )
            )

    print(
        f"pack {pipeline.pack_name}: detector {pipeline.manifest.model('detector').file}, "
        f"recogniser {pipeline.manifest.model('recogniser').file}; CPU, {args.threads} threads, "
        f"median of {args.repeats} alternating runs, {args.clock} clock"
    )
    print(f"{'measure':36} {'MarginFace':>18} {'bare ORT':>18} {'overhead':>9}")
    for label, ours, bare, overhead in rows:
        print(f"{label:36} {ours:>18} {bare:>18} {overhead:8.1f}%")


if __name__ == "__main__":
    main()
