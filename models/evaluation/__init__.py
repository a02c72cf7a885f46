"""Evaluation: verification metrics (numpy only), the LFW pairs format, and the image-pair runner.

``metrics`` and ``lfw`` take arrays and files only, so training code can reuse them with embeddings from
a PyTorch model; ``pairs_runner`` drives the ONNX inference pipeline over raw images.
"""

from models.evaluation.lfw import lfw_image_path, read_pairs
from models.evaluation.metrics import (
    DEFAULT_FARS,
    VerificationResult,
    evaluate_verification,
    kfold_accuracy,
    roc,
    tar_at_far,
    to_distance,
)

__all__ = [
    "DEFAULT_FARS",
    "VerificationResult",
    "evaluate_verification",
    "kfold_accuracy",
    "lfw_image_path",
    "read_pairs",
    "roc",
    "tar_at_far",
    "to_distance",
]
