"""Data parallelism: 2 CPU processes (gloo) end with the same parameters as 1 process with the same
global batch, with a replicated head and with sharded Partial FC (sample rate 1). The tiny backbone has
no BatchNorm, so the comparison is about gradient averaging, data split, flips and the global
gradient-norm clip, not about per-process batch statistics (SyncBatchNorm does not run on CPU)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from tests.training.conftest import tiny_config

VARIANTS = {"replicated": False, "partial_fc": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(root: Path, batch_size: int, partial_fc: bool, bin_path: Path) -> dict:
    return tiny_config(
        root,
        batch_size=batch_size,
        steps=4,
        device="cpu",
        grad_clip=1.0,
        loss={"name": "cosface", "s": 16, "m": 0.2},
        checkpoint={"every_steps": 4},
        partial_fc={"enabled": partial_fc, "sample_rate": 1.0},
        eval={"sets": [{"name": "tiny", "bin": str(bin_path)}], "every_steps": 2},
    )


def _worker(rank: int, world: int, port: int, root: str, out: str, bin_path: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from training.config import validate_config
    from training.distributed import cleanup, init_distributed
    from training.trainer import Trainer

    info = init_distributed("cpu")
    try:
        for name, partial_fc in VARIANTS.items():
            cfg = validate_config(_config(Path(root), 8 // world, partial_fc, Path(bin_path)))
            Trainer(cfg, Path(out) / name, progress=False, dist_info=info).fit()
    finally:
        cleanup(info)


def test_two_processes_match_one_process(
    face_folder: Path, lfw_like_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    from training.config import validate_config
    from training.trainer import Trainer

    for name, partial_fc in VARIANTS.items():
        Trainer(
            validate_config(_config(face_folder, 8, partial_fc, lfw_like_bin)),
            tmp_path / "one" / name,
            progress=False,
        ).fit()
    args = (2, _free_port(), str(face_folder), str(tmp_path / "two"), str(lfw_like_bin))
    mp.spawn(_worker, args=args, nprocs=2, join=True)

    for name, partial_fc in VARIANTS.items():
        single = torch.load(tmp_path / "one" / name / "checkpoint_last.pt", weights_only=False)
        double = torch.load(tmp_path / "two" / name / "checkpoint_last.pt", weights_only=False)
        assert single["step"] == double["step"] == 4 and double["world_size"] == 2
        for key, value in single["backbone"].items():
            torch.testing.assert_close(
                double["backbone"][key], value, rtol=1e-5, atol=1e-6, msg=f"{name} {key}"
            )
        if partial_fc:  # rank 0 holds classes [0, 3), rank 1 [3, 6)
            weight = torch.cat([s["loss"]["weight"] for s in double["rank_states"]])
        else:
            weight = double["loss"]["weight"]
        torch.testing.assert_close(weight, single["loss"]["weight"], rtol=1e-5, atol=1e-6, msg=name)
        # the best checkpoint (written after an evaluation on rank 0) also holds every rank's state
        best = torch.load(tmp_path / "two" / name / "checkpoint_best.pt", weights_only=False)
        assert best["step"] in (2, 4) and len(best["rank_states"]) == 2
        assert best["eval"]["tiny"]["accuracy"] == pytest.approx(
            torch.load(tmp_path / "one" / name / "checkpoint_best.pt", weights_only=False)["eval"]["tiny"][
                "accuracy"
            ]
        )
