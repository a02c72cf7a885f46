"""Partial FC: two gloo processes must reproduce the single-process loss, gradients and state."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from tests.losses import partial_fc_worker
from training.losses import build_loss
from training.partial_fc import PartialFC


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_match_the_single_process_loss() -> None:
    mp.spawn(partial_fc_worker.run, args=(2, _free_port()), nprocs=2, join=True)


def test_without_torch_distributed_it_is_the_plain_loss() -> None:
    torch.manual_seed(0)
    reference = build_loss("curricularface", 6, 7).double().train()
    pfc = PartialFC("curricularface", 6, 7).double().train()
    assert pfc.num_local == 7 and pfc.class_start == 0
    with torch.no_grad():
        pfc.weight.copy_(reference.weight)
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (10,))
    expected = reference(x, y)
    (gx_ref,) = torch.autograd.grad(expected, x)
    got = pfc(x, y)
    (gx,) = torch.autograd.grad(got, x)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(pfc.margin_loss.t, reference.t)


def test_unsupported_losses_are_refused() -> None:
    with pytest.raises(ValueError, match="every classification loss but softmax"):
        PartialFC("softmax", 4, 10)
    with pytest.raises(ValueError, match="every classification loss but softmax"):
        PartialFC("arcface", 4, 10, aux={"center": {"weight": 0.1}})
    with pytest.raises(ValueError, match="every classification loss but softmax"):
        PartialFC("triplet", 4, 10)
    with pytest.raises(ValueError, match="sample_rate"):
        PartialFC("arcface", 4, 10, sample_rate=0.0)
    with pytest.raises(ValueError, match="either"):
        PartialFC(build_loss("arcface", 4, 10), 4, 10, s=30.0)


def test_labels_out_of_range_are_refused() -> None:
    pfc = PartialFC("arcface", 4, 10)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        pfc(torch.randn(3, 4), torch.tensor([0, 10, 2]))


def test_partial_fc_state_dict_holds_the_shard_and_the_loss_state() -> None:
    pfc = PartialFC("adacos", 4, 10, sample_rate=0.5).train()
    pfc(torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 4, 5]))
    state = pfc.state_dict()
    assert state["weight"].shape == (10, 4) and "margin_loss.scale" in state
    assert "margin_loss.weight" not in state
