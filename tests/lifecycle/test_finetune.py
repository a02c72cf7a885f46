"""A few fine-tuning steps from the default pack: initial weights, centres, freezing, warm-up, the
compatibility term, resume, and the export gate (checkpoint → pack that serves the same embeddings)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.lifecycle.faces import cosines, real_aligned_faces, to_trainer_input
from training.config import validate_config
from training.finetune.setup import class_means
from training.trainer import Trainer

FROZEN = "body.0"


@pytest.fixture(scope="module")
def faces(t1_bgr, astronaut_bgr, aligned_crop_path, default_pack) -> np.ndarray:
    return real_aligned_faces(t1_bgr, astronaut_bgr, aligned_crop_path)


@pytest.fixture(scope="module")
def crop_folder(faces, tmp_path_factory) -> Path:
    """One identity per real face, four variants each (shifts, brightness), as aligned JPEG crops."""
    root = tmp_path_factory.mktemp("finetune_data")
    for i, crop in enumerate(faces):
        folder = root / f"id{i:02d}"
        folder.mkdir()
        variants = [
            crop,
            np.roll(crop, 3, 1),
            np.roll(crop, -3, 0),
            cv2.convertScaleAbs(crop, alpha=1.1, beta=-8),
        ]
        for j, image in enumerate(variants):
            cv2.imwrite(str(folder / f"{j}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


def _config(root: Path, steps: int, **finetune) -> object:
    return validate_config(
        {
            "name": "ft-test",
            "backbone": "sface",
            "embedding_size": 128,
            "loss": {"name": "arcface", "s": 32, "m": 0.3},
            "data": {"kind": "folder", "root": str(root), "workers": 0},
            "batch_size": 8,
            "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
            "schedule": {"name": "constant"},
            "steps": steps,
            "device": "cpu",
            "checkpoint": {"every_steps": 1, "keep_last": 1},
            "log_every": 1,
            "finetune": {"init": "pack:default", "freeze": [FROZEN], **finetune},
        }
    )


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_finetune_from_default_pack(crop_folder, faces, default_pack, tmp_path):
    cfg = _config(crop_folder, 3, backbone_frozen_steps=1, compat={"kind": "cosine", "weight": 1.0})
    out = tmp_path / "run"
    trainer = Trainer(cfg, out, progress=False)

    # the backbone starts as the served model
    session = ort.InferenceSession(str(default_pack / "sface_2021dec_float32.onnx"))
    rgb = np.ascontiguousarray(faces[:, :, :, ::-1].transpose(0, 3, 1, 2)).astype(np.float32)
    served = session.run(None, {"data": rgb})[0]
    with torch.no_grad():
        start = trainer.backbone.eval()(torch.from_numpy(to_trainer_input(faces))).numpy()
    assert cosines(served, start).min() >= 0.9999

    # centres are the initial model's unit mean embeddings per identity (not random)
    means, counts = class_means(trainer.backbone, trainer.dataset, trainer.num_classes, torch.device("cpu"))
    assert counts.min() == 4
    centre_cos = torch.nn.functional.cosine_similarity(trainer.head.weight.detach(), means, dim=1)
    assert centre_cos.min() > 0.999

    before_backbone, before_head = _snapshot(trainer.backbone), trainer.head.weight.detach().clone()
    trainer.fit(stop_after=1)  # step 0: head only (backbone lr 0)
    assert trainer.optimizer.param_groups[1]["lr"] > 0  # the backbone learns from step 1
    after = _snapshot(trainer.backbone)
    assert all(torch.equal(before_backbone[k], after[k]) for k in before_backbone)
    assert not torch.equal(before_head, trainer.head.weight.detach())

    resumed = Trainer(cfg, out, resume=out, progress=False)
    summary = resumed.fit()
    assert summary["step"] == 3
    final = _snapshot(resumed.backbone)
    frozen = [k for k in final if k.startswith(FROZEN + ".") and not k.endswith("num_batches_tracked")]
    assert frozen and all(torch.equal(before_backbone[k], final[k]) for k in frozen)
    moved = [k for k in final if k.startswith("fc.") and not torch.equal(before_backbone[k], final[k])]
    assert moved, "the unfrozen layers did not learn"
    # frozen BN statistics: the running means are those of the initial model
    assert torch.equal(before_backbone["bn.running_mean"], final["bn.running_mean"])
    # with the compatibility term the new model stays close to the old one on real faces
    with torch.no_grad():
        new = resumed.backbone.eval()(torch.from_numpy(to_trainer_input(faces))).numpy()
    assert cosines(served, new).min() > 0.9
    assert resumed.model.last_compat is not None and resumed.model.last_compat >= 0

    # export gate: checkpoint → pack; the pack serves the fine-tuned embeddings
    from models.pipeline import FacePipeline
    from training.export.exporter import ExportOptions, export_pack

    pack_dir = tmp_path / "packs" / "sface-ft"
    export_pack(
        ExportOptions(checkpoint=out / "checkpoint_last.pt", out=pack_dir, name="sface-ft", threshold=0.363)
    )
    pipeline = FacePipeline.from_pack(pack_dir)
    served_new = pipeline.embed_crops(faces)
    assert cosines(served_new, new).min() >= 0.9999


def test_finetune_refuses_a_mismatched_backbone(crop_folder, default_pack, tmp_path):
    from training.config import ConfigError

    cfg = _config(crop_folder, 1)
    cfg.backbone = "mobilefacenet"
    with pytest.raises(ConfigError, match="finetune.init"):
        Trainer(cfg, tmp_path / "bad", progress=False)


def test_centre_pass_is_cached_per_weights_and_data(crop_folder, default_pack, tmp_path, monkeypatch):
    """Runs of a sweep share one pass over the data; a changed crop invalidates it."""
    import shutil

    import training.finetune.setup as setup

    data = tmp_path / "data"
    shutil.copytree(crop_folder, data)
    cfg = _config(data, 1)
    first = Trainer(cfg, tmp_path / "a", progress=False).head.weight.detach().clone()

    def no_pass(*args, **kwargs):
        raise AssertionError("the centre pass ran again")

    monkeypatch.setattr(setup, "class_means", no_pass)
    second = Trainer(cfg, tmp_path / "b", progress=False).head.weight.detach()
    assert torch.equal(first, second)

    crop = next(data.glob("id00/*.jpg"))
    cv2.imwrite(str(crop), cv2.flip(cv2.imread(str(crop)), 1))
    with pytest.raises(AssertionError, match="centre pass"):
        Trainer(cfg, tmp_path / "c", progress=False)
