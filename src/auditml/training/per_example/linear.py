"""``nn.Linear``: ghost norms, or materialised gradients for long sequences.

For an example with inputs ``a`` (T x d) and output gradients ``g`` (T x p) the weight gradient is
``g^T a``. Without a sequence dimension (T = 1) its squared norm is ``||a||^2 ||g||^2`` and the
clipped sum is one matrix product ``(c * g)^T a``: no per-example tensor is ever formed. With a
sequence, the ghost norm ``<a a^T, g g^T>`` costs ``T^2 (d + p)`` against ``T d p`` for forming
``g^T a``; the cheaper one is used (the rule of Bu et al., 2023, "mixed ghost clipping").
"""

from __future__ import annotations

import torch
from torch import nn

from auditml.training.per_example.base import (
    ParameterGradients,
    materialised,
    squared_row_norms,
    trainable,
)


def linear_rule(
    layer: nn.Module, activation: torch.Tensor, backprop: torch.Tensor
) -> dict[str, ParameterGradients]:
    batch = len(activation)
    a = activation.reshape(batch, -1, activation.shape[-1])
    g = backprop.reshape(batch, -1, backprop.shape[-1])
    steps, inputs, outputs = a.shape[1], a.shape[2], g.shape[2]
    found: dict[str, ParameterGradients] = {}
    if trainable(layer, "weight"):
        if steps == 1:
            a2, g2 = a[:, 0], g[:, 0]
            found["weight"] = ParameterGradients(
                squared_norms=squared_row_norms(a2) * squared_row_norms(g2),
                weighted_sum=lambda scale: (g2 * scale[:, None]).T @ a2,
            )
        elif 2 * steps * steps <= inputs * outputs:
            found["weight"] = ParameterGradients(
                squared_norms=(a @ a.transpose(1, 2) * (g @ g.transpose(1, 2))).sum((1, 2)),
                weighted_sum=lambda scale: (
                    (g * scale[:, None, None]).reshape(-1, outputs).T @ a.reshape(-1, inputs)
                ),
            )
        else:
            found["weight"] = materialised(torch.bmm(g.transpose(1, 2), a))
    if trainable(layer, "bias"):
        found["bias"] = materialised(g.sum(1))
    return found
