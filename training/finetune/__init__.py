"""Fine-tuning a real model: initial weights, class centres from its embeddings, freezing, warm-up,
and a backward-compatibility term (``training.finetune.setup.FineTuning``)."""
