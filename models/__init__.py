"""MarginFace models."""
