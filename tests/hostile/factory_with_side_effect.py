"""A backbone factory whose import leaves a trace: proves that naming it in a checkpoint ran no code."""

from __future__ import annotations

import os
from pathlib import Path

marker = os.environ.get("MARGINFACE_TEST_IMPORT_MARKER")
if marker:
    Path(marker).write_text("imported")


def make(embedding_size: int = 128, dropout: float = 0.0):
    from training.backbones import build_backbone

    return build_backbone("mobilefacenet", embedding_size=embedding_size, dropout=dropout)
