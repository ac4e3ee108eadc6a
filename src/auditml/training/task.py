"""What a model is trained to do: name a class per example, or predict each next token of a text.

The training loop, its DP-SGD steps and the run's metrics are the same for both; a task says only
what differs: the loss, the targets the loss compares the outputs with, what counts as a correct
prediction, and how a trained model is measured. A dataset names its task
(:attr:`auditml.data.DatasetSpec.task`).

- ``classification``: cross-entropy of the logits ``(N, classes)`` against the labels; accuracy.
- ``causal_lm``: the outputs are next-token logits ``(N, L, vocab)`` of the token ids ``x`` (the
  targets are the inputs themselves, shifted by one; :func:`auditml.models.causal_lm.
  next_token_loss`: each example's mean over its own tokens, so DP-SGD clips and counts one
  text as one example); the accuracy is that of the next-token predictions, and a model is also
  measured by its perplexity, ``exp`` of the mean token cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from auditml.data import ArrayDataset

TaskName = Literal["classification", "causal_lm"]


@dataclass(frozen=True)
class Evaluation:
    """A trained model on a set of examples: accuracy (of next tokens, for a language model) and,
    for a language model, perplexity (None for a classifier)."""

    accuracy: float
    perplexity: float | None = None


def criterion(task: TaskName) -> nn.Module:
    """The loss a training step minimises: ``criterion(outputs, targets)``, a batch mean."""
    from torch import nn

    if task == "causal_lm":
        from auditml.models.causal_lm import NextTokenLoss

        return NextTokenLoss()
    return nn.CrossEntropyLoss()


def targets(task: TaskName, data: ArrayDataset) -> np.ndarray:
    """What the loss compares the outputs with: the labels, or a language model's own inputs."""
    return data.x if task == "causal_lm" else data.y


def correct(task: TaskName, outputs: torch.Tensor, target: torch.Tensor) -> tuple[int, int]:
    """``(right, counted)``: predictions that were right, out of how many (examples, or the
    next tokens that are not padding)."""
    if task == "causal_lm":
        from auditml.models.causal_lm import next_token_predictions

        right, counted = next_token_predictions(outputs, target)
        return int(right), int(counted)
    return int((outputs.argmax(1) == target).sum()), len(target)


def evaluate(
    task: TaskName, model: nn.Module, data: ArrayDataset, *, device: torch.device | str
) -> Evaluation:
    """``model`` measured on ``data`` (NaN accuracy when ``data`` is empty)."""
    if task == "causal_lm":
        from auditml.models.causal_lm import next_token_evaluation

        if len(data) == 0:
            return Evaluation(float("nan"), float("nan"))
        right, perplexity = next_token_evaluation(model, data.x, device=str(device))
        return Evaluation(right, perplexity)
    from auditml.models import accuracy

    return Evaluation(accuracy(model, data.x, data.y, device=device))
