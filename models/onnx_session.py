"""ONNX Runtime session creation with an explicit, checked execution-provider order.

``providers`` may be given as short names (``tensorrt``, ``cuda``, ``cpu``, ``coreml``, ``openvino``,
``dml``, ``rocm``) or ORT names. When none are given, ``MARGINFACE_PROVIDERS`` (e.g. ``"cuda,cpu"``) is
used, and when that is unset too, the default order TensorRT, CUDA, CPU filtered to what this onnxruntime
build offers. A GPU provider that was asked for explicitly and cannot be used raises ProviderError (or,
with ``strict=False``, warns once with the reason); MarginFace never silently runs such a request on CPU.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

from models.errors import PackError, ProviderError

ENV_PROVIDERS = "MARGINFACE_PROVIDERS"
DEFAULT_ORDER = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}
CPU = "CPUExecutionProvider"

_warned: set[str] = set()
_warned_lock = threading.Lock()


def normalize_providers(providers: list[str] | str) -> list[str]:
    """Map short or ORT provider names to ORT names, keeping order and dropping duplicates."""
    if isinstance(providers, str) and providers.strip().startswith("["):  # the JSON list Settings reads
        import json

        providers = json.loads(providers)
    if isinstance(providers, str):
        providers = [p for p in providers.split(",")]
    names: list[str] = []
    for raw in providers:
        key = raw.strip()
        if not key:
            continue
        name = SHORT_NAMES.get(key.lower(), key)
        if not name.endswith("ExecutionProvider"):
            known = ", ".join(sorted(SHORT_NAMES))
            raise ProviderError(f"unknown execution provider {raw!r}; use one of: {known}")
        if name not in names:
            names.append(name)
    if not names:
        raise ProviderError("an empty provider list was given")
    return names


def resolve_providers(providers: list[str] | str | None) -> tuple[list[str], bool]:
    """The provider order to try and whether it was asked for explicitly (argument or environment)."""
    if providers is not None:
        return normalize_providers(providers), True
    env = os.environ.get(ENV_PROVIDERS, "").strip()
    if env:
        return normalize_providers(env), True
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in DEFAULT_ORDER if p in available], False


def create_session(
    model_path: str | os.PathLike,
    providers: list[str] | str | None = None,
    *,
    threads: int | None = None,
    strict: bool = True,
):
    """Open an ``InferenceSession`` and return ``(session, used_providers)``.

    ``threads`` sets ORT's intra-op thread count (None: ORT's default, one per core).
    """
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise PackError(f"model file not found: {path}", code="missing_file")
    wanted, explicit = resolve_providers(providers)
    available = ort.get_available_providers()
    usable: list[str] = []
    for name in wanted:
        if name in available:
            usable.append(name)
            continue
        reason = (
            f"{name} was requested but this onnxruntime build ({ort.__version__}) only offers "
            f"{', '.join(available)}; install onnxruntime-gpu (pip install 'marginface[gpu]') with matching "
            f"CUDA/cuDNN libraries"
        )
        _refuse_or_warn(name, reason, strict=strict and explicit)
    if not usable:
        raise ProviderError(f"none of the requested providers can be used: {', '.join(wanted)}")

    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT's initializer warnings are noise for users
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=_with_options(usable))
    except Exception as exc:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
        raise PackError(f"ONNX Runtime cannot load {path.name}: {exc}", code="bad_model") from exc
    used = list(session.get_providers())
    for name in usable:
        if name != CPU and name not in used:
            reason = (
                f"{name} is in this onnxruntime build but failed to initialise for {path.name} "
                f"(see ORT's log: usually missing CUDA/cuDNN/TensorRT libraries or no visible GPU); "
                f"running on {', '.join(used)}"
            )
            _refuse_or_warn(name, reason, strict=strict and explicit)
    return session, used


def _with_options(providers: list[str]) -> list:
    """Attach provider options: TensorRT engine caching so engines are built once per model."""
    out: list = []
    for name in providers:
        if name == "TensorrtExecutionProvider":
            cache = Path(os.environ.get("MARGINFACE_HOME", Path.home() / ".marginface")) / "trt-cache"
            cache.mkdir(parents=True, exist_ok=True)
            options = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
            # ORT reads its ORT_TENSORRT_* variables only when no provider options are given: pass fp16 on
            if os.environ.get("ORT_TENSORRT_FP16_ENABLE", "").lower() in ("1", "true"):
                options["trt_fp16_enable"] = True
            out.append((name, options))
        else:
            out.append(name)
    return out


def _refuse_or_warn(name: str, reason: str, *, strict: bool) -> None:
    if strict:
        raise ProviderError(reason)
    with _warned_lock:  # once per provider per process, not once per session
        if name in _warned:
            return
        _warned.add(name)
    warnings.warn(reason, RuntimeWarning, stacklevel=3)
