"""Body of the two-process Partial FC test (run under torch.multiprocessing.spawn, gloo backend)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from training.losses import build_loss
from training.partial_fc import PartialFC

DIM, CLASSES, BATCH = 5, 9, 12
# The batch is split unevenly: rank 0 has 5 samples, rank 1 has 7.
SPLIT = (0, 5, 12)
# name, hyperparameters, build Partial FC from a module (True) or by name (False)
CASES = [
    ("normface", {"s": 20.0}, False),
    ("cosface", {}, True),
    ("arcface", {"s": 30.0, "m": 0.5}, False),
    ("arcface", {"s": 30.0, "m": 0.5, "straight_through": True}, True),
    ("combined", {"s": 30.0}, True),
    ("sphereface", {}, True),
    ("lsoftmax", {"m": 3}, False),
    ("airface", {"s": 20.0}, True),
    ("x2softmax", {"s": 20.0}, True),
    ("adacos", {"dynamic": True}, True),
    ("adacos", {"dynamic": False}, False),
    ("magface", {"s": 32.0}, True),
    ("curricularface", {"s": 30.0}, True),
    ("adaface", {"s": 30.0}, True),
    ("subcenter-arcface", {"s": 30.0, "k": 2}, True),
    ("elasticface-cos", {"s": 30.0}, True),  # compared in eval mode (random margins in training)
]


def _data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + step)
    x = torch.randn(BATCH, DIM, generator=gen, dtype=torch.float64) * 25
    return x, torch.randint(0, CLASSES, (BATCH,), generator=gen)


def _fresh(name: str, hp: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    loss = build_loss(name, DIM, CLASSES, **hp).double()
    with torch.no_grad():
        loss.weight.normal_()
    return loss


def _check(rank: int, name: str, hp: dict, from_module: bool) -> None:
    reference = _fresh(name, hp)
    if from_module:
        pfc = PartialFC(_fresh(name, hp), DIM, CLASSES).double()
    else:
        pfc = PartialFC(name, DIM, CLASSES, **hp).double()
        with torch.no_grad():
            pfc.weight.copy_(reference.weight[pfc.class_start : pfc.class_start + pfc.num_local])
    assert pfc.num_local == (5 if rank == 0 else 4) and pfc.class_start == (0 if rank == 0 else 5)
    train = not name.startswith("elasticface")
    reference.train(train)
    pfc.train(train)
    lo, hi = SPLIT[rank], SPLIT[rank + 1]
    for step in range(2):  # two steps: the running state must evolve identically
        x, y = _data(step)
        x_ref = x.clone().requires_grad_(True)
        value = reference(x_ref, y)
        value.backward()
        x_local = x[lo:hi].clone().requires_grad_(True)
        got = pfc(x_local, y[lo:hi])
        got.backward()
        where = f"{name} {hp} step {step} rank {rank}"
        torch.testing.assert_close(got, value.detach(), rtol=1e-10, atol=1e-10, msg=where)
        torch.testing.assert_close(x_local.grad, x_ref.grad[lo:hi], rtol=1e-8, atol=1e-10, msg=where)
        shard = reference.weight.grad[pfc.class_start : pfc.class_start + pfc.num_local]
        torch.testing.assert_close(pfc.weight.grad, shard, rtol=1e-8, atol=1e-10, msg=where)
        reference.weight.grad = None
        pfc.weight.grad = None
        for key, buffer in reference.named_buffers():
            torch.testing.assert_close(dict(pfc.margin_loss.named_buffers())[key], buffer, msg=where)


def _check_sampling(rank: int) -> None:
    torch.manual_seed(1 + rank)  # each rank samples its own negatives
    pfc = PartialFC("arcface", DIM, CLASSES, sample_rate=0.5, s=30.0).double().train()
    x, y = _data(7)
    lo, hi = SPLIT[rank], SPLIT[rank + 1]
    x_local = x[lo:hi].clone().requires_grad_(True)
    value = pfc(x_local, y[lo:hi])
    value.backward()
    sampled = pfc.last_sampled + pfc.class_start
    positives = {int(c) for c in y if pfc.class_start <= int(c) < pfc.class_start + pfc.num_local}
    assert positives <= set(sampled.tolist())
    assert len(sampled) == max(len(positives), int(0.5 * pfc.num_local))
    unused = torch.ones(pfc.num_local, dtype=torch.bool)
    unused[pfc.last_sampled] = False
    assert torch.all(pfc.weight.grad[unused] == 0)
    # the same as a single-process ArcFace over exactly the sampled classes of both ranks
    weights = [torch.zeros(CLASSES, DIM, dtype=torch.float64) for _ in range(2)]
    full = torch.zeros(CLASSES, DIM, dtype=torch.float64)
    full[pfc.class_start : pfc.class_start + pfc.num_local] = pfc.weight.detach()
    dist.all_gather(weights, full)
    full = weights[0] + weights[1]
    chosen = [torch.zeros(CLASSES, dtype=torch.long) for _ in range(2)]
    mark = torch.zeros(CLASSES, dtype=torch.long)
    mark[sampled] = 1
    dist.all_gather(chosen, mark)
    kept = torch.nonzero(chosen[0] + chosen[1]).squeeze(1)
    remap = {int(c): i for i, c in enumerate(kept)}
    reference = build_loss("arcface", DIM, len(kept), s=30.0).double()
    with torch.no_grad():
        reference.weight.copy_(full[kept])
    x_ref = x.clone().requires_grad_(True)
    expected = reference(x_ref, torch.tensor([remap[int(c)] for c in y]))
    expected.backward()
    torch.testing.assert_close(value.detach(), expected.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(x_local.grad, x_ref.grad[lo:hi], rtol=1e-8, atol=1e-10)


def _check_grad_scale(rank: int) -> None:
    plain = PartialFC(_fresh("cosface", {}), DIM, CLASSES).double()
    scaled = PartialFC(_fresh("magface", {}), DIM, CLASSES, scale_embedding_grad=True).double()
    reference = PartialFC(_fresh("magface", {}), DIM, CLASSES).double()
    x, y = _data(3)
    lo, hi = SPLIT[rank], SPLIT[rank + 1]
    grads = []
    for module in (scaled, reference):
        x_local = x[lo:hi].clone().requires_grad_(True)
        module(x_local, y[lo:hi]).backward()
        grads.append(x_local.grad)
    torch.testing.assert_close(grads[0], 2.0 * grads[1])
    assert plain.grad_scale == 1.0


def run(rank: int, world_size: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        for name, hp, from_module in CASES:
            _check(rank, name, hp, from_module)
        _check_sampling(rank)
        _check_grad_scale(rank)
    finally:
        dist.destroy_process_group()
