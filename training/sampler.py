"""Deterministic, resumable data order for single- and multi-process training.

Each epoch is one permutation drawn from (seed, epoch). Global batch ``b`` of step ``i`` is
``perm[i·G:(i+1)·G]`` with G = per-process batch × world size; rank ``r`` takes the contiguous slice
``[r·B:(r+1)·B]`` of it, so N processes see exactly the samples one process would with batch G.
Resuming at batch ``k`` of an epoch skips the first ``k`` global batches without loading them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    """Yields this rank's index lists; ``set_epoch(epoch, start_batch)`` positions it (drop-last)."""

    def __init__(self, num_samples: int, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0):
        if num_samples < batch_size * world_size:
            raise ValueError(
                f"{num_samples} training samples are fewer than one global batch "
                f"({batch_size} × {world_size})"
            )
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch, self.start_batch = 0, 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        return self.num_samples // self.global_batch - self.start_batch

    def batches_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.num_samples, generator=gen).tolist()
        for b in range(self.start_batch, self.batches_per_epoch()):
            start = b * self.global_batch + self.rank * self.batch_size
            yield perm[start : start + self.batch_size]


def flip_mask(seed: int, step: int, global_batch: int, rank: int, batch_size: int) -> torch.Tensor:
    """This rank's random horizontal-flip decisions for a step, drawn for the whole global batch so
    that the flips do not depend on the number of processes or on where a run was resumed."""
    gen = torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 17)
    mask = torch.rand(global_batch, generator=gen) < 0.5
    return mask[rank * batch_size : (rank + 1) * batch_size]
