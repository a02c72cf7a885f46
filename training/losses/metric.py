"""Metric terms: center loss (ECCV 2016), triplet loss (FaceNet, CVPR 2015), contrastive (DeepID2, 2014).

Each is ``term(embeddings, labels) -> scalar`` and is used as a weighted auxiliary term next to a
classification loss (see ``training.losses.composite``); triplet and contrastive also train alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.base import check_number, check_positive_int, compute_dtype

TRIPLET_MINING = ("all", "batch-hard", "semi-hard")


class CenterTerm(nn.Module):
    """½·mean_i ‖x_i - c_{y_i}‖² on the raw embeddings; centres (buffer ``centers``, [C, D]) are updated
    by Δc_j = Σ_i 1[y_i=j](c_j - x_i)/(1 + n_j), c_j ← c_j - α·Δc_j after each training forward.
    """

    def __init__(self, embedding_size: int, num_classes: int, *, alpha: float = 0.5) -> None:
        super().__init__()
        check_positive_int("embedding_size", embedding_size)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.alpha = check_number("alpha", alpha, low=0.0, high=1.0)
        self.register_buffer("centers", torch.zeros(num_classes, embedding_size))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        dtype = compute_dtype(embeddings)
        x = embeddings.to(dtype)
        labels = labels.long()
        diff = x - self.centers.to(dtype)[labels]
        value = 0.5 * (diff * diff).sum(dim=1).mean()
        if self.training:
            with torch.no_grad():
                delta = torch.zeros_like(self.centers).index_add_(
                    0, labels, diff.detach().to(self.centers.dtype)
                )
                counts = torch.bincount(labels, minlength=self.num_classes).to(self.centers.dtype)
                self.centers += self.alpha * delta / (1.0 + counts)[:, None]  # c_j - α·Δc_j
        return value


def _unit_distances(embeddings: Tensor) -> Tensor:
    """Squared Euclidean distances between L2-normalised embeddings (2 - 2·cos), [B, B], in fp32+."""
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        f = F.normalize(embeddings.to(compute_dtype(embeddings)), dim=1)
        return (2.0 - 2.0 * f @ f.t()).clamp_min(0.0)


class TripletLoss(nn.Module):
    """mean over chosen triplets of max(0, ‖f_a - f_p‖² - ‖f_a - f_n‖² + margin) on unit f.

    mining: ``all`` (every valid triplet), ``batch-hard`` (per anchor its farthest positive and nearest
    negative), ``semi-hard`` (negatives with d_ap < d_an < d_ap + margin). No triplet: loss 0.
    """

    has_classifier = False
    needs_raw_norm = False

    def __init__(self, *, margin: float = 0.2, mining: str = "semi-hard") -> None:
        super().__init__()
        self.margin = check_number("margin", margin, low=0.0)
        if mining == "hard":
            mining = "batch-hard"
        if mining not in TRIPLET_MINING:
            raise ValueError(f"triplet mining must be one of {', '.join(TRIPLET_MINING)}, got {mining!r}")
        self.mining = mining

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        dist = _unit_distances(embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        positive = same & ~eye
        negative = ~same
        if self.mining == "batch-hard":
            has_both = positive.any(dim=1) & negative.any(dim=1)
            if not has_both.any():
                return dist.sum() * 0.0
            hardest_pos = torch.where(positive, dist, torch.full_like(dist, -1.0)).amax(dim=1)
            hardest_neg = torch.where(negative, dist, torch.full_like(dist, 5.0)).amin(dim=1)
            losses = F.relu(hardest_pos - hardest_neg + self.margin)
            return losses[has_both].mean()
        d_ap = dist[:, :, None]  # [a, p, 1]
        d_an = dist[:, None, :]  # [a, 1, n]
        valid = positive[:, :, None] & negative[:, None, :]
        if self.mining == "semi-hard":
            valid = valid & (d_ap < d_an) & (d_an < d_ap + self.margin)
        if not valid.any():
            return dist.sum() * 0.0
        return F.relu(d_ap - d_an + self.margin)[valid].mean()

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError("triplet is a metric loss: it has no class logits")


class ContrastiveLoss(nn.Module):
    """Mean over all pairs i < j: same label ½‖f_i - f_j‖², different ½·max(0, margin - ‖f_i - f_j‖)²."""

    has_classifier = False
    needs_raw_norm = False

    def __init__(self, *, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check_number("margin", margin, low=0.0)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        dist_sq = _unit_distances(embeddings)
        if len(labels) < 2:
            return dist_sq.sum() * 0.0
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        d_sq = dist_sq[i, j]
        dist = torch.sqrt(d_sq.clamp_min(1e-12))  # sqrt'(0) is infinite
        same = labels[i] == labels[j]
        losses = torch.where(same, 0.5 * d_sq, 0.5 * F.relu(self.margin - dist) ** 2)
        return losses.mean()

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError("contrastive is a metric loss: it has no class logits")
