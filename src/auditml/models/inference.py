"""Forward passes in evaluation mode, batched, on numpy inputs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: np.ndarray, *, device: torch.device | str = "cpu", batch_size: int = 256
) -> np.ndarray:
    """Logits ``(N, num_classes)`` as float64 (softmax and log-losses are taken downstream).

    Convolutional weights are switched to channels-last for the duration: CPU convolution and
    max-pooling kernels are 2-3x faster in that layout (``benchmarks/inference.py``); results
    differ from the default layout by float rounding only. Batches of 256 stay in cache.
    """
    was_training = model.training
    switch_layout = _contiguous_conv_weights(model)
    model.eval()
    if switch_layout:
        model.to(memory_format=torch.channels_last)
    outputs = []
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))
            outputs.append(model(batch.to(device)).double().cpu().numpy())
    finally:
        model.train(was_training)
        if switch_layout:
            model.to(memory_format=torch.contiguous_format)
    if not outputs:
        return np.empty((0, 0))
    return np.concatenate(outputs)


def _contiguous_conv_weights(model: nn.Module) -> bool:
    """Whether the model has 4-d weights, all in the default layout (and so can be switched)."""
    weights = [p for p in model.parameters() if p.dim() == 4]
    return bool(weights) and all(p.is_contiguous() for p in weights)


def accuracy(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, device: torch.device | str
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    if len(y) == 0:
        return float("nan")
    logits = predict_logits(model, x, device=device)
    return float(np.mean(logits.argmax(axis=1) == y))
