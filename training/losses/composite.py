"""A main loss plus weighted auxiliary metric terms (center, triplet, contrastive)."""

from __future__ import annotations

from torch import Tensor, nn


class LossWithAux(nn.Module):
    """``main(x, y) + Σ_k weight_k·term_k(x, y)``; ``logits`` and ``weight`` are the main loss's.

    ``last_terms`` holds the detached value of each part of the most recent forward (for logging),
    unweighted, keyed ``main`` and the term names.
    """

    def __init__(self, main: nn.Module, terms: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        self.main = main
        self.aux = nn.ModuleDict(terms)
        self.aux_weights = dict(weights)
        self.last_terms: dict[str, Tensor] = {}

    @property
    def has_classifier(self) -> bool:
        return bool(getattr(self.main, "has_classifier", False))

    @property
    def needs_raw_norm(self) -> bool:
        return bool(getattr(self.main, "needs_raw_norm", False)) or "center" in self.aux

    @property
    def weight(self) -> Tensor:
        return self.main.weight

    def logits(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return self.main.logits(embeddings, labels)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        total = self.main(embeddings, labels)
        parts = {"main": total.detach()}
        for name, term in self.aux.items():
            value = term(embeddings, labels)
            parts[name] = value.detach()
            total = total + self.aux_weights[name] * value
        self.last_terms = parts
        return total
