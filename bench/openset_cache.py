"""Embeddings of the ``../shared`` face sets (CelebA subset, LFW), computed once and cached in bench/out/.

Each image goes through the server's own path (detect → largest face → align → embed, no flip) with the
default pack, and keeps its quality record, so the open-set benchmark calibrates on exactly the numbers
``/identify`` sees. ``python -m bench.openset_cache`` fills the cache (progress on stderr, resumable per
dataset); the benchmark reads it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench.results import OUT_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = {
    "celeba": SHARED / "data" / "celeba-subset",
    "lfw": SHARED / "data" / "lfw" / "images_deepfunneled",
}
QUALITY_FIELDS = ("size_px", "sharpness", "yaw", "pitch", "roll", "det_score")
# LFW serves as strangers only: one photo per person gives 4,281 distinct people at a third of the cost.
PER_IDENTITY = {"celeba": None, "lfw": 1}


def cache_path(name: str, pack: str = "default") -> Path:
    return OUT_DIR / f"openset_{name}_{pack}.npz"


def list_folder(root: Path, limit: int | None = None) -> tuple[list[Path], list[str]]:
    paths, names = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for image in sorted(folder.glob("*.jpg"))[:limit]:
            paths.append(image)
            names.append(folder.name)
    return paths, names


def build(name: str, pack: str = "default") -> Path:
    """Embed every image of dataset ``name``; rows without a face get a zero embedding and ok=False."""
    from models.pipeline import FacePipeline, select_face
    from models.quality import assess

    out = cache_path(name, pack)
    if out.is_file():
        return out
    pipeline = FacePipeline.from_pack(pack, threads=1)
    paths, names = list_folder(DATASETS[name], PER_IDENTITY[name])
    dim = pipeline.embedding_size
    emb = np.zeros((len(paths), dim), np.float32)
    quality = np.full((len(paths), len(QUALITY_FIELDS)), np.nan, np.float32)
    ok = np.zeros(len(paths), bool)
    started = time.perf_counter()
    for i, path in enumerate(paths):
        image = cv2.imread(str(path))
        faces = pipeline.detect(image) if image is not None else []
        if faces:
            face = select_face(faces)
            crop = pipeline.align(image, [face])
            emb[i] = pipeline.embed_crops(crop)[0]
            q = assess(face, crop[0])
            quality[i] = [getattr(q, f) for f in QUALITY_FIELDS]
            ok[i] = True
        if (i + 1) % 250 == 0 or i + 1 == len(paths):
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"[{name}] {i + 1}/{len(paths)} images, {rate:.1f}/s", file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        embeddings=emb,
        identities=np.array(names),
        files=np.array([str(p.relative_to(DATASETS[name])) for p in paths]),
        quality=quality,
        quality_fields=np.array(QUALITY_FIELDS),
        ok=ok,
    )
    return out


def load(name: str, pack: str = "default") -> dict[str, np.ndarray]:
    with np.load(cache_path(name, pack)) as data:
        return {k: data[k] for k in data.files}


if __name__ == "__main__":
    for dataset in sys.argv[1:] or list(DATASETS):
        print(build(dataset), file=sys.stderr)
