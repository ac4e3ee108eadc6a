"""Forward passes in evaluation mode, batched, on numpy inputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: np.ndarray, *, device: torch.device | str = "cpu", batch_size: int = 1024
) -> np.ndarray:
    """Logits ``(N, num_classes)`` as float64 (softmax and log-losses are taken downstream)."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
            outputs.append(model(batch.to(device)).double().cpu().numpy())
    finally:
        model.train(was_training)
    if not outputs:
        return np.empty((0, 0))
    return np.concatenate(outputs)


def accuracy(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, device: torch.device | str
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    if len(y) == 0:
        return float("nan")
    logits = predict_logits(model, x, device=device)
    return float(np.mean(logits.argmax(axis=1) == y))
