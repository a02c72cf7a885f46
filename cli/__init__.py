"""MarginFace cli."""
