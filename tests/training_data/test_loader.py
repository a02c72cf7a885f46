"""The training loader: reproducible order and augmentation, resume, sharding, worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import (
    EpochSampler,
    ImageFolderDataset,
    RecordIODataset,
    build_train_loader,
    build_transform,
)
from training.data.pack_folder import pack_image_folder


def batches(loader, epoch: int, start_batch: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch, start_batch)
    return [(images.clone(), labels.clone()) for images, labels in loader]


def test_sampler_shards_a_global_batch_across_ranks():
    single = EpochSampler(23, batch_size=4, world_size=1, seed=5)
    ranks = [EpochSampler(23, batch_size=2, world_size=2, rank=r, seed=5) for r in range(2)]
    for sampler in (single, *ranks):
        sampler.set_epoch(3)
    full = list(single)
    r0, r1 = list(ranks[0]), list(ranks[1])
    assert len(full) == 20 and len(r0) == len(r1) == 10  # 23 → 5 global batches of 4, tail dropped
    assert len({i for i, _ in full}) == 20
    for b in range(5):  # global batch b = rank 0's slice + rank 1's slice, same sample seeds
        assert full[4 * b : 4 * b + 4] == r0[2 * b : 2 * b + 2] + r1[2 * b : 2 * b + 2]
    single.set_epoch(4)
    assert [i for i, _ in single] != [i for i, _ in full]
    with pytest.raises(ValueError):
        EpochSampler(3, batch_size=2, world_size=2)


def test_same_seed_same_batches_and_flips_with_or_without_workers(identity_folder: Path):
    ds = ImageFolderDataset(identity_folder, build_transform(train=True))
    plain = ImageFolderDataset(identity_folder)
    state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    in_process = build_train_loader(ds, batch_size=4, workers=0, seed=11)
    reference = batches(in_process, epoch=2)
    assert np.array_equal(np.random.get_state()[1], state)  # the trainer's RNG streams are left alone
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert len(reference) == 3 and reference[0][0].shape == (4, 3, 112, 112)
    workers = build_train_loader(ds, batch_size=4, workers=2, seed=11)
    for (a, la), (b, lb) in zip(reference, batches(workers, epoch=2), strict=True):
        assert torch.equal(la, lb) and torch.equal(a, b)
    # flips happened for some samples and not for others: compare with the unflipped images
    order = [i for i, _ in iter(in_process.sampler)]
    seen = list(zip(order, torch.cat([b for b, _ in reference]), strict=True))
    flipped = [torch.equal(img, plain[i][0].flip(-1)) for i, img in seen]
    unflipped = [torch.equal(img, plain[i][0]) for i, img in seen]
    assert all(f or u for f, u in zip(flipped, unflipped, strict=True)) and any(flipped) and any(unflipped)
    # resuming at batch 1 of epoch 2 reproduces the rest of that epoch exactly, flips included
    resumed = batches(workers, epoch=2, start_batch=1)
    assert len(workers) == 2 and len(resumed) == 2
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(reference[1:], resumed, strict=True))
    assert not torch.equal(batches(workers, epoch=3)[0][0], reference[0][0])
    del workers


def test_distributed_rank_with_explicit_world_size_over_recordio(identity_folder: Path, tmp_path: Path):
    summary = pack_image_folder(identity_folder, tmp_path, progress=False)
    ds = RecordIODataset(summary["rec"], summary["idx"])
    ranks = [build_train_loader(ds, batch_size=3, workers=2 if r else 0, world_size=2, rank=r, seed=1)
             for r in range(2)]
    whole = build_train_loader(ds, batch_size=6, workers=0, seed=1)
    got = [batches(loader, epoch=0) for loader in ranks]
    expected = batches(whole, epoch=0)
    assert len(expected) == 2 and all(len(g) == 2 for g in got)
    for b, (images, labels) in enumerate(expected):  # forked workers read the .rec through their own handle
        assert torch.equal(torch.cat([got[0][b][1], got[1][b][1]]), labels)
        assert torch.equal(torch.cat([got[0][b][0], got[1][b][0]]), images)
    with pytest.raises(ValueError):
        build_train_loader(ds, batch_size=3, workers=0, world_size=2, rank=2)
