"""TensorRT engines from the exported ONNX model (FP16, optionally INT8 from a QDQ graph).

Needs the ``tensorrt`` Python package and an NVIDIA GPU with a working driver; ``tensorrt_missing()``
says what is absent so the CLI can refuse with a clear message before any work is done.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path

from training.export.errors import ExportError


def cuda_device_count() -> tuple[int, str]:
    """(number of CUDA devices, reason when 0), asked of the driver (libcuda) directly, not of torch."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0, "no NVIDIA driver (libcuda) found"
    if lib.cuInit(0) != 0:
        return 0, "the NVIDIA driver is present but cuInit failed (no usable GPU)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver reports no GPU"
    return count.value, ""


def tensorrt_missing() -> str | None:
    """None when an engine can be built here, else what is missing (package, driver, GPU)."""
    problems = []
    if importlib.util.find_spec("tensorrt") is None:
        problems.append("the `tensorrt` Python package is not installed (pip install 'marginface[tensorrt]': "
                        "TensorRT 10 for CUDA 12, or use the GPU image docker/Dockerfile.gpu)")
    count, reason = cuda_device_count()
    if count == 0:
        problems.append(reason)
    return "; ".join(problems) or None


def require_tensorrt() -> None:
    """Raise ExportError ``tensorrt_unavailable`` naming everything that is missing."""
    missing = tensorrt_missing()
    if missing:
        raise ExportError(f"cannot build a TensorRT engine: {missing}", code="tensorrt_unavailable")


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    *,
    fp16: bool = True,
    int8: bool = False,
    batch: tuple[int, int, int] = (1, 32, 128),
    workspace_gib: float = 4.0,
    input_name: str = "data",
) -> dict:
    """Parse ``onnx_path`` and write a serialized engine with one optimisation profile
    (min, opt, max batch). INT8 uses the Q/DQ scales of a quantised graph (explicit quantisation)."""
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errors}", code="export_failed")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if int8:
        config.set_flag(trt.BuilderFlag.INT8)
    low, opt, high = batch
    if not 1 <= low <= opt <= high:
        raise ExportError(f"TensorRT batch profile needs 1 ≤ min ≤ opt ≤ max, got {batch}", "export_failed")
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, (low, 3, 112, 112), (opt, 3, 112, 112), (high, 3, 112, 112))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see the log above)", code="export_failed")
    Path(engine_path).write_bytes(bytes(serialized))
    return {
        "file": Path(engine_path).name,
        "tensorrt_version": trt.__version__,
        "fp16": fp16,
        "int8": int8,
        "batch_profile": {"min": low, "opt": opt, "max": high},
        "note": "engines are specific to the GPU model and TensorRT version that built them",
    }
