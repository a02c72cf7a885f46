"""PyTorch backbone → ONNX (input ``data`` N×3×112×112, dynamic batch, one output ``embedding``)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from training.export.errors import ExportError

INPUT_NAME = "data"
OUTPUT_NAME = "embedding"
DEFAULT_OPSET = 18
CROP_SIZE = 112


def _export_dynamo(model: Any, sample: Any, path: Path, opset: int) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        model,
        (sample,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_shapes=({0: batch},),
        optimize=True,
        verbose=False,
        external_data=False,
    )
    program.save(str(path), external_data=False)


def _export_torchscript(model: Any, sample: Any, path: Path, opset: int) -> None:
    import torch

    torch.onnx.export(
        model,
        (sample,),
        str(path),
        dynamo=False,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        do_constant_folding=True,
    )


def check_graph(path: Path) -> dict:
    """Validate the exported file: onnx checker, one float input ``data`` with a symbolic batch axis
    and 3×112×112, one 2-D output. Returns a small description for the manifest."""
    import onnx

    graph_model = onnx.load(str(path))
    try:
        onnx.checker.check_model(graph_model, full_check=True)
    except Exception as exc:  # noqa: BLE001 - any checker complaint makes the export unusable
        raise ExportError(f"exported graph fails onnx.checker: {exc}", code="export_failed") from exc
    weights = {t.name for t in graph_model.graph.initializer}
    inputs = [i for i in graph_model.graph.input if i.name not in weights]
    outputs = list(graph_model.graph.output)
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or len(outputs) != 1:
        raise ExportError(
            f"exported graph has inputs {[i.name for i in inputs]} and {len(outputs)} outputs; "
            f"expected one input {INPUT_NAME!r} and one output",
            code="export_failed",
        )
    dims = inputs[0].type.tensor_type.shape.dim
    fixed = [d.dim_value for d in dims[1:]]
    if len(dims) != 4 or not dims[0].dim_param or fixed != [3, CROP_SIZE, CROP_SIZE]:
        raise ExportError(f"exported input is not N×3×112×112 with a dynamic N: {dims}", "export_failed")
    opset = max(o.version for o in graph_model.opset_import if o.domain in ("", "ai.onnx"))
    ops = sorted({node.op_type for node in graph_model.graph.node})
    return {"opset": opset, "ops": ops, "nodes": len(graph_model.graph.node)}


def export_onnx(model: Any, path: str | Path, opset: int = DEFAULT_OPSET, exporter: str = "auto") -> dict:
    """Export ``model`` (eval mode, CPU) to ``path``.

    ``exporter`` is ``dynamo`` (torch.export-based, the default in torch ≥ 2.9: folds BatchNorm into the
    neighbouring Conv/Gemm), ``torchscript`` (legacy), or ``auto`` (dynamo, falling back to the legacy
    exporter when dynamo cannot capture the model). Returns graph facts plus the exporter used.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    sample = torch.randn(2, 3, CROP_SIZE, CROP_SIZE)
    order = {"auto": ["dynamo", "torchscript"], "dynamo": ["dynamo"], "torchscript": ["torchscript"]}
    if exporter not in order:
        raise ExportError(f"unknown exporter {exporter!r}", code="export_failed")
    errors: list[str] = []
    for name in order[exporter]:
        fn = _export_dynamo if name == "dynamo" else _export_torchscript
        sink = io.StringIO()
        try:
            # Both exporters are chatty (progress lines, deprecation warnings); the CLI shows its own.
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink), torch.no_grad():
                warnings.simplefilter("ignore")
                previous = logging.getLogger("torch").level
                logging.getLogger("torch").setLevel(logging.ERROR)
                try:
                    fn(model, sample, path, opset)
                finally:
                    logging.getLogger("torch").setLevel(previous)
            facts = check_graph(path)
            facts["exporter"] = name
            return facts
        except ExportError as exc:
            errors.append(f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - try the next exporter, report all failures together
            errors.append(f"{name}: {type(exc).__name__}: {str(exc)[:400]}")
    raise ExportError("ONNX export failed: " + " | ".join(errors), code="export_failed")


def convert_fp16(src: str | Path, dst: str | Path) -> None:
    """Store weights and compute in float16, keeping float32 input/output so callers feed the same arrays."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32 = onnx.load(str(src))
    fp16 = convert_float_to_float16(fp32, keep_io_types=True)
    onnx.save(fp16, str(dst))
