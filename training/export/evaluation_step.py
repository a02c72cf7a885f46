"""The evaluation part of an export: score checkpoint and exported models, derive the pack's thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.export.evaluate import (
    THRESHOLD_FARS,
    ScoredSet,
    load_bin_set,
    score_bin_embedder,
    score_bin_torch,
    score_pairs_pack,
    thresholds_at,
    verification,
)


def _entry(recogniser: dict, file: str):
    from models.packs.manifest import ModelEntry

    return ModelEntry(**{**recogniser, "file": file})


def _bin_results(opts, ckpt, staging: Path, recogniser: dict, fp32_path: Path) -> tuple[dict, ScoredSet]:
    from models.embedder import Embedder

    name = Path(opts.eval_bin).stem
    data = load_bin_set(opts.eval_bin)
    reference = score_bin_torch(ckpt.model, data, name)
    results = {"checkpoint (PyTorch fp32)": verification(reference)}
    files = [fp32_path.name] if recogniser["file"] == fp32_path.name else [fp32_path.name, recogniser["file"]]
    final: ScoredSet | None = None
    for file in files:
        embedder = Embedder(staging / file, _entry(recogniser, file), ["cpu"])
        final = score_bin_embedder(embedder, data, name)
        label = "fp32 ONNX" if file == fp32_path.name else f"{opts.precision} ONNX"
        result = verification(final)
        # Accuracy can hide differences; the pair scores themselves must agree with the checkpoint's.
        gap = float(np.max(np.abs(final.scores - reference.scores)))
        result["max_abs_pair_cosine_diff_vs_checkpoint"] = gap
        results[f"pack runtime ({label}, ONNX Runtime)"] = result
    return results, final  # type: ignore[return-value]


def _pairs_results(
    opts, staging: Path, recogniser: dict, det_entry, fp32_path: Path
) -> tuple[dict, ScoredSet]:
    from models.packs.manifest import ModelEntry, PackManifest, Threshold

    name = Path(opts.eval_pairs).stem
    files = [fp32_path.name] if recogniser["file"] == fp32_path.name else [fp32_path.name, recogniser["file"]]
    results: dict[str, Any] = {}
    final: ScoredSet | None = None
    for file in files:
        manifest = PackManifest(
            name="export-eval", version="0", license="-", source="-",
            models=[det_entry, ModelEntry(**{**recogniser, "file": file})],
            thresholds={"default": Threshold(value=0.0, source="placeholder during export")},
        )
        manifest.write(staging)
        final = score_pairs_pack(staging, Path(opts.eval_pairs), opts.eval_images, name)
        label = "fp32 ONNX" if file == fp32_path.name else f"{opts.precision} ONNX"
        results[f"pack pipeline ({label}: detect, align, embed)"] = verification(final)
    (staging / "pack.json").unlink()
    return results, final  # type: ignore[return-value]


def evaluate_and_threshold(opts, ckpt, staging: Path, recogniser: dict, det_entry, fp32_path: Path):
    """(evaluation summary, thresholds) for the manifest and the model card."""
    if not (opts.eval_bin or opts.eval_pairs):
        value = float(opts.threshold)
        source = "given on the command line at export (not measured on an evaluation set)"
        return {}, {"default": {"value": value, "far": None, "source": source}}
    if opts.eval_bin:
        results, final = _bin_results(opts, ckpt, staging, recogniser, fp32_path)
        kind = "insightface .bin (aligned crops)"
    else:
        results, final = _pairs_results(opts, staging, recogniser, det_entry, fp32_path)
        kind = "LFW-format pairs file (raw photos, the pack's detector)"
    labels = list(results)
    deltas = {}
    for label in labels[1:]:
        change = 100 * (results[label]["accuracy"] - results[labels[0]]["accuracy"])
        deltas[f"{label} − {labels[0]}"] = round(change, 3)
    measured = thresholds_at(final, THRESHOLD_FARS)
    thresholds = {}
    for far in THRESHOLD_FARS:
        point = measured[f"{far:g}"]
        source = (
            f"FAR {far:g} on {final.name} ({kind}) with the exported {opts.precision} model, flip TTA; "
            f"TAR there {100 * point['tar']:.2f}%; impostors: {point['impostors']}"
        )
        thresholds[f"far_{far:g}"] = {"value": round(point["threshold"], 5), "far": far, "source": source}
    thresholds["default"] = {**thresholds[f"far_{THRESHOLD_FARS[0]:g}"]}
    evaluation = {
        "set": final.name, "kind": kind, "results": results, "deltas": deltas, "thresholds": measured
    }
    return evaluation, thresholds
