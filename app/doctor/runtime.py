"""Checks of the inference runtime: Python, ONNX Runtime builds and providers, the CUDA driver and
libraries (system or NVIDIA's PyPI wheels), cuDNN, TensorRT and FAISS's GPU support."""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.metadata as md
import importlib.util
import os
import platform
import sys
from pathlib import Path

from app.doctor.findings import Finding

CPU_INSTALL = "pip install 'marginface[cpu]'"


def gpu_install() -> str:
    """The command that gets the GPU runtime: the CPU builds go first when they are installed."""
    cpu = [n for n in ("onnxruntime", "faiss-cpu") if installed(n)]
    return ("pip uninstall -y " + " ".join(cpu) + " && " if cpu else "") + "pip install 'marginface[gpu]'"


@contextlib.contextmanager
def quiet_native_output():
    """Silence what native libraries print straight to fd 1/2 (ORT's loader) so --json stays parseable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


GPU_PROVIDERS = {"CUDAExecutionProvider", "TensorrtExecutionProvider"}


def installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def wheel_lib_dirs() -> list[Path]:
    """Library folders of NVIDIA's PyPI wheels (nvidia-*-cu12, tensorrt-cu12-libs) in this environment."""
    dirs: list[Path] = []
    for package in ("nvidia", "tensorrt_libs"):
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            dirs += [Path(p) for p in glob.glob(f"{root}/*/lib")] + [Path(root)]
    return dirs


def load_library(stem: str, major: str | None = None) -> tuple[ctypes.CDLL | None, str]:
    """Load ``lib<stem>.so.<major>`` (any version when ``major`` is None) from the loader path or NVIDIA's
    wheels: (library, where) or (None, why not)."""
    errors = []
    soname = f"lib{stem}.so.{major}" if major else f"lib{stem}.so"
    in_wheels = sorted((str(p) for d in wheel_lib_dirs() for p in d.glob(f"{soname}*")), key=len)
    for candidate in [soname, *in_wheels]:
        try:
            return ctypes.CDLL(candidate), candidate
        except OSError as exc:
            errors.append(str(exc))
    why = errors[0] if errors else f"{soname} not found"
    if major:
        other, where = load_library(stem)
        if other is not None:
            why = f"only {Path(where).name} is here; the GPU builds need {soname} (CUDA 12 / cuDNN 9)"
    return None, why


def _int_call(lib: ctypes.CDLL, name: str, *args: object) -> int | None:
    value = ctypes.c_int()
    try:
        rc = getattr(lib, name)(*args, ctypes.byref(value))
    except AttributeError:
        return None
    return value.value if rc == 0 else None


def _cuda_version(code: int | None) -> str:
    return f"{code // 1000}.{code % 1000 // 10}" if code else "?"


def check_python() -> Finding:
    return Finding("python", "ok", f"{platform.python_version()} ({sys.executable}, {platform.machine()})")


def check_onnxruntime(want_gpu: bool) -> list[Finding]:
    cpu, gpu = installed("onnxruntime"), installed("onnxruntime-gpu")
    if cpu and gpu:
        return [
            Finding(
                "onnxruntime",
                "fail",
                f"onnxruntime {cpu} AND onnxruntime-gpu {gpu}",
                why="both builds install the same `onnxruntime` module; the last one installed wins",
                fix="pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'marginface[gpu]'",
            )
        ]
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return [
            Finding(
                "onnxruntime",
                "fail",
                "not importable",
                why=str(exc),
                fix=f"{CPU_INSTALL}   (or 'marginface[gpu]' on an NVIDIA machine)",
            )
        ]
    if gpu and hasattr(ort, "preload_dlls"):
        try:
            with quiet_native_output():
                ort.preload_dlls()  # CUDA/cuDNN from NVIDIA's wheels, before any session
        except Exception:  # noqa: BLE001 - reported by the library checks below
            pass
    available = ort.get_available_providers()
    build = "onnxruntime-gpu" if gpu else "onnxruntime (CPU build)"
    found = [Finding("onnxruntime", "ok", f"{build} {ort.__version__}; providers {', '.join(available)}")]
    if want_gpu and not GPU_PROVIDERS & set(available):
        found.append(
            Finding(
                "gpu providers",
                "fail",
                "CUDA/TensorRT execution providers are not in this build",
                why=f"{build} only offers {', '.join(available)}: inference would run on the CPU",
                fix=gpu_install(),
            )
        )
    if "CUDAExecutionProvider" in available:
        found.append(_cuda_session_check(ort))
    return found


def _cuda_session_check(ort) -> Finding:
    """Open a one-node model on the CUDA provider: catches ORT's silent fallback to the CPU."""
    import numpy as np
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "doctor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        with quiet_native_output():
            session = ort.InferenceSession(
                model.SerializeToString(),
                sess_options=options,
                providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
            )
        session.run(None, {"x": np.ones((1, 4), np.float32)})
        used = session.get_providers()
    except Exception as exc:  # noqa: BLE001 - ORT raises its own types
        return Finding(
            "cuda session",
            "fail",
            "a CUDA session could not be created",
            why=str(exc)[:300],
            fix="check the driver (nvidia-smi) and `pip install 'marginface[gpu]'`",
        )
    if "CUDAExecutionProvider" not in used:
        return Finding(
            "cuda session",
            "fail",
            f"ONNX Runtime fell back to {', '.join(used)}",
            why="the CUDA provider failed to initialise: no visible GPU, or CUDA 12 / cuDNN 9 "
            "libraries missing (see the cuda and cudnn lines)",
            fix="nvidia-smi must list a GPU (docker: --gpus all); pip install 'marginface[gpu]'",
        )
    return Finding("cuda session", "ok", "a model runs on CUDAExecutionProvider")


def check_cuda(want_gpu: bool) -> list[Finding]:
    """Driver, CUDA runtime, cuBLAS, cuDNN, TensorRT: versions and whether they load."""
    bad = "fail" if want_gpu else "skip"
    out: list[Finding] = []
    driver, where = load_library("cuda")
    if driver is None:
        out.append(
            Finding(
                "nvidia driver",
                bad,
                "libcuda.so not loadable",
                why=f"no NVIDIA driver visible to this process ({where})" if want_gpu else None,
                fix="install the NVIDIA driver; in Docker run with --gpus all (NVIDIA Container Toolkit)"
                if want_gpu
                else None,
            )
        )
    else:
        version = _int_call(driver, "cuDriverGetVersion")
        count = ctypes.c_int(0)
        init = driver.cuInit(0)
        gpus = count.value if init == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0
        status = "ok" if gpus else bad
        out.append(
            Finding(
                "nvidia driver",
                status,
                f"CUDA {_cuda_version(version)} driver, {gpus} GPU(s)",
                why=None if gpus or not want_gpu else f"cuInit returned {init}: no usable GPU",
                fix=None if gpus or not want_gpu else "nvidia-smi; docker run --gpus all",
                data={"gpus": gpus},
            )
        )
    for what, stem, major, getter in (
        ("cuda runtime", "cudart", "12", "cudaRuntimeGetVersion"),
        ("cublas", "cublas", "12", None),
        ("cudnn", "cudnn", "9", None),
    ):
        lib, where = load_library(stem, major)
        if lib is None:
            out.append(
                Finding(
                    what,
                    bad,
                    f"lib{stem}.so.{major} not found",
                    why=where if want_gpu else None,
                    fix=gpu_install() if want_gpu else None,
                )
            )
            continue
        if getter:
            version = _cuda_version(_int_call(lib, getter))
        elif stem == "cudnn":
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            code = lib.cudnnGetVersion()
            version = f"{code // 10000}.{code % 10000 // 100}.{code % 100}"
        else:
            version = "loads"
        out.append(Finding(what, "ok", f"{version} ({Path(where).name})"))
    out.append(check_tensorrt(want_gpu))
    return out


def check_tensorrt(want_gpu: bool) -> Finding:
    try:
        import tensorrt as trt
    except ImportError as exc:
        return Finding(
            "tensorrt",
            "fail" if want_gpu else "skip",
            "python package not installed",
            why=str(exc) if want_gpu else None,
            fix="pip install 'marginface[tensorrt]'  (TensorRT 10 for CUDA 12)" if want_gpu else None,
        )
    except Exception as exc:  # noqa: BLE001 - the bindings raise OSError/RuntimeError when libs are missing
        return Finding(
            "tensorrt",
            "fail",
            "installed but does not load",
            why=str(exc)[:300],
            fix="pip install --force-reinstall tensorrt-cu12 tensorrt-cu12-libs",
        )
    return Finding("tensorrt", "ok", f"{trt.__version__} (engines need a GPU to build and run)")


def check_faiss(want_gpu: bool) -> Finding:
    builds = {n: v for n in ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12") if (v := installed(n))}
    if len(builds) > 1:
        return Finding(
            "faiss",
            "fail",
            ", ".join(f"{n} {v}" for n, v in builds.items()),
            why="several faiss builds install the same `faiss` module",
            fix="pip uninstall -y faiss-cpu faiss-gpu faiss-gpu-cu12 && pip install 'marginface[gpu]'",
        )
    try:
        import faiss
    except Exception as exc:  # noqa: BLE001 - GPU builds fail with ImportError, OSError or PackageNotFound
        fix = "pip install 'marginface[gpu]'" if "faiss-gpu-cu12" in builds else CPU_INSTALL
        return Finding("faiss", "fail", "not importable", why=str(exc), fix=fix)
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    gpu_build = hasattr(faiss, "StandardGpuResources")
    detail = f"{faiss.__version__}, {'GPU build' if gpu_build else 'CPU build'}, {gpus} GPU(s)"
    if want_gpu and not gpu_build:
        return Finding(
            "faiss",
            "warn",
            detail,
            why="searches run on the CPU (fine up to millions of faces)",
            fix="pip uninstall -y faiss-cpu && pip install faiss-gpu-cu12",
        )
    return Finding("faiss", "ok", detail)


def wants_gpu(providers: list[str] | None) -> bool:
    """A GPU is expected when the providers ask for one or a GPU build is installed."""
    asked = ",".join(providers or []) or os.environ.get("MARGINFACE_PROVIDERS", "")
    lowered = asked.lower()
    return "cuda" in lowered or "tensorrt" in lowered or bool(installed("onnxruntime-gpu"))
