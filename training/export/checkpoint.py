"""Load a trainer checkpoint back into an eval-mode backbone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.export.errors import ExportError


@dataclass
class LoadedCheckpoint:
    """The backbone (eval mode, CPU, float32) and what the trainer recorded about it."""

    model: Any  # torch.nn.Module; kept untyped so this module imports without torch
    backbone: str
    embedding_size: int
    config: dict
    path: Path
    step: int | None = None
    epoch: int | None = None
    eval: dict = field(default_factory=dict)
    best_metric: Any = None

    @property
    def parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))


def load_checkpoint(path: str | Path, trust_code: bool = False) -> LoadedCheckpoint:
    """Rebuild the backbone named in the checkpoint's config and load its weights (strict).

    ``path`` is a ``.pt`` file or a training output folder (its ``checkpoint_last.pt``). Unreadable files
    raise the trainer's CheckpointError (``bad_checkpoint`` / ``checkpoint_not_found``).
    """
    from training.build import build_backbone_from_config
    from training.checkpoint import load_checkpoint as read_state

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint_last.pt"
    state = read_state(path)
    config = dict(state["config"])
    if not config.get("backbone"):
        raise ExportError(f"{path}: config names no backbone", code="bad_checkpoint")
    model = build_backbone_from_config({**config, "dropout": 0.0}, trust_code=trust_code)
    try:
        model.load_state_dict(state["backbone"], strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ExportError(
            f"{path}: weights do not fit backbone {config['backbone']!r}: {exc}", code="bad_checkpoint"
        ) from exc
    return LoadedCheckpoint(
        model=model.float().eval(),
        backbone=str(config["backbone"]),
        embedding_size=int(config.get("embedding_size", 512)),
        config=config,
        path=path,
        step=state.get("step"),
        epoch=state.get("epoch"),
        eval=dict(state.get("eval") or {}),
        best_metric=state.get("best_metric"),
    )
