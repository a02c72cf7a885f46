"""Camera monitors: stream sources decoded with PyAV, face tracking, one decision per appearance."""
