"""Run a serialized TensorRT engine as a recogniser (same contract as ``models.embedder.Embedder``).

Needs ``tensorrt`` and ``cuda-python`` (``cuda.bindings.runtime`` / ``cuda.cudart``) and an NVIDIA GPU.
Engines are built by ``marginface export --tensorrt``; the alternative without a separate engine file is
ONNX Runtime's TensorRT execution provider with its engine cache (``MARGINFACE_PROVIDERS=tensorrt,cuda``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ProviderError


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python ≥ 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise ProviderError("TensorRT engines need cuda-python: pip install cuda-python") from exc
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise ProviderError(f"CUDA runtime error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRTEmbedder:
    """Aligned BGR crops → L2-normalised embeddings with a TensorRT engine (input ``data``, one output)."""

    def __init__(self, engine_path: str | Path, entry, max_batch: int | None = None) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise ProviderError("TensorRT engines need the `tensorrt` package and an NVIDIA GPU") from exc
        self._trt = trt
        self._cudart = _cudart()
        self.entry = entry
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise ProviderError(f"cannot load TensorRT engine {engine_path} (other GPU or TensorRT version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        self.input_name = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        profile_max = self.engine.get_tensor_profile_shape(self.input_name, 0)[2][0]
        self.max_batch = int(min(max_batch or profile_max, profile_max))
        self.embedding_size = int(self.engine.get_tensor_shape(self.output_name)[-1])
        rgb = entry.color_order == "RGB"
        self._order = [2, 1, 0] if rgb else [0, 1, 2]
        self._mean = np.asarray(entry.mean, np.float32).reshape(1, 3, 1, 1)
        self._inv_std = (1.0 / np.asarray(entry.std, np.float32)).reshape(1, 3, 1, 1)
        cudart = self._cudart
        self.stream = _check(cudart.cudaStreamCreate())
        in_bytes = self.max_batch * 3 * 112 * 112 * 4
        out_bytes = self.max_batch * self.embedding_size * 4
        self._d_in = _check(cudart.cudaMalloc(in_bytes))
        self._d_out = _check(cudart.cudaMalloc(out_bytes))
        self.providers = ["TensorRT (engine)"]

    def embed(self, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
        """N×D float32 unit-norm embeddings; ``flip`` sums the mirrored crop's embedding first."""
        crops = np.asarray(crops, dtype=np.uint8)
        if crops.ndim == 3:
            crops = crops[None]
        if flip:
            raw = self._run(np.concatenate([crops, crops[:, :, ::-1]]))
            raw = raw[: len(crops)] + raw[len(crops) :]
        else:
            raw = self._run(crops)
        return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        cudart = self._cudart
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        outputs = []
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            blob = chunk[..., self._order].transpose(0, 3, 1, 2).astype(np.float32)
            blob = np.ascontiguousarray((blob - self._mean) * self._inv_std)
            out = np.empty((len(chunk), self.embedding_size), np.float32)
            self.context.set_input_shape(self.input_name, blob.shape)
            self.context.set_tensor_address(self.input_name, int(self._d_in))
            self.context.set_tensor_address(self.output_name, int(self._d_out))
            _check(cudart.cudaMemcpyAsync(self._d_in, blob.ctypes.data, blob.nbytes, h2d, self.stream))
            if not self.context.execute_async_v3(self.stream):
                raise ProviderError("TensorRT execution failed")
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, self._d_out, out.nbytes, d2h, self.stream))
            _check(cudart.cudaStreamSynchronize(self.stream))
            outputs.append(out)
        return np.concatenate(outputs)

    def close(self) -> None:
        """Free the device buffers and the stream."""
        cudart = self._cudart
        for pointer in (self._d_in, self._d_out):
            cudart.cudaFree(pointer)
        cudart.cudaStreamDestroy(self.stream)
