"""A reproducible, resumable training DataLoader (single process or torch.distributed).

Each epoch is one permutation drawn from (seed, epoch). Global batch ``b`` is ``perm[b·G:(b+1)·G]``
with G = batch × world size; rank ``r`` takes its contiguous slice ``[r·B:(r+1)·B]``, so N processes see
exactly the samples one process sees with batch G (the tail that does not fill a global batch is
dropped). Every sample also gets a seed from (seed, epoch, position): random transforms are reseeded
with it before the sample is loaded, so the augmentations do not depend on the worker count, on
persistent workers, or on where a run was resumed (``set_epoch(epoch, start_batch)``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A well-mixed 32-bit seed for one sample (splitmix64 finaliser of the three numbers)."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + position * 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) & 0xFFFFFFFF


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's ``(index, sample_seed)`` pairs of a seeded per-epoch permutation (drop-last)."""

    def __init__(self, num_samples: int, batch_size: int, world_size: int = 1, rank: int = 0, seed: int = 0):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        if num_samples < batch_size * world_size:
            raise ValueError(f"{num_samples} samples < one global batch ({batch_size} × {world_size})")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Position the sampler at ``start_batch`` of ``epoch`` (0 = the epoch's beginning)."""
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch {start_batch} is outside 0..{self.batches_per_epoch}")
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.num_samples, generator=generator).tolist()
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, self.batches_per_epoch):
            start = b * global_batch + self.rank * self.batch_size
            for position in range(start, start + self.batch_size):
                yield perm[position], sample_seed(self.seed, self.epoch, position)


class SeededSamples(Dataset):
    """Wraps a dataset: ``[(index, seed)]`` reseeds random/NumPy/torch, then returns ``dataset[index]``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        in_worker = get_worker_info() is not None
        if not in_worker:  # keep the training process's own RNG streams untouched
            saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        torch.default_generator.manual_seed(seed)  # CPU only: CUDA generators are not touched
        try:
            return self.dataset[index]
        finally:
            if not in_worker:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.random.set_rng_state(saved[2])


class TrainLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler`; call ``set_epoch`` before iterating each epoch."""

    sampler: EpochSampler

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers must not oversubscribe the CPU


def build_train_loader(
    dataset: Dataset,
    batch_size: int,
    workers: int = 4,
    distributed: bool | None = None,
    seed: int = 0,
    world_size: int | None = None,
    rank: int | None = None,
    pin_memory: bool | None = None,
    prefetch_factor: int = 2,
) -> TrainLoader:
    """Batches of ``batch_size`` per process, shuffled reproducibly from ``seed``, last partial batch dropped.

    ``distributed=None`` shards across ranks when torch.distributed is initialised; ``world_size`` and
    ``rank`` may be given explicitly instead. Workers > 0 are persistent; ``pin_memory`` defaults to CUDA.
    """
    if distributed is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if world_size is None:
        world_size = torch.distributed.get_world_size() if distributed else 1
    if rank is None:
        rank = torch.distributed.get_rank() if distributed else 0
    sampler = EpochSampler(len(dataset), batch_size, world_size, rank, seed)  # type: ignore[arg-type]
    extra = {"persistent_workers": True, "prefetch_factor": prefetch_factor} if workers > 0 else {}
    return TrainLoader(
        SeededSamples(dataset),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),  # loader start-up leaves the global RNG alone
        **extra,
    )
