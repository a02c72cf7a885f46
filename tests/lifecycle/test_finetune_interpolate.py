"""WiSE-FT: a fine-tuned checkpoint interpolated with its initial weights (α 0 = the default pack's model,
α 1 = the fine-tuned one, in between both weights and BatchNorm statistics on the line), on real faces."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.lifecycle.faces import cosines, to_trainer_input
from tests.lifecycle.test_finetune import _config, crop_folder, faces  # noqa: F401 - fixtures
from training.config import ConfigError
from training.evaluation.embed import load_backbone
from training.finetune.interpolate import INTERPOLATED_FILE, interpolate_checkpoint, interpolate_state, main
from training.trainer import Trainer


def _embed(checkpoint, crops: np.ndarray) -> np.ndarray:
    backbone, _ = load_backbone(checkpoint)
    with torch.no_grad():
        return backbone(torch.from_numpy(to_trainer_input(crops))).numpy()


@pytest.fixture(scope="module")
def finetuned(crop_folder, tmp_path_factory):  # noqa: F811
    """Two steps with every unfrozen layer and BatchNorm statistics learning; ``interpolate: 0.5``."""
    cfg = _config(crop_folder, 2, frozen_bn=False, interpolate=0.5)
    cfg.optimizer.lr = 0.2
    out = tmp_path_factory.mktemp("wise") / "run"
    Trainer(cfg, out, progress=False).fit()
    return out


def test_interpolated_checkpoints_lie_between_the_models(finetuned, faces, default_pack, tmp_path):  # noqa: F811
    last = finetuned / "checkpoint_last.pt"
    start = tmp_path / "a0.pt"
    assert main([str(last), "--alpha", "0", "--out", str(start)]) == 0
    end = interpolate_checkpoint(last, 1.0, tmp_path / "a1.pt")

    # α 0 is the served default model, α 1 the fine-tuned checkpoint, tensor for tensor
    session = ort.InferenceSession(str(default_pack / "sface_2021dec_float32.onnx"))
    rgb = np.ascontiguousarray(faces[:, :, :, ::-1].transpose(0, 3, 1, 2)).astype(np.float32)
    served = session.run(None, {"data": rgb})[0]
    base, tuned = _embed(start, faces), _embed(last, faces)
    assert cosines(served, base).min() >= 0.9999
    assert cosines(served, tuned).min() < 0.9999, "fine-tuning did not move the embeddings"
    tuned_state, end_state = torch.load(last)["backbone"], torch.load(end)["backbone"]
    assert all(torch.equal(tuned_state[k], end_state[k]) for k in tuned_state)
    assert np.array_equal(_embed(end, faces), tuned)

    # the trainer's interpolated.pt (α 0.5): the midpoint of every float tensor, BN statistics included
    mid_path = finetuned / INTERPOLATED_FILE
    mid_state, base_state = torch.load(mid_path)["backbone"], torch.load(start)["backbone"]
    assert torch.load(mid_path)["interpolation"]["alpha"] == 0.5
    assert not torch.equal(base_state["bn.running_mean"], tuned_state["bn.running_mean"])
    for name, value in mid_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (base_state[name] + tuned_state[name]) / 2)
        else:
            assert torch.equal(value, tuned_state[name])
    mid = _embed(mid_path, faces)
    assert cosines(mid, tuned).mean() > cosines(base, tuned).mean()
    assert cosines(mid, base).mean() > cosines(tuned, base).mean()


def test_interpolate_state_checks_its_inputs():
    a = {"w": torch.zeros(2), "n": torch.tensor(0)}
    b = {"w": torch.ones(2), "n": torch.tensor(7)}
    out = interpolate_state(a, b, 0.25)
    assert torch.equal(out["w"], torch.full((2,), 0.25)) and int(out["n"]) == 7
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        interpolate_state(a, b, 1.5)
    with pytest.raises(ConfigError, match="differ"):
        interpolate_state(a, {"w": torch.ones(2)}, 0.5)
    with pytest.raises(ConfigError, match="shape"):
        interpolate_state(a, {"w": torch.ones(3), "n": torch.tensor(1)}, 0.5)
