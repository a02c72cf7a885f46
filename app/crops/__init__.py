"""The face crop store: each enrolled face keeps its aligned crop, so a gallery can move to a new model."""
