"""MODEL_CARD.md for an exported pack: what the model is, how it was trained, how well it does."""

from __future__ import annotations

import json
from typing import Any

from training.export.checkpoint import LoadedCheckpoint


def _pct(value: Any) -> str:
    return f"{100 * float(value):.2f}%" if isinstance(value, (int, float)) else "n/a"


def _training_eval_lines(checkpoint: LoadedCheckpoint) -> list[str]:
    if not checkpoint.eval:
        return ["The checkpoint records no evaluation results."]
    lines = ["| set | accuracy | details |", "|---|---|---|"]
    for name, result in checkpoint.eval.items():
        if isinstance(result, dict):
            acc = result.get("accuracy")
            keys = ("accuracy_std", "best_threshold_cosine", "step")
            detail = {k: v for k, v in result.items() if k in keys}
            lines.append(f"| {name} | {_pct(acc)} | {json.dumps(detail)} |")
        else:
            lines.append(f"| {name} | {result} | |")
    return lines


def _export_eval_lines(evaluation: dict) -> list[str]:
    if not evaluation:
        return ["No evaluation set was given at export time."]
    lines = [
        f"Set: `{evaluation.get('set')}` ({evaluation.get('kind')}), flip test-time augmentation, "
        "10-fold LFW protocol.",
        "",
        "| model | accuracy | ± std | TAR@FAR=1e-3 (set's own negatives) |",
        "|---|---|---|---|",
    ]
    for label, result in evaluation.get("results", {}).items():
        tar = (result.get("tar_at_far") or {}).get("0.001")
        tar_text = _pct(tar["tar"]) if tar else "n/a (too few negatives)"
        lines.append(
            f"| {label} | {_pct(result.get('accuracy'))} | {_pct(result.get('accuracy_std'))} | {tar_text} |"
        )
    for key, value in evaluation.get("deltas", {}).items():
        lines.append(f"\n{key}: {value:+.3f} accuracy points")
    return lines


def render_model_card(
    name: str,
    checkpoint: LoadedCheckpoint,
    precision: str,
    graph: dict,
    parity: list[dict],
    thresholds: dict,
    evaluation: dict,
    detector: dict,
) -> str:
    """The card as Markdown."""
    cfg = checkpoint.config
    loss = cfg.get("loss", {})
    data = cfg.get("data", {})
    optimizer = cfg.get("optimizer", {})
    schedule = cfg.get("schedule", {})
    out = [
        f"# Model card: {name}",
        "",
        "## Model",
        f"- Architecture: `{checkpoint.backbone}`, {checkpoint.parameters / 1e6:.2f} M parameters, "
        f"{checkpoint.embedding_size}-d embedding (L2-normalised at run time; similarity = cosine).",
        "- Input: an aligned 112×112 face crop (ArcFace 5-point template), RGB, (x − 127.5) / 127.5, "
        "N×3×112×112 float32 with a dynamic batch axis; input `data`, output `embedding`.",
        f"- Stored precision: {precision}; ONNX opset {graph.get('opset')}, exported with the "
        f"{graph.get('exporter')} exporter of torch.onnx.",
        f"- Detector (copied from pack `{detector.get('pack')}`): `{detector.get('file')}` "
        f"({detector.get('format')}).",
        "",
        "## Training",
        f"- Loss: `{loss.get('name', 'n/a')}` with "
        f"{json.dumps({k: v for k, v in loss.items() if k != 'name'})}.",
        f"- Data: {json.dumps(data) if data else 'not recorded'}.",
        f"- Optimiser: {json.dumps(optimizer) if optimizer else 'not recorded'}; "
        f"schedule: {json.dumps(schedule) if schedule else 'not recorded'}.",
        f"- Batch size {cfg.get('batch_size', 'n/a')}, precision {cfg.get('precision', 'n/a')}; "
        f"stopped at step {checkpoint.step}, epoch {checkpoint.epoch}.",
        f"- Checkpoint: `{checkpoint.path.name}`.",
        "",
        "## Evaluation recorded by the trainer (PyTorch)",
        *_training_eval_lines(checkpoint),
        "",
        "## Evaluation at export",
        *_export_eval_lines(evaluation),
        "",
        "## Export parity (PyTorch vs ONNX Runtime, per-face cosine)",
        "| precision | faces | min cosine | required | max abs diff |",
        "|---|---|---|---|---|",
    ]
    for report in parity:
        out.append(
            f"| {report['precision']} | {report['faces']} | {report['min_cosine']:.6f} | "
            f"{report['required_cosine']} | {report['max_abs_diff']} |"
        )
    out += ["", "## Thresholds (cosine similarity; accept when similarity ≥ threshold)"]
    for key, value in thresholds.items():
        far = f" at FAR {value['far']:g}" if value.get("far") is not None else ""
        out.append(f"- `{key}`: {value['value']:.4f}{far} — {value['source']}")
    out += [
        "",
        "## Intended use and limitations",
        "- Face verification (1:1) and identification (1:N) on aligned crops from the pack's detector.",
        "- Accuracy depends on the training data's demographics, pose, age and image quality; measure on "
        "data like yours and set the threshold from your own false-accept budget.",
        "- Licence: the weights inherit the terms of the training data; see the pack's `license` field.",
        "",
    ]
    return "\n".join(out)
