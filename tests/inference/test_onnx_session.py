"""Execution-provider selection: explicit requests are honoured or refused with the reason."""

from __future__ import annotations

import warnings

import pytest

from models import onnx_session
from models.errors import PackError, ProviderError
from models.onnx_session import create_session, normalize_providers, resolve_providers


@pytest.fixture
def model(default_pack, pipeline):
    return default_pack / pipeline.manifest.model("detector").file


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(onnx_session, "_warned", set())
    monkeypatch.delenv(onnx_session.ENV_PROVIDERS, raising=False)


def test_names_are_normalised():
    assert normalize_providers("CUDA, cpu,cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert normalize_providers(["TensorrtExecutionProvider"]) == ["TensorrtExecutionProvider"]
    with pytest.raises(ProviderError, match="unknown execution provider"):
        normalize_providers("gpu")
    with pytest.raises(ProviderError):
        normalize_providers(" , ")


def test_default_order_is_filtered_to_available():
    import onnxruntime as ort

    order, explicit = resolve_providers(None)
    assert not explicit and order[-1] == "CPUExecutionProvider"
    assert all(p in ort.get_available_providers() for p in order)


def test_cpu_session_reports_providers(model):
    session, used = create_session(model, ["cpu"], threads=1)
    assert used == ["CPUExecutionProvider"] == session.get_providers()


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
    reason="CUDA is available here",
)
def test_explicit_cuda_is_refused_with_reason(model, monkeypatch):
    with pytest.raises(ProviderError) as info:
        create_session(model, ["cuda", "cpu"])
    assert info.value.code == "provider_unavailable"
    assert "CUDAExecutionProvider" in str(info.value) and "onnxruntime-gpu" in str(info.value)
    monkeypatch.setenv(onnx_session.ENV_PROVIDERS, "cuda,cpu")
    with pytest.raises(ProviderError):
        create_session(model)


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
    reason="CUDA is available here",
)
def test_non_strict_warns_once_and_says_so(model):
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider was requested"):
        _, used = create_session(model, ["cuda", "cpu"], strict=False)
    assert used == ["CPUExecutionProvider"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_session(model, ["cuda", "cpu"], strict=False)  # second time: no warning
    with pytest.raises(ProviderError, match="none of the requested providers"):
        create_session(model, ["cuda"], strict=False)


def test_missing_and_broken_model_files(tmp_path):
    with pytest.raises(PackError) as info:
        create_session(tmp_path / "absent.onnx", ["cpu"])
    assert info.value.code == "missing_file"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(PackError) as info:
        create_session(broken, ["cpu"])
    assert info.value.code == "bad_model"
