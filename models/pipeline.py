"""The inference pipeline: detect → align → embed, built from a model pack."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.align import norm_crop
from models.detectors import Detector, build_detector
from models.embedder import Embedder
from models.errors import MarginFaceError, NoFaceError, PackError
from models.face import Face
from models.tensorrt_embedder import TensorRTEmbedder, engine_for


class FacePipeline:
    """Detector + recogniser of one pack. Safe to share between threads (ORT sessions are)."""

    def __init__(
        self,
        pack_dir: str | Path,
        manifest,
        providers: list[str] | None = None,
        *,
        threads: int | None = None,
        strict: bool = True,
        **detector_options,
    ) -> None:
        self.pack_dir = Path(pack_dir)
        self.manifest = manifest
        self.pack_name = manifest.name
        self.threshold = manifest.default_threshold
        det_entry = manifest.model("detector")
        rec_entry = manifest.model("recogniser")
        self.detector: Detector = build_detector(
            det_entry,
            self.pack_dir / det_entry.file,
            providers,
            threads=threads,
            strict=strict,
            **detector_options,
        )
        if getattr(self.detector, "has_landmarks", True) is False:
            raise PackError(
                f"{det_entry.file} has no landmark outputs; alignment needs 5 landmarks", code="bad_manifest"
            )
        engine = engine_for(self.pack_dir, manifest)  # issue 12: a pack's TensorRT engine, when asked for
        self.embedder = TensorRTEmbedder(engine, rec_entry) if engine else Embedder(
            self.pack_dir / rec_entry.file, rec_entry, providers, threads=threads, strict=strict
        )
        self.embedding_size = self.embedder.embedding_size
        self.crop_size = self.embedder.crop_size
        self.providers = {"detector": self.detector.providers, "recogniser": self.embedder.providers}

    @classmethod
    def from_pack(
        cls, name_or_path: str | Path = "default", providers: list[str] | None = None, **options
    ) -> FacePipeline:
        """Load an installed pack by name, or a pack folder by path (files verified against the manifest)."""
        from models.packs.store import resolve_pack

        pack_dir, manifest = resolve_pack(name_or_path, verify=True)
        return cls(pack_dir, manifest, providers, **options)

    def detect(
        self,
        image: np.ndarray,
        *,
        max_faces: int | None = None,
        min_size: float | None = None,
        score_threshold: float | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> list[Face]:
        """Faces in an H×W×3 uint8 BGR image, highest score first (``input_size``: the detection canvas)."""
        return self.detector.detect(
            image,
            score_threshold=score_threshold,
            max_faces=max_faces,
            min_size=min_size,
            input_size=input_size,
        )

    def align(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """N×S×S×3 uint8 aligned crops (S = the recogniser's input size, normally 112)."""
        size = self.crop_size
        if not faces:
            return np.zeros((0, size, size, 3), dtype=np.uint8)
        return np.stack([norm_crop(image, face.landmarks, size) for face in faces])

    def embed_crops(self, crops: np.ndarray, flip: bool = False) -> np.ndarray:
        """N×D L2-normalised embeddings of aligned crops."""
        return self.embedder.embed(crops, flip=flip)

    def embed_faces(self, image: np.ndarray, faces: list[Face], flip: bool = False) -> np.ndarray:
        """Align and embed ``faces`` of ``image``; also sets each ``face.embedding``."""
        embeddings = self.embed_crops(self.align(image, faces), flip=flip)
        for face, embedding in zip(faces, embeddings, strict=True):
            face.embedding = embedding
        return embeddings

    def analyze(self, image: np.ndarray, *, flip: bool = False, **detect_kwargs) -> list[Face]:
        """Detect and embed every face (embeddings in ``face.embedding``)."""
        faces = self.detect(image, **detect_kwargs)
        if faces:
            self.embed_faces(image, faces, flip=flip)
        return faces

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity of two L2-normalised embeddings."""
        return float(np.dot(np.asarray(a, np.float32), np.asarray(b, np.float32)))


def select_face(faces: list[Face], index: int | None = None) -> Face:
    """The face at ``index`` (in detection order: highest score first), or the largest box by default."""
    if not faces:
        raise NoFaceError("no face was found in the image")
    if index is None:
        return max(faces, key=lambda face: face.area)
    if not -len(faces) <= index < len(faces):
        raise MarginFaceError(
            f"face index {index} is out of range: {len(faces)} face(s) found", code="bad_face_index"
        )
    return faces[index]
