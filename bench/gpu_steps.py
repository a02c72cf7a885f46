"""The steps of ``bench/gpu_acceptance.py``. Each takes ``dry_run`` and a work folder and returns
``{"status": ok|fail|skipped, "why", "numbers", "checks"}``; with ``dry_run`` the device side is a CPU
stand-in and the refusals that replace the device (no TensorRT, no GPU) are checked instead."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.results import BENCH_DIR

REPO = BENCH_DIR.parent
MIN_COSINE = 0.999
CPU_BUILDS = {"onnxruntime", "faiss-cpu"}


# -- shared -----------------------------------------------------------------------------------------------
def _home(work: Path) -> Path:
    """A MarginFace home in the work folder with the default pack (offline, a few seconds)."""
    home = work / "home"
    os.environ["MARGINFACE_HOME"] = str(home)
    os.environ.pop("MARGINFACE_PACKS_DIR", None)
    if not (home / "packs" / "default").is_dir():
        from models.packs.default_pack import install_default_pack

        install_default_pack(home / "packs")
    return home


def real_faces(work: Path) -> tuple[np.ndarray, list[bytes]]:
    """Aligned 112×112 BGR crops of real faces (t1.jpg's six, the Tom Hanks sample and its variants) and
    JPEGs of t1's faces with a margin (what a client sends)."""
    import cv2

    from models.packs.checks import insightface_image, reference_crops
    from models.pipeline import FacePipeline

    _home(work)
    path = insightface_image("t1.jpg")
    if path is None:
        raise RuntimeError("insightface's t1.jpg is not installed (pip install --no-deps insightface==2.1)")
    image = cv2.imread(str(path))
    pipeline = FacePipeline.from_pack("default", providers=["cpu"])
    faces = sorted(pipeline.detect(image), key=lambda f: f.box[0])
    crops = pipeline.align(image, faces)
    hanks, _ = reference_crops()
    jpegs = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        mx, my = 0.4 * (x2 - x1), 0.4 * (y2 - y1)
        crop = image[max(0, int(y1 - my)) : int(y2 + my), max(0, int(x1 - mx)) : int(x2 + mx)]
        jpegs.append(cv2.imencode(".jpg", crop)[1].tobytes())
    return np.concatenate([crops, hanks[..., ::-1]]), jpegs


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def _median_s(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# -- 0. install -------------------------------------------------------------------------------------------
def gpu_requirements() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return extras["gpu"] + extras["tensorrt"]


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[\[<>=~!; ]", r, maxsplit=1)[0].lower() for r in requirements}


def install_step(dry_run: bool, work: Path, wheelhouse: Path | None = None) -> dict:
    """A fresh ``.venv-gpu`` with ``.[gpu,tensorrt,train]`` (the CPU builds never enter it)."""
    requirements = gpu_requirements()
    clash = _names(requirements) & CPU_BUILDS
    if clash:
        return {"status": "fail", "why": f"the gpu extras would install CPU builds: {sorted(clash)}"}
    venv = REPO / ".venv-gpu"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", ".[gpu,tensorrt,train]"]
    if wheelhouse:
        pip += ["--no-index", "--find-links", str(wheelhouse)]
    started = time.monotonic()
    if dry_run:
        return {
            "status": "ok",
            "why": "dry run: the extras' requirements were checked, nothing installed",
            "numbers": {"gpu requirements": len(requirements)},
            "command": " ".join(pip),
            "seconds": 0.0,
        }
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(pip, cwd=REPO, capture_output=True, text=True)
    seconds = round(time.monotonic() - started, 1)
    if done.returncode != 0:
        return {"status": "fail", "why": f"pip failed: {done.stderr[-1500:]}", "seconds": seconds}
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    present = _names(listed.splitlines()) & CPU_BUILDS
    if present:
        return {
            "status": "fail",
            "why": f"CPU builds ended up installed: {sorted(present)}",
            "seconds": seconds,
        }
    site = next((venv / "lib").glob("python3*/site-packages"))
    libs = [str(p) for p in sorted(site.glob("nvidia/*/lib"))] + [str(site / "tensorrt_libs")]
    env = {"LD_LIBRARY_PATH": ":".join(libs + [os.environ.get("LD_LIBRARY_PATH", "")]).rstrip(":")}
    return {
        "status": "ok",
        "python": str(venv / "bin" / "python"),
        "env": env,
        "seconds": seconds,
        "command": " ".join(pip),
    }


# -- 1. providers -----------------------------------------------------------------------------------------
def providers_step(dry_run: bool, work: Path) -> dict:
    """The default pack's recogniser through ``Embedder`` on CUDA and TensorRT fp16 against CPU."""
    from models.embedder import Embedder
    from models.errors import ProviderError
    from models.packs.store import resolve_pack

    crops, _ = real_faces(work)
    folder, manifest = resolve_pack("default")
    entry = manifest.model("recogniser")
    model = folder / entry.file
    reference = Embedder(model, entry, ["cpu"]).embed(crops)
    sides = (
        [("cpu stand-in", ["cpu"], "CPUExecutionProvider")]
        if dry_run
        else [
            ("cuda", ["cuda"], "CUDAExecutionProvider"),
            ("tensorrt fp16", ["tensorrt"], "TensorrtExecutionProvider"),
        ]
    )
    os.environ["ORT_TENSORRT_FP16_ENABLE"] = "1"
    numbers, failures = {}, []
    for label, providers, expected in sides:
        embedder = Embedder(model, entry, providers)
        if embedder.providers[0] != expected:
            failures.append(f"{label}: ran on {embedder.providers}")
            continue
        worst = float(_cosines(reference, embedder.embed(crops)).min())
        numbers[f"{label} min cosine ({len(crops)} faces)"] = round(worst, 5)
        if worst < MIN_COSINE:
            failures.append(f"{label}: min cosine {worst:.5f} < {MIN_COSINE}")
    checks = []
    if dry_run:  # the CPU build must refuse a GPU provider, never fall back silently
        try:
            Embedder(model, entry, ["cuda"])
            failures.append("asking for CUDA on the CPU build did not raise")
        except ProviderError as exc:
            checks.append(f"cuda refused: {exc}"[:200])
    return {
        "status": "fail" if failures else "ok",
        "why": "; ".join(failures),
        "numbers": numbers,
        "checks": checks,
    }


# -- 2. export --tensorrt and the server path -------------------------------------------------------------
def export_step(dry_run: bool, work: Path) -> dict:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings
    from models.errors import ProviderError
    from models.pipeline import FacePipeline
    from training.export.random_checkpoint import random_checkpoint

    crops, jpegs = real_faces(work)
    backbone = "mobilefacenet" if dry_run else "iresnet50"
    ckpt = random_checkpoint(work / f"{backbone}.pt", backbone, crops)
    pack = work / f"{backbone}-pack"
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "export",
        str(ckpt),
        "--out",
        str(pack),
        "--name",
        f"{backbone}-acceptance",
        "--threshold",
        "0.3",
        "--force",
    ]
    checks, numbers = [], {}
    if dry_run:
        refused = subprocess.run(command + ["--tensorrt"], cwd=REPO, capture_output=True, text=True)
        if refused.returncode == 0 or "tensorrt_unavailable" not in refused.stderr:
            return {"status": "fail", "why": f"export --tensorrt did not refuse: {refused.stderr[-500:]}"}
        checks.append(refused.stderr.strip().splitlines()[-1][:240])
    else:
        command.append("--tensorrt")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        return {"status": "fail", "why": f"export failed: {done.stderr[-1500:]}"}
    subprocess.run(
        [sys.executable, "-m", "cli.main", "models", "install", str(pack), "--force"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    name = f"{backbone}-acceptance"
    cpu = FacePipeline.from_pack(name, providers=["cpu"])
    os.environ["MARGINFACE_TENSORRT_ENGINE"] = "1"
    try:
        if dry_run:
            try:
                FacePipeline.from_pack(name, providers=["cpu"])
                return {
                    "status": "fail",
                    "why": "a pack without an engine loaded with MARGINFACE_TENSORRT_ENGINE=1",
                }
            except ProviderError as exc:
                checks.append(f"engine refused: {exc}"[:240])
            os.environ.pop("MARGINFACE_TENSORRT_ENGINE")
        served = FacePipeline.from_pack(name)
        numbers["recogniser runs on"] = ",".join(served.providers["recogniser"])
        worst = float(_cosines(cpu.embed_crops(crops), served.embed_crops(crops)).min())
        numbers["engine vs CPU min cosine"] = round(worst, 5)
        settings = Settings(auth=False, packs=[name], home=os.environ["MARGINFACE_HOME"])
        with TestClient(create_app(settings)) as client:
            same = client.post(
                "/verify", files={"image1": ("a.jpg", jpegs[0]), "image2": ("b.jpg", jpegs[0])}
            )
            other = client.post(
                "/verify", files={"image1": ("a.jpg", jpegs[0]), "image2": ("b.jpg", jpegs[1])}
            )
        if same.status_code != 200 or other.status_code != 200:
            return {
                "status": "fail",
                "why": f"/verify answered {same.status_code}/{other.status_code}: {other.text}",
            }
        local = _pair_similarity(cpu, jpegs[0], jpegs[1])
        numbers["/verify similarity served vs CPU"] = f"{other.json()['similarity']:.4f} vs {local:.4f}"
        gap = abs(other.json()["similarity"] - local)
    finally:
        os.environ.pop("MARGINFACE_TENSORRT_ENGINE", None)
    failures = [f"min cosine {worst:.5f} < {MIN_COSINE}"] if worst < MIN_COSINE else []
    failures += [f"served similarity differs from CPU by {gap:.4f}"] if gap > 2e-3 else []
    return {
        "status": "fail" if failures else "ok",
        "why": "; ".join(failures),
        "numbers": numbers,
        "checks": checks,
        "pack": str(pack),
    }


def _pair_similarity(pipeline, a: bytes, b: bytes) -> float:
    import cv2

    from models.pipeline import select_face

    embeddings = []
    for data in (a, b):
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        face = select_face(pipeline.detect(image))
        embeddings.append(pipeline.embed_faces(image, [face])[0])
    return pipeline.similarity(*embeddings)


# -- 3. faiss ---------------------------------------------------------------------------------------------
def faiss_step(dry_run: bool, work: Path) -> dict:
    """Flat inner-product search: GPU against CPU (same top-10), queries/s of both."""
    import faiss

    n, d, k, chunk = (100_000 if dry_run else 10_000_000), 512, 10, 1_000_000
    rng = np.random.default_rng(0)
    cpu = faiss.IndexFlatIP(d)
    gpu_ready = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    resources = faiss.StandardGpuResources() if gpu_ready else None  # must outlive the index
    gpu = faiss.GpuIndexFlatIP(resources, d) if gpu_ready else None
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), d), dtype=np.float32)
        faiss.normalize_L2(block)
        cpu.add(block)
        if gpu is not None:
            gpu.add(block)
    ids = rng.choice(n, size=64, replace=False)
    queries = np.stack([cpu.reconstruct(int(i)) for i in ids]) + 0.05 * rng.standard_normal(
        (64, d), np.float32
    )
    faiss.normalize_L2(queries)
    t0 = time.perf_counter()
    cpu_scores, cpu_ids = cpu.search(queries, k)
    numbers = {
        "vectors": f"{n:,} x {d}",
        "cpu flat q/s (64 queries)": round(64 / (time.perf_counter() - t0), 1),
    }
    if gpu is None:
        # the comparison code still runs: CPU flat against a numpy brute force on the same data
        base = faiss.rev_swig_ptr(cpu.get_xb(), n * d).reshape(n, d)
        other_scores = queries @ base.T
        other_ids = np.argsort(-other_scores, axis=1)[:, :k]
        other_scores = np.take_along_axis(other_scores, other_ids, 1)
        label, why = (
            "numpy stand-in",
            "no GPU: CPU flat compared with numpy (dry run)" if dry_run else "no GPU",
        )
    else:
        other_scores, other_ids = gpu.search(queries, k)
        many = np.repeat(queries, 64, axis=0)
        seconds = _median_s(lambda: gpu.search(many, k), repeats=3, warmup=1)
        numbers["gpu flat q/s (4096-query batches)"] = round(len(many) / seconds, 1)
        label, why = "gpu", ""
    top1 = float(np.mean(cpu_ids[:, 0] == other_ids[:, 0]))
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(cpu_ids, other_ids, strict=True)]))
    gap = float(np.abs(cpu_scores - other_scores).max())
    numbers.update(
        {
            f"{label} top-1 agreement": top1,
            f"{label} top-10 overlap": round(overlap, 4),
            f"{label} max score gap": f"{gap:.2e}",
        }
    )
    failures = [] if top1 == 1.0 and overlap >= 0.99 and gap < 1e-3 else [f"{label} differs from CPU flat"]
    if not dry_run and gpu is None:
        failures.append("faiss has no GPU here (faiss-gpu-cu12 not installed or no device)")
    return {"status": "fail" if failures else "ok", "why": "; ".join(failures) or why, "numbers": numbers}


# -- 4. embedding speed -----------------------------------------------------------------------------------
def embedding_step(dry_run: bool, work: Path) -> dict:
    """faces/s of the server's embedders beside the bare engine / bare ORT session, same batch."""
    from models.embedder import Embedder
    from models.packs.store import resolve_pack

    crops, _ = real_faces(work)
    backbone = "mobilefacenet" if dry_run else "iresnet50"
    try:
        folder, manifest = resolve_pack(f"{backbone}-acceptance")
    except Exception as exc:  # noqa: BLE001 - the export step did not leave a pack
        return {"status": "skipped", "why": f"no exported pack (the export step failed?): {exc}"}
    entry = manifest.model("recogniser")
    batches = (1, 8) if dry_run else (1, 32, 128)
    numbers: dict = {}
    runners = [("ort cpu" if dry_run else "ort tensorrt fp16", ["cpu"] if dry_run else ["tensorrt"])]
    os.environ["ORT_TENSORRT_FP16_ENABLE"] = "1"
    for label, providers in runners:
        embedder = Embedder(folder / entry.file, entry, providers, max_batch=max(batches))
        for batch in batches:
            chunk = np.resize(crops, (batch, *crops.shape[1:]))
            blob = embedder.preprocess(chunk)
            feed = {embedder.input_name: blob}
            ours = _median_s(lambda c=chunk, e=embedder: e.embed(c), repeats=5 if dry_run else 30)
            bare = _median_s(lambda f=feed, e=embedder: e.session.run(None, f), repeats=5 if dry_run else 30)
            numbers[f"{label} b{batch} faces/s (ours / bare)"] = f"{batch / ours:,.0f} / {batch / bare:,.0f}"
    if not dry_run:
        from models.tensorrt_embedder import TensorRTEmbedder

        engine = TensorRTEmbedder(folder / Path(entry.file).with_suffix(".engine").name, entry, max_batch=128)
        for batch in batches:
            chunk = np.resize(crops, (batch, *crops.shape[1:]))
            blob = engine.preprocess(chunk)
            ours = _median_s(lambda c=chunk: engine.embed(c), repeats=30)
            bare = _median_s(lambda b=blob: engine.run_tensor(b), repeats=30)
            numbers[f"trt engine b{batch} faces/s (ours / bare)"] = (
                f"{batch / ours:,.0f} / {batch / bare:,.0f}"
            )
        engine.close()
    return {
        "status": "ok",
        "numbers": numbers,
        "why": "dry run: CPU ORT stands in for the GPU" if dry_run else "",
    }


# -- 5. trainer -------------------------------------------------------------------------------------------
def trainer_step(dry_run: bool, work: Path) -> dict:
    import torch

    from bench.bench_training import (
        CLASSES,
        _bare_loop_images_per_s,
        _synthetic_folder,
        _trainer_images_per_s,
    )

    if not dry_run and not torch.cuda.is_available():
        return {
            "status": "fail",
            "why": "torch sees no CUDA device (the train extra's torch is a CPU build?)",
        }
    case = ("mobilefacenet", 4, 2, 0, "fp32", "cpu") if dry_run else ("iresnet50", 128, 20, 5, "bf16", "cuda")
    data = _synthetic_folder(work / "train-data", CLASSES, 4 if dry_run else 40)
    bare = _bare_loop_images_per_s(*case)
    ours = _trainer_images_per_s(*case, data)
    label = f"{case[0]} b{case[1]} {case[4]} {case[5]}"
    return {
        "status": "ok",
        "numbers": {f"{label} images/s (trainer / bare loop)": f"{ours:,.1f} / {bare:,.1f}"},
        "why": "dry run: MobileFaceNet fp32 on the CPU stands in" if dry_run else "",
    }
