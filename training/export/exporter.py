"""``export_pack``: checkpoint → ONNX (+ fp16 / int8 / TensorRT) → parity → evaluation → pack folder.

The pack is built in a hidden staging folder beside ``out`` and renamed into place at the end, so a failed
export (parity, evaluation, anything) leaves no half-written pack behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from training.export.errors import ExportError

RECOGNISER_FILES = {"fp32": "recogniser.onnx", "fp16": "recogniser_fp16.onnx", "int8": "recogniser_int8.onnx"}


@dataclass
class ExportOptions:
    """Everything ``marginface export`` takes (see ``cli/export_cmd.py`` for the meaning of each)."""

    checkpoint: Path
    out: Path
    name: str | None = None
    version: str = "1.0.0"
    license: str = "same terms as the training data (set with --license)"
    detector_from: str = "default"
    faces: Path | None = None
    fp16: bool = False
    int8_calibration: Path | None = None
    int8_min_cosine: float | None = None
    calibration_limit: int = 256
    eval_bin: Path | None = None
    eval_pairs: Path | None = None
    eval_images: Path | None = None
    threshold: float | None = None
    tensorrt: bool = False
    tensorrt_int8: bool = False
    tensorrt_batch: tuple[int, int, int] = (1, 32, 128)
    opset: int = 18
    exporter: str = "auto"
    force: bool = False
    trust_code: bool = False  # import a ``pkg.mod:factory`` backbone named in the checkpoint

    @property
    def precision(self) -> str:
        return "int8" if self.int8_calibration else "fp16" if self.fp16 else "fp32"


PACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def default_pack_name(backbone: str, checkpoint: Path) -> str:
    """``<backbone>-<checkpoint stem>`` with characters a pack name cannot hold replaced by ``-``."""
    stem = checkpoint.stem if checkpoint.suffix else checkpoint.name
    backbone = backbone.rsplit(":", 1)[-1] if ":" in backbone else backbone
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", f"{backbone}-{stem}").strip("-.") or "exported"


def _check_options(opts: ExportOptions) -> None:
    if opts.name is not None and not PACK_NAME.match(opts.name):
        raise ExportError(f"pack name {opts.name!r}: use letters, digits, '_', '.', '-'", "export_failed")
    if opts.fp16 and opts.int8_calibration:
        raise ExportError("choose one of --fp16 and --int8-calibration", code="export_failed")
    if opts.eval_bin and opts.eval_pairs:
        raise ExportError("give one evaluation set (--eval-bin or --eval-pairs)", code="bad_eval_set")
    if not (opts.eval_bin or opts.eval_pairs) and opts.threshold is None:
        raise ExportError(
            "a pack needs a measured threshold: give an evaluation set (--eval-bin FILE.bin or --eval-pairs "
            "pairs.txt --eval-images DIR), or --threshold VALUE to set one by hand",
            code="bad_eval_set",
        )
    if (opts.eval_bin or opts.eval_pairs) and opts.threshold is not None:
        raise ExportError("--threshold and an evaluation set exclude each other", code="bad_eval_set")
    if opts.tensorrt_int8 and not opts.int8_calibration:
        raise ExportError(
            "--tensorrt-int8 builds from the QDQ model: add --int8-calibration DIR", "export_failed"
        )
    if opts.tensorrt:
        from training.export.tensorrt_build import require_tensorrt

        require_tensorrt()
    if opts.out.exists() and any(opts.out.iterdir()) and not opts.force:
        raise ExportError(f"{opts.out} exists and is not empty; use --force to replace it", code="out_exists")


def _manifest(opts, ckpt, name, recogniser: dict, detector, thresholds, notes):
    from models.packs.manifest import ModelEntry, PackManifest, Threshold

    return PackManifest(
        name=name,
        version=opts.version,
        license=opts.license,
        source=f"exported by marginface from {ckpt.path.name} (step {ckpt.step}, {ckpt.backbone})",
        description=f"{ckpt.backbone} {ckpt.embedding_size}-d recogniser ({opts.precision}) "
        f"with the {detector.format} detector",
        models=[detector, ModelEntry(**recogniser)],
        thresholds={key: Threshold(**value) for key, value in thresholds.items()},
        notes=notes,
    )


def export_pack(opts: ExportOptions) -> dict:
    """Run the whole export; returns a summary (manifest path, parity, evaluation, thresholds)."""
    from models.packs.store import resolve_pack, sha256_file
    from training.export import evaluation_step, onnx_export, parity
    from training.export.checkpoint import load_checkpoint
    from training.export.faces import faces_from_dir, sample_faces
    from training.export.model_card import render_model_card

    _check_options(opts)
    bar = tqdm(total=6, desc="export", unit="step")
    ckpt = load_checkpoint(opts.checkpoint, trust_code=opts.trust_code)
    name = opts.name or default_pack_name(ckpt.backbone, Path(opts.checkpoint))
    det_dir, det_manifest = resolve_pack(opts.detector_from, verify=True)
    det_entry = det_manifest.model("detector")
    faces = faces_from_dir(opts.faces, limit=64, pack=det_dir) if opts.faces else sample_faces(det_dir)
    bar.update(1)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{opts.out.name}.exporting-", dir=opts.out.parent))
    try:
        fp32_path = staging / RECOGNISER_FILES["fp32"]
        bar.set_postfix_str("onnx")
        graph = onnx_export.export_onnx(ckpt.model, fp32_path, opset=opts.opset, exporter=opts.exporter)
        reference = parity.torch_embeddings(ckpt.model, faces)
        reports = [parity.check_parity(reference, fp32_path, faces, "fp32")]
        bar.update(1)
        final_path, extra = fp32_path, {}
        if opts.fp16:
            final_path = staging / RECOGNISER_FILES["fp16"]
            onnx_export.convert_fp16(fp32_path, final_path)
            reports.append(parity.check_parity(reference, final_path, faces, "fp16"))
        elif opts.int8_calibration:
            from training.export.quantize import quantize_int8

            bar.set_postfix_str("int8 calibration")
            calibration = faces_from_dir(opts.int8_calibration, limit=opts.calibration_limit, pack=det_dir)
            final_path = staging / RECOGNISER_FILES["int8"]
            extra["quantization"] = quantize_int8(fp32_path, final_path, calibration)
            reports.append(parity.check_parity(reference, final_path, faces, "int8", opts.int8_min_cosine))
        bar.update(1)
        shutil.copyfile(det_dir / det_entry.file, staging / det_entry.file)
        recogniser = {
            "file": final_path.name,
            "sha256": sha256_file(final_path),
            "role": "recogniser",
            "format": "arcface",
            "input_size": (112, 112),
            "color_order": "RGB",
            "mean": (127.5, 127.5, 127.5),
            "std": (127.5, 127.5, 127.5),
            "embedding_size": ckpt.embedding_size,
            "dynamic_batch": True,
            "precision": opts.precision,
            "parity": reports[-1].to_dict(),
            **extra,
        }
        bar.set_postfix_str("evaluation")
        evaluation, thresholds = evaluation_step.evaluate_and_threshold(
            opts, ckpt, staging, recogniser, det_entry, fp32_path
        )
        bar.update(1)
        if final_path != fp32_path:
            fp32_path.unlink()
        notes = {
            "export": {**graph, "input": "data", "output": "embedding"},
            "parity": [r.to_dict() for r in reports],
            "evaluation": evaluation,
            "checkpoint": {"file": ckpt.path.name, "step": ckpt.step, "epoch": ckpt.epoch, "eval": ckpt.eval},
            "training_config": ckpt.config,
            "detector_from": {"pack": det_manifest.name, "version": det_manifest.version},
        }
        if opts.tensorrt:
            from training.export.tensorrt_build import build_engine

            bar.set_postfix_str("tensorrt")
            engine = staging / final_path.with_suffix(".engine").name
            notes["tensorrt"] = build_engine(
                final_path, engine, fp16=True, int8=opts.tensorrt_int8, batch=opts.tensorrt_batch
            )
            notes["tensorrt"]["sha256"] = sha256_file(engine)
        manifest = _manifest(opts, ckpt, name, recogniser, det_entry, thresholds, notes)
        manifest.write(staging)
        card = render_model_card(
            name, ckpt, opts.precision, graph, notes["parity"], thresholds, evaluation,
            {"pack": det_manifest.name, "file": det_entry.file, "format": det_entry.format},
        )
        (staging / "MODEL_CARD.md").write_text(card)
        bar.update(1)
        if opts.out.exists():
            shutil.rmtree(opts.out)
        staging.rename(opts.out)
        bar.update(1)
    finally:
        bar.close()
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return {
        "pack": str(opts.out),
        "name": name,
        "precision": opts.precision,
        "parity": notes["parity"],
        "evaluation": evaluation,
        "thresholds": thresholds,
    }
