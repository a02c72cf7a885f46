"""Run a serialized TensorRT engine as a recogniser (same contract as ``models.embedder.Embedder``).

Needs ``tensorrt`` and ``cuda-python`` (``cuda.bindings.runtime`` / ``cuda.cudart``) and an NVIDIA GPU.
Engines are built by ``marginface export --tensorrt``; the alternative without a separate engine file is
ONNX Runtime's TensorRT execution provider with its engine cache (``MARGINFACE_PROVIDERS=tensorrt,cuda``).
A pack with an engine serves through it when ``MARGINFACE_TENSORRT_ENGINE=1`` (``engine_for``).
"""

from __future__ import annotations

import ctypes
import os
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
            raise ProviderError(
                "TensorRT engines need cuda-python: pip install 'marginface[gpu]' (or cuda-python)"
            ) from exc
    return cudart


def cuda_devices() -> tuple[int, str]:
    """(number of CUDA devices, why none), asked of the driver (libcuda) itself."""
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0, "no NVIDIA driver (libcuda.so.1) is visible to this process (in Docker: --gpus all)"
    if lib.cuInit(0) != 0:
        return 0, "the NVIDIA driver is present but cuInit failed (no usable GPU)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver reports no GPU"
    return count.value, ""


def engine_for(pack_dir: str | Path, manifest) -> Path | None:
    """The pack's TensorRT engine when ``MARGINFACE_TENSORRT_ENGINE`` asks for it and the pack has one."""
    if os.environ.get("MARGINFACE_TENSORRT_ENGINE", "").lower() not in ("1", "true", "yes"):
        return None
    note = (manifest.notes or {}).get("tensorrt") if hasattr(manifest, "notes") else None
    if not isinstance(note, dict) or not note.get("file"):
        raise ProviderError(
            f"MARGINFACE_TENSORRT_ENGINE is set but pack {manifest.name!r} has no TensorRT engine "
            "(export it with `marginface export --tensorrt`)"
        )
    path = Path(pack_dir) / str(note["file"])
    if not path.is_file():
        raise ProviderError(f"the TensorRT engine {path} named by pack {manifest.name!r} is missing")
    return path


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
            raise ProviderError(
                "TensorRT engines need the `tensorrt` package: pip install 'marginface[tensorrt]' "
                f"(TensorRT 10 for CUDA 12) [{exc}]"
            ) from exc
        except OSError as exc:  # the bindings are there, libnvinfer is not
            raise ProviderError(
                f"the tensorrt package is installed but its libraries do not load ({exc}): "
                "pip install --force-reinstall 'tensorrt-cu12-libs>=10,<11'"
            ) from exc
        devices, why = cuda_devices()
        if devices == 0:
            raise ProviderError(f"cannot run a TensorRT engine: {why}")
        self._trt = trt
        self._cudart = _cudart()
        self.crop_size = 112
        self.fixed_batch = None
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

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """N×112×112×3 uint8 BGR to the N×3×112×112 float32 tensor the engine takes."""
        blob = crops[..., self._order].transpose(0, 3, 1, 2).astype(np.float32)
        return np.ascontiguousarray((blob - self._mean) * self._inv_std)

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

    def run_tensor(self, blob: np.ndarray) -> np.ndarray:
        """Raw outputs of a preprocessed N×3×112×112 batch (N ≤ max_batch): the bare engine call."""
        cudart = self._cudart
        out = np.empty((len(blob), self.embedding_size), np.float32)
        self.context.set_input_shape(self.input_name, blob.shape)
        self.context.set_tensor_address(self.input_name, int(self._d_in))
        self.context.set_tensor_address(self.output_name, int(self._d_out))
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(cudart.cudaMemcpyAsync(self._d_in, blob.ctypes.data, blob.nbytes, h2d, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise ProviderError("TensorRT execution failed")
        _check(cudart.cudaMemcpyAsync(out.ctypes.data, self._d_out, out.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return out

    def _run(self, crops: np.ndarray) -> np.ndarray:
        step = self.max_batch
        outputs = [self.run_tensor(self.preprocess(crops[i : i + step])) for i in range(0, len(crops), step)]
        return np.concatenate(outputs)

    def close(self) -> None:
        """Free the device buffers and the stream."""
        cudart = self._cudart
        for pointer in (self._d_in, self._d_out):
            cudart.cudaFree(pointer)
        cudart.cudaStreamDestroy(self.stream)
