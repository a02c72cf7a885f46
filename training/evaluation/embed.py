"""Embed aligned 112×112 crops with a backbone from a training checkpoint (flip-summed, L2-normalised)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.errors import InvalidImageError


def load_backbone(
    checkpoint: str | Path, device: str | torch.device = "cpu", trust_code: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the backbone a checkpoint's config names, load its weights, and put it in eval mode.
    A ``pkg.mod:factory`` backbone is imported only with ``trust_code``."""
    from training.build import build_backbone_from_config
    from training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint)
    backbone = build_backbone_from_config(state["config"], trust_code=trust_code)
    backbone.load_state_dict(state["backbone"])
    return backbone.to(device).eval(), state["config"]


def crops_to_tensor(crops_bgr: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """N BGR uint8 112×112×3 crops → N×3×112×112 float32 RGB in [−1, 1] (the training normalisation)."""
    batch = crops_bgr if isinstance(crops_bgr, np.ndarray) else np.stack(list(crops_bgr))
    if batch.ndim != 4 or batch.shape[1:] != (112, 112, 3):
        raise InvalidImageError(f"expected N×112×112×3 aligned crops, got {batch.shape}", "bad_image")
    rgb = batch[..., ::-1].astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))).sub_(127.5).div_(127.5)


@torch.inference_mode()
def embed_crops(
    backbone: nn.Module,
    crops_bgr: Sequence[np.ndarray] | np.ndarray,
    flip: bool = True,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """N×D float32 unit-norm embeddings; with ``flip`` the crop and its mirror are summed, then normalised."""
    was_training = backbone.training
    backbone.eval()
    device = torch.device(device)
    out = []
    starts = range(0, len(crops_bgr), batch_size)
    for start in tqdm(starts, disable=not progress, unit="batch", desc="embedding"):
        x = crops_to_tensor(crops_bgr[start : start + batch_size]).to(device)
        emb = backbone(x).float()
        if flip:
            emb = emb + backbone(x.flip(-1)).float()
        out.append(torch.nn.functional.normalize(emb, dim=1).cpu().numpy())
    backbone.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)


class CheckpointEmbedder:
    """The recogniser interface of ``models.embedder.Embedder`` (``embed(crops, flip=)``) backed by a
    training checkpoint, so the inference pipeline can detect/align with a pack and embed with it."""

    def __init__(
        self,
        checkpoint: str | Path,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        trust_code: bool = False,
    ):
        import threading

        self.backbone, self.config = load_backbone(checkpoint, device, trust_code)
        self.device, self.batch_size = torch.device(device), batch_size
        self.embedding_size = int(self.config.get("embedding_size", 512))
        self.crop_size = 112
        self.providers = [f"torch:{self.device}"]
        self._lock = threading.Lock()  # the pipeline may call from several threads

    def embed(self, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        with self._lock:
            return embed_crops(
                self.backbone, crops, flip=flip, batch_size=self.batch_size, device=self.device
            )


def use_checkpoint(
    pipeline: Any, checkpoint: str | Path, device: str = "cpu", trust_code: bool = False
) -> Any:
    """Swap a ``FacePipeline``'s recogniser for a checkpoint's backbone (detection/alignment unchanged)."""
    embedder = CheckpointEmbedder(checkpoint, device, trust_code=trust_code)
    if getattr(pipeline, "crop_size", 112) != embedder.crop_size:
        raise InvalidImageError(
            f"the pack aligns to {pipeline.crop_size} px; checkpoints take 112", "bad_image"
        )
    pipeline.embedder = embedder
    pipeline.embedding_size = embedder.embedding_size
    pipeline.providers = {**getattr(pipeline, "providers", {}), "recogniser": embedder.providers}
    pipeline.pack_name = f"{pipeline.pack_name}+checkpoint:{Path(checkpoint).name}"
    return pipeline


class OnnxBackbone(nn.Module):
    """A backbone exported to ONNX and run by ONNX Runtime (BatchNorm folded): a faster CPU embedder for
    large evaluation sets. Called like the torch backbone (N×3×112×112 float tensor → N×D tensor)."""

    def __init__(self, backbone: nn.Module, work_dir: str | Path, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        from training.export.onnx_export import export_onnx

        path = Path(work_dir) / "backbone.onnx"
        export_onnx(backbone.cpu().eval(), path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)
