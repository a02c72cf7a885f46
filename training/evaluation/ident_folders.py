"""1:N identification over folders of identities (``DIR/<identity>/*.jpg``), embedded with a checkpoint
or a pack; metrics from ``models.evaluation.identification`` (FAISS search)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from models.errors import MarginFaceError
from models.evaluation.identification import IdentificationResult, evaluate_identification

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm"}

# crops of N images → N×D unit embeddings
EmbedFn = Callable[[list[Path]], np.ndarray]


def list_identity_images(root: str | Path) -> tuple[list[Path], list[str]]:
    """(image paths, identity name of each) for ``root/<identity>/<image>``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise MarginFaceError(f"folder not found: {root}", code="not_found")
    paths, names = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for image in sorted(folder.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(image)
                names.append(folder.name)
    return paths, names


def list_images(root: str | Path) -> list[Path]:
    """Every image below ``root`` (distractors need no identity structure)."""
    root = Path(root)
    if not root.is_dir():
        raise MarginFaceError(f"folder not found: {root}", code="not_found")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_aligned_crops(paths: list[Path]) -> np.ndarray:
    """Already-aligned face crops, resized to 112×112 where needed, as N×112×112×3 BGR uint8."""
    crops = []
    for path in paths:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise MarginFaceError(f"cannot read image {path}", code="corrupt_image")
        if img.shape[:2] != (112, 112):
            img = cv2.resize(img, (112, 112), interpolation=cv2.INTER_AREA)
        crops.append(img)
    return np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)


def embed_in_chunks(paths: list[Path], embed: EmbedFn, desc: str, chunk: int = 256) -> np.ndarray:
    out = [embed(paths[i : i + chunk]) for i in tqdm(range(0, len(paths), chunk), desc=desc, unit="chunk")]
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def identify_folders(
    gallery_dir: str | Path,
    probes_dir: str | Path,
    embed: EmbedFn,
    distractors_dir: str | Path | None = None,
    ranks: tuple[int, ...] = (1, 5, 10),
    fpirs: tuple[float, ...] = (0.1, 0.01, 0.001),
) -> IdentificationResult:
    """Probes whose identity folder exists in the gallery are enrolled; the others are non-mated probes
    (they set the open-set threshold); distractor images join the gallery under no identity."""
    g_paths, g_names = list_identity_images(gallery_dir)
    p_paths, p_names = list_identity_images(probes_dir)
    if not g_paths or not p_paths:
        raise MarginFaceError("gallery and probes need images in <dir>/<identity>/", code="not_found")
    ids = {name: i for i, name in enumerate(sorted(set(g_names) | set(p_names)))}
    gallery = embed_in_chunks(g_paths, embed, "gallery")
    probes = embed_in_chunks(p_paths, embed, "probes")
    distractors = None
    if distractors_dir is not None:
        distractors = embed_in_chunks(list_images(distractors_dir), embed, "distractors")
    return evaluate_identification(
        gallery,
        np.array([ids[n] for n in g_names]),
        probes,
        np.array([ids[n] for n in p_names]),
        distractors=distractors,
        ranks=ranks,
        fpirs=fpirs,
    )
