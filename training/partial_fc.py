"""Partial FC: class centres sharded across ranks, for millions of identities (insightface's scheme).

Rank r holds the contiguous class range [class_start, class_start + num_local). Every rank all-gathers
the embeddings (gradient flows back to each rank's own samples) and labels, computes the logits of its
shard with the wrapped loss's margin, and the cross-entropy is completed across shards with an
all-reduced max and sum. With ``sample_rate < 1`` a training step uses all positive centres of the
batch plus random negatives up to ``sample_rate·num_local`` per rank.

Supported: every loss whose logits are elementwise in cos θ_j given per-sample statistics (all
classification losses but ``softmax``). AdaCos' dynamic scale and CurricularFace's t use statistics
that are all-reduced across shards, so they match the single-process loss (with sampling, AdaCos' B_avg
covers the sampled classes only). Not supported: ``softmax`` (bias, unnormalised logits) and the
auxiliary metric terms (apply those to the local batch separately).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses import CLASSIFICATION_LOSSES, build_loss
from training.losses.base import ClassificationLoss, MarginContext, check_number, compute_dtype


def _world(group: Any) -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def _all_reduce(tensor: Tensor, op: Any, group: Any) -> Tensor:
    """All-reduce a copy (no autograd); the identity without torch.distributed."""
    out = tensor.detach().clone()
    if _world(group)[1] > 1:
        dist.all_reduce(out, op=op, group=group)
    return out


def _all_gather_uneven(tensor: Tensor, group: Any) -> tuple[Tensor, list[int]]:
    """Concatenate every rank's tensor along dim 0 (sizes may differ); returns it and the sizes."""
    world = _world(group)[1]
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    counts = [int(s) for s in sizes]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    chunks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(chunks, padded.contiguous(), group=group)
    return torch.cat([c[:n] for c, n in zip(chunks, counts, strict=True)]), counts


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and returns this rank's slice."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any, grad_scale: float) -> Tensor:
        gathered, counts = _all_gather_uneven(tensor, group)
        rank = _world(group)[0]
        ctx.group, ctx.grad_scale = group, grad_scale
        ctx.start, ctx.count = sum(counts[:rank]), counts[rank]
        return gathered

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total, group=ctx.group)
        local = total[ctx.start : ctx.start + ctx.count]
        return local * ctx.grad_scale if ctx.grad_scale != 1.0 else local, None, None


class _ShardedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy over logits split by class across ranks; ``target`` is -1 off this shard."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, group: Any) -> Tensor:
        op = dist.ReduceOp
        row_max = _all_reduce(
            logits.amax(dim=1) if logits.shape[1] else logits.new_full((logits.shape[0],), float("-inf")),
            op.MAX,
            group,
        )
        exp = torch.exp(logits - row_max[:, None])
        denom = _all_reduce(exp.sum(dim=1), op.SUM, group)
        here = target >= 0
        target_logit = torch.zeros_like(row_max)
        target_logit[here] = logits[here, target[here]]
        target_logit = _all_reduce(target_logit, op.SUM, group)
        loss = (torch.log(denom) + row_max - target_logit).mean()
        ctx.save_for_backward(exp / denom[:, None], target)
        return loss

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        prob, target = ctx.saved_tensors
        here = torch.nonzero(target >= 0).squeeze(1)
        grad_logits = prob.clone()
        grad_logits[here, target[here]] -= 1.0
        return grad_logits * (grad / prob.shape[0]), None, None


class PartialFC(nn.Module):
    """A classification loss whose class centres (``weight``, [num_local, D]) are this rank's shard.

    ``loss``: a registry name (built with ``hyperparameters``) or a ClassificationLoss module (its full
    ``weight`` is sliced to this rank's shard). Call it with this rank's embeddings and labels; the loss
    is the mean over the global batch. ``scale_embedding_grad``: multiply the embeddings' gradient by
    the world size, for a DDP backbone whose gradients are averaged (insightface does this).
    """

    def __init__(
        self,
        loss: str | ClassificationLoss,
        embedding_size: int,
        num_classes: int,
        sample_rate: float = 1.0,
        process_group: Any = None,
        scale_embedding_grad: bool = False,
        **hyperparameters: Any,
    ) -> None:
        super().__init__()
        unsupported = ValueError(
            "Partial FC needs a classification loss whose logits are elementwise in cos θ_j "
            f"(every classification loss but softmax, without aux terms); got {loss!r}"
        )
        if isinstance(loss, str):
            if loss not in CLASSIFICATION_LOSSES or "aux" in hyperparameters:
                raise unsupported
            margin = build_loss(loss, embedding_size, num_classes, allocate_weight=False, **hyperparameters)
        else:
            if hyperparameters:
                raise ValueError("pass hyperparameters either to the loss module or by name, not both")
            margin = loss
        if not isinstance(margin, ClassificationLoss) or not margin.supports_partial_fc:
            raise unsupported
        if margin.num_classes != num_classes or margin.embedding_size != embedding_size:
            raise ValueError("the loss module's num_classes/embedding_size differ from Partial FC's")
        self.sample_rate = check_number("sample_rate", sample_rate, low=1e-9, high=1.0)
        self.process_group = process_group
        self.grad_scale = float(_world(process_group)[1]) if scale_embedding_grad else 1.0
        self.embedding_size, self.num_classes = embedding_size, num_classes
        rank, world = _world(process_group)
        if num_classes < world:
            raise ValueError(f"cannot shard {num_classes} classes over {world} ranks")
        per_rank, extra = divmod(num_classes, world)
        self.num_local = per_rank + (1 if rank < extra else 0)
        self.class_start = rank * per_rank + min(rank, extra)
        full = margin.weight
        margin.weight = None
        self.margin_loss = margin
        if full is not None:
            shard = full.detach()[self.class_start : self.class_start + self.num_local].clone()
        else:
            shard = margin.init_weight(self.num_local)
        self.weight = nn.Parameter(shard)
        self.last_sampled: Tensor | None = None  # shard rows used by the last training step

    @property
    def needs_raw_norm(self) -> bool:
        return self.margin_loss.needs_raw_norm

    def _sample(self, local_labels: Tensor, in_shard: Tensor) -> Tensor:
        positive = torch.unique(local_labels[in_shard])
        num_sample = max(int(self.sample_rate * self.num_local), 1)
        if num_sample <= positive.numel():
            return positive
        score = torch.rand(self.num_local, device=local_labels.device)
        score[positive] = 2.0  # positives always make the cut
        return torch.sort(torch.topk(score, num_sample).indices).values

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return self._forward(embeddings.to(compute_dtype(embeddings)), labels.long())

    def _forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        group = self.process_group
        if _world(group)[1] > 1:
            x_all = _GatherWithGrad.apply(embeddings, group, self.grad_scale)
            y_all = _all_gather_uneven(labels, group)[0]
        else:
            x_all, y_all = embeddings, labels
        if bool(((y_all < 0) | (y_all >= self.num_classes)).any()):
            raise ValueError(f"labels must lie in [0, {self.num_classes})")
        local = y_all - self.class_start
        in_shard = (local >= 0) & (local < self.num_local)
        weight = self.weight
        if self.training and self.sample_rate < 1.0:
            index = self._sample(local, in_shard)
            self.last_sampled = index
            remap = torch.full((self.num_local,), -1, dtype=torch.long, device=local.device)
            remap[index] = torch.arange(index.numel(), device=local.device)
            local = torch.where(in_shard, remap[local.clamp(0, self.num_local - 1)], local)
            weight = weight[index]
        weight = weight.to(x_all.dtype)
        cos = self.margin_loss.class_cosine(F.normalize(x_all, dim=1), weight)
        rows = torch.nonzero(in_shard).squeeze(1)
        cols = local[rows]
        target_cos = torch.zeros(x_all.shape[0], dtype=cos.dtype, device=cos.device)
        target_cos[rows] = cos.detach()[rows, cols]
        ctx = MarginContext(
            rows=rows,
            cols=cols,
            labels=y_all,
            target_cos=_all_reduce(target_cos, dist.ReduceOp.SUM, group),
            x_norm=x_all.norm(dim=1),
            w_norm=weight.norm(dim=-1),
            sum_over_classes=lambda partial: _all_reduce(partial, dist.ReduceOp.SUM, group),
        )
        if self.training:
            with torch.no_grad():
                self.margin_loss.update_state(cos.detach(), ctx)
        logits = self.margin_loss.margin_logits(cos, ctx)
        target = torch.full_like(y_all, -1)
        target[rows] = cols
        loss = _ShardedCrossEntropy.apply(logits, target, group)
        penalty = self.margin_loss.per_sample_penalty(embeddings.norm(dim=1))
        if penalty is not None:  # local samples carry the gradient, the other ranks' sum is a constant
            local_sum = penalty.sum()
            global_sum = _all_reduce(local_sum, dist.ReduceOp.SUM, group)
            scaled = local_sum * self.grad_scale  # same gradient scaling as the gathered embeddings
            loss = loss + (scaled + (global_sum - scaled.detach())) / x_all.shape[0]
        return loss
