"""Evaluation of PyTorch checkpoints: embedding, .bin verification sets, identification, plots.

The metrics themselves (numpy) live in ``models.evaluation``; this package adds what needs torch.
"""
