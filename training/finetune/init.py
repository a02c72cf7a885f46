"""Initial backbone weights from a pack, an ONNX file or a trainer checkpoint."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from training.config import ConfigError

TRAINER_MEAN, TRAINER_STD = (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)


def recogniser_onnx(pack: str) -> Path:
    """The recogniser ONNX of an installed pack, checked to take what the trainer feeds (or SFace's)."""
    from models.packs.store import model_path, resolve_pack

    folder, manifest = resolve_pack(pack)
    entry = manifest.model("recogniser")
    in_graph = tuple(entry.mean) == (0.0, 0.0, 0.0) and tuple(entry.std) == (1.0, 1.0, 1.0)
    trainer_like = tuple(entry.mean) == TRAINER_MEAN and tuple(entry.std) == TRAINER_STD
    if entry.color_order != "RGB" or not (in_graph or trainer_like):
        raise ConfigError(
            f"pack {pack!r}: its recogniser takes {entry.color_order}, mean {entry.mean}, std {entry.std}; "
            "fine-tuning needs RGB (x − 127.5)/127.5 or a graph that normalises its input itself",
            "bad_init",
        )
    return model_path(folder, entry.file)


def load_initial_weights(backbone: nn.Module, spec: str, backbone_name: str) -> str:
    """Load ``spec`` into ``backbone``; returns a one-line description of where the weights came from."""
    from training.onnx_import import OnnxImportError, load_onnx_weights

    if spec.startswith("pack:"):
        path, what = recogniser_onnx(spec.removeprefix("pack:")), f"pack {spec.removeprefix('pack:')}"
    else:
        path, what = Path(spec).expanduser(), str(spec)
    if path.suffix == ".onnx":
        if not path.is_file():
            raise ConfigError(f"finetune.init: {path} not found", "bad_init")
        try:
            report = load_onnx_weights(backbone, path, backbone_name)
        except OnnxImportError as exc:
            raise ConfigError(
                f"finetune.init {spec}: {exc} (backbone {backbone_name!r})", "bad_init"
            ) from exc
        return f"{what}: {report.tensors} tensors by {report.method} from {path.name}"
    from training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state["config"].get("backbone") != backbone_name:
        raise ConfigError(
            f"finetune.init {spec}: checkpoint backbone {state['config'].get('backbone')!r}"
            f" is not {backbone_name!r}",
            "bad_init",
        )
    backbone.load_state_dict(state["backbone"])
    return f"checkpoint {path} (step {state.get('step')})"
