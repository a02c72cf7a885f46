"""Real aligned faces for parity checks and INT8 calibration.

Sources: a folder (112×112 images are taken as already-aligned crops; larger photos are detected and
aligned with the detector of a pack), or by default the six faces of insightface's ``t1.jpg`` plus its
aligned ``Tom_Hanks_54745.png`` crop (both ship inside the insightface wheel).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from training.export.errors import ExportError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def insightface_images_dir() -> Path | None:
    """``insightface/data/images`` of the installed wheel, or None."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
    return folder if folder.is_dir() else None


def _read_bgr(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ExportError(f"cannot read image {path}", code="no_faces")
    return image


class _Aligner:
    """Detect + align with a pack's detector (loaded lazily: only photos that are not crops need it)."""

    def __init__(self, pack: str | Path = "default") -> None:
        self.pack = pack
        self._pipeline = None

    def faces(self, image_bgr: np.ndarray, largest_only: bool) -> list[np.ndarray]:
        from models.align import norm_crop

        if self._pipeline is None:
            from models.pipeline import FacePipeline

            self._pipeline = FacePipeline.from_pack(self.pack)
        found = list(self._pipeline.detect(image_bgr))  # highest score first
        if largest_only and found:
            found = [max(found, key=lambda f: f.area)]
        return [norm_crop(image_bgr, face.landmarks, 112) for face in found]


def _stack(crops_bgr: list[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(np.stack(crops_bgr)).astype(np.uint8)


def faces_from_dir(folder: str | Path, limit: int | None = None, pack: str | Path = "default") -> np.ndarray:
    """N×112×112×3 BGR crops from ``folder`` (recursive, sorted; one face per photo, the largest)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"face folder not found: {folder}", code="no_faces")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    aligner = _Aligner(pack)
    crops: list[np.ndarray] = []
    for path in files:
        if limit is not None and len(crops) >= limit:
            break
        image = _read_bgr(path)
        if image.shape[:2] == (112, 112):
            crops.append(image)
        else:
            crops.extend(aligner.faces(image, largest_only=True))
    if not crops:
        raise ExportError(f"no faces found in {folder}", code="no_faces")
    return _stack(crops)


def sample_faces(pack: str | Path = "default") -> np.ndarray:
    """The default reference set: the faces of insightface's t1.jpg (aligned) + the Tom Hanks crop."""
    folder = insightface_images_dir()
    if folder is None:
        raise ExportError(
            "no reference faces: insightface's sample images are not installed; pass a folder of faces "
            "(--calibration DIR)",
            code="no_faces",
        )
    crops = _Aligner(pack).faces(_read_bgr(folder / "t1.jpg"), largest_only=False)
    crops.append(_read_bgr(folder / "Tom_Hanks_54745.png"))
    return _stack(crops)
