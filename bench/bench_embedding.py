"""Embedding throughput and detection latency, each beside its peer in the same run.

- Embedding faces/s by batch size for an iresnet50 exported by ``marginface export``'s exporter (random
  weights, BatchNorm statistics settled on real faces: speed does not depend on training):
  MarginFace ``Embedder`` (ONNX Runtime CPU) vs PyTorch eager vs insightface ``ArcFaceONNX.get_feat`` on
  the same ONNX file; all three start from uint8 aligned crops. On a CUDA GPU also PyTorch fp16 and bf16
  with CUDA graphs.
- Detection milliseconds by input size: the default pack's YuNet (MarginFace) and, when ../shared is
  present, SCRFD-2.5G through MarginFace and through insightface's own ``SCRFD.detect``.

    .venv/bin/python -m bench.bench_embedding [--quick]
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.results import IMG_DIR, OUT_DIR, line_plot

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, calls alternating so background load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _faces() -> np.ndarray:
    from models.packs.install import install_pack
    from training.export.faces import sample_faces

    return sample_faces(install_pack("default", progress=False))


def exported_iresnet50(faces: np.ndarray) -> tuple[Path, Path, dict]:
    """(checkpoint, ONNX file, graph facts) of an untrained iresnet50, exported once into bench/out."""
    from training.export.checkpoint import load_checkpoint
    from training.export.onnx_export import check_graph, export_onnx
    from training.export.random_checkpoint import random_checkpoint

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    ckpt, onnx_path = OUT_DIR / "iresnet50_random.pt", OUT_DIR / "iresnet50_random.onnx"
    if not ckpt.is_file():
        random_checkpoint(ckpt, "iresnet50", faces)
    if onnx_path.is_file():
        facts = {**check_graph(onnx_path), "exporter": "cached"}
    else:
        facts = export_onnx(load_checkpoint(ckpt).model, onnx_path)
    return ckpt, onnx_path, facts


def _embedding_rows(faces: np.ndarray, batches: list[int], repeats: int) -> tuple[list, list[str], dict]:
    import onnxruntime as ort
    import torch
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    from models.embedder import Embedder
    from models.packs.manifest import ModelEntry
    from models.packs.store import sha256_file
    from training.export.checkpoint import load_checkpoint
    from training.export.parity import to_input

    ckpt, onnx_path, facts = exported_iresnet50(faces)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    entry = ModelEntry(file=onnx_path.name, sha256=sha256_file(onnx_path), role="recogniser",
                       format="arcface", embedding_size=512, dynamic_batch=True)
    ours = Embedder(onnx_path, entry, ["cpu"], threads=threads, max_batch=max(batches))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    peer = ArcFaceONNX(model_file=str(onnx_path), session=session)
    model = load_checkpoint(ckpt).model

    def torch_eager(crops: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(to_input(crops))).numpy()

    rows, series = [], {"MarginFace Embedder (ORT CPU)": ([], []), "PyTorch eager": ([], []),
                        "insightface ArcFaceONNX.get_feat": ([], [])}
    check = faces[:4]
    a, b = ours.embed(check), peer.get_feat(list(check))
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    agreement = float(np.min(np.sum(a * b, axis=1)))
    for batch in batches:
        crops = np.stack([faces[i % len(faces)] for i in range(batch)])
        listed = list(crops)
        secs = interleaved(
            {
                "MarginFace Embedder (ORT CPU)": lambda c=crops: ours.embed(c),
                "PyTorch eager": lambda c=crops: torch_eager(c),
                "insightface ArcFaceONNX.get_feat": lambda c=listed: peer.get_feat(c),
            },
            repeats,
        )
        for name, value in secs.items():
            rows.append([name, batch, round(batch / value, 1), round(1000 * value / batch, 1)])
            series[name][0].append(batch)
            series[name][1].append(batch / value)
    notes = [
        f"iresnet50 (43.6 M parameters), random weights, exported with the dynamo exporter "
        f"(opset {facts['opset']}, {facts['nodes']} nodes); {threads} threads for every runtime; "
        f"median of {repeats} interleaved runs.",
        f"MarginFace and insightface embeddings of the same crops agree to cosine ≥ {agreement:.6f}.",
    ]
    return rows, notes, series


def _cuda_rows(faces: np.ndarray, batches: list[int], repeats: int) -> tuple[list, str | None]:
    """PyTorch CUDA fp16 / bf16 with CUDA graphs; (rows, reason skipped)."""
    import torch

    if not torch.cuda.is_available():
        return [], "no CUDA GPU on this machine (PyTorch CUDA fp16/bf16 with CUDA graphs not measured)"
    from training.export.checkpoint import load_checkpoint
    from training.export.parity import to_input

    ckpt, _, _ = exported_iresnet50(faces)
    rows = []
    for dtype in (torch.float16, torch.bfloat16):
        model = load_checkpoint(ckpt).model.cuda().to(dtype).eval()
        for batch in batches:
            crops = np.stack([faces[i % len(faces)] for i in range(batch)])
            host = torch.from_numpy(to_input(crops))
            static = host.cuda().to(dtype)
            with torch.inference_mode():
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):
                        model(static)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    output = model(static)

            def step(h=host, s=static, g=graph, o=output) -> None:
                s.copy_(h.to(s.dtype), non_blocking=False)
                g.replay()
                o.float().cpu()

            seconds = interleaved({"graph": step}, repeats)["graph"]
            name = f"PyTorch CUDA {str(dtype).split('.')[-1]} + CUDA graph"
            rows.append([name, batch, round(batch / seconds, 1), round(1000 * seconds / batch, 3)])
    return rows, None


def _detector_rows(sizes: list[int], repeats: int) -> tuple[list, list[str], dict]:
    import cv2
    from skimage import data

    from models.detectors import build_detector
    from models.packs.install import install_pack
    from models.packs.manifest import ModelEntry
    from models.packs.store import resolve_pack, sha256_file

    image = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    image = cv2.resize(image, (640, 640))
    threads = os.cpu_count() or 1
    folder, manifest = resolve_pack(install_pack("default", progress=False))
    det = manifest.model("detector")
    contenders: dict[str, Callable[[int], Callable[[], object]]] = {}

    def ours(path: Path, entry) -> Callable[[int], Callable[[], object]]:
        def make(size: int):
            detector = build_detector(entry, path, ["cpu"], input_size=(size, size), threads=threads)
            return lambda: detector.detect(image)
        return make

    contenders[f"MarginFace YuNet ({det.file})"] = ours(folder / det.file, det)
    notes = [f"astronaut photo resized to 640×640, fitted into each input size; {threads} threads; "
             f"median of {repeats} interleaved runs."]
    scrfd = SHARED_MODELS / "scrfd_2.5g_bnkps.onnx"
    if scrfd.is_file():
        import onnxruntime as ort
        from insightface.model_zoo.scrfd import SCRFD

        entry = ModelEntry(file=scrfd.name, sha256=sha256_file(scrfd), role="detector", format="scrfd")
        contenders["MarginFace SCRFD-2.5G"] = ours(scrfd, entry)

        def peer(size: int):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(str(scrfd), options, providers=["CPUExecutionProvider"])
            model = SCRFD(model_file=str(scrfd), session=session)
            model.prepare(-1, input_size=(size, size), det_thresh=0.5)
            return lambda: model.detect(image, input_size=(size, size))

        contenders["insightface SCRFD.detect (same file)"] = peer
    else:
        notes.append("SCRFD rows skipped: ../shared/models/scrfd_2.5g_bnkps.onnx is absent.")
    rows, series = [], {name: ([], []) for name in contenders}
    for size in sizes:
        fns = {name: make(size) for name, make in contenders.items()}
        for name, seconds in interleaved(fns, repeats).items():
            rows.append([name, f"{size}×{size}", round(1000 * seconds, 1)])
            series[name][0].append(size)
            series[name][1].append(1000 * seconds)
    return rows, notes, series


def run(quick: bool = False) -> list[dict]:
    """The embedding and detection tables (and their plots)."""
    faces = _faces()
    batches = [1, 8] if quick else [1, 8, 32]
    repeats = 3
    rows, notes, series = _embedding_rows(faces, batches, repeats)
    cuda_rows, cuda_skip = _cuda_rows(faces, batches, repeats)
    if cuda_skip:
        notes.append(cuda_skip)
    plot = line_plot(IMG_DIR / "embedding_faces_per_s.png", "iresnet50 embedding, CPU", "batch size",
                     "faces/s", series, logx=True)
    embedding = {"title": "Embedding throughput (iresnet50, 112×112)",
                 "columns": ["runtime", "batch", "faces/s", "ms/face"], "rows": rows + cuda_rows,
                 "notes": notes, "plots": [plot]}
    sizes = [320, 640] if quick else [320, 480, 640]
    det_rows, det_notes, det_series = _detector_rows(sizes, repeats=5 if quick else 10)
    det_plot = line_plot(IMG_DIR / "detection_ms.png", "Face detection latency, CPU", "input size (px)",
                         "ms/image", det_series)
    detection = {"title": "Detection latency by input size", "columns": ["detector", "input", "ms/image"],
                 "rows": det_rows, "notes": det_notes, "plots": [det_plot]}
    return [embedding, detection]


def main() -> None:
    from bench.results import main_for

    main_for(run, __doc__)


if __name__ == "__main__":
    main()
