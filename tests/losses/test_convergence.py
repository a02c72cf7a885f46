"""A small network on scikit-learn's digits learns with every classification loss (and center loss)."""

from __future__ import annotations

import pytest
import torch

from training.losses import CLASSIFICATION_LOSSES
from training.losses.toy import load_digits_split, train_toy


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(num_classes=10)


@pytest.mark.parametrize("name", [*CLASSIFICATION_LOSSES, "center"])
def test_short_training_on_digits_converges(name: str, digits) -> None:
    result = train_toy(name, digits, dim=16, steps=80, batch_size=64)
    assert result.test_accuracy > 0.85, f"{name}: test accuracy {result.test_accuracy:.3f} (chance 0.1)"
    assert torch.isfinite(result.test_features).all()
