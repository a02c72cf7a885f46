"""Recogniser: aligned crops to L2-normalised embeddings, normalisation taken from the pack entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import InvalidImageError, PackError

DEFAULT_MAX_BATCH = 32  # chunk size for models that take any batch


class Embedder:
    """An ONNX recogniser run with ONNX Runtime.

    Crops are N×S×S×3 uint8 BGR (S = the model's input size, normally 112). Colour order, mean and std come
    from the manifest entry. Models with a dynamic batch axis run in chunks of ``max_batch``; models with a
    fixed batch B run B crops at a time (the last chunk padded with black crops whose outputs are dropped).
    """

    def __init__(
        self,
        model_path: str | Path,
        entry,
        providers: list[str] | None = None,
        *,
        threads: int | None = None,
        max_batch: int | None = None,
        strict: bool = True,
    ) -> None:
        from models.onnx_session import create_session

        self.entry = entry
        self.session, self.providers = create_session(model_path, providers, threads=threads, strict=strict)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        batch, channels, height, width = _input_dims(model_input.shape, entry.file)
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.crop_size = height if isinstance(height, int) else (entry.input_size or (112, 112))[1]
        self.max_batch = self.fixed_batch or int(max_batch or DEFAULT_MAX_BATCH)
        self._rgb = entry.color_order == "RGB"
        self._mean = np.asarray(entry.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / np.asarray(entry.std, dtype=np.float32)).reshape(1, 3, 1, 1)
        self._identity_norm = not self._mean.any() and bool((self._inv_std == 1).all())
        out_dim = self.session.get_outputs()[0].shape[-1]
        self.embedding_size = int(entry.embedding_size or out_dim)
        if isinstance(out_dim, int) and entry.embedding_size and out_dim != entry.embedding_size:
            raise PackError(
                f"{entry.file}: the graph outputs {out_dim}-d, the manifest says {entry.embedding_size}",
                code="bad_manifest",
            )

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """N×S×S×3 uint8 BGR to the N×3×S×S float32 tensor the model takes."""
        ordered = crops[..., ::-1] if self._rgb else crops
        blob = np.empty((len(crops), 3) + crops.shape[1:3], dtype=np.float32)
        np.copyto(blob, ordered.transpose(0, 3, 1, 2), casting="unsafe")
        if not self._identity_norm:
            blob -= self._mean
            blob *= self._inv_std
        return blob

    def embed(self, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """N×D float32 L2-normalised embeddings; ``flip`` adds the mirrored crop's embedding before
        normalising (test-time augmentation)."""
        crops = self._check(crops)
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        if flip:
            raw = self._run(np.concatenate([crops, crops[:, :, ::-1]]))
            raw = raw[: len(crops)] + raw[len(crops) :]
        else:
            raw = self._run(crops)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return (raw / np.maximum(norms, 1e-12)).astype(np.float32)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            count = len(chunk)
            if self.fixed_batch and count < self.fixed_batch:
                pad = np.zeros((self.fixed_batch - count,) + chunk.shape[1:], dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self.session.run([self.output_name], {self.input_name: self.preprocess(chunk)})[0]
            outputs.append(out.reshape(out.shape[0], -1)[:count])
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def _check(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        size = self.crop_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3) or crops.dtype != np.uint8:
            raise InvalidImageError(
                f"expected N×{size}×{size}×3 uint8 BGR crops, got {crops.shape} {crops.dtype}",
                code="bad_image",
            )
        return crops


def _input_dims(shape: list, file: str) -> tuple:
    if len(shape) != 4 or shape[1] not in (3, "3"):
        raise PackError(f"{file}: expected an N×3×H×W input, the graph takes {shape}", code="bad_manifest")
    return tuple(shape)
