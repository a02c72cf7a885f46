"""MarginFace app."""
