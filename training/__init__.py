"""MarginFace training."""
