"""What a per-layer rule returns: per-example gradients in a form that yields norms and sums.

DP-SGD needs two things from each layer: every example's squared gradient norm (to find its clip
factor ``c_i = min(1, C / (||g_i|| + 1e-6))``) and the clipped sum ``sum_i c_i g_i``. A rule may
materialise the per-example gradients ``g_i`` or never form them ("ghost" norms, Goodfellow 2015;
Li et al. 2022); either way it hands back the two quantities below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ParameterGradients:
    """One parameter's per-example gradients, as the two things DP-SGD needs of them."""

    # (batch,): ||g_i||^2 over this parameter's entries for each example i.
    squared_norms: torch.Tensor
    # scale (batch,) -> sum_i scale_i g_i, shaped like the parameter.
    weighted_sum: Callable[[torch.Tensor], torch.Tensor]


# (layer, the layer's input, d(sum of per-example losses)/d(layer's output)) -> per parameter.
LayerRule = Callable[[nn.Module, torch.Tensor, torch.Tensor], dict[str, ParameterGradients]]


def trainable(layer: nn.Module, name: str) -> bool:
    """Whether the layer has a parameter ``name`` that DP-SGD trains (and so must clip)."""
    parameter = getattr(layer, name, None)
    return isinstance(parameter, nn.Parameter) and parameter.requires_grad


def squared_row_norms(rows: torch.Tensor) -> torch.Tensor:
    """``||row||^2`` along the last dimension.

    ``vector_norm`` reduces in one pass; ``rows.pow(2).sum(-1)`` writes a temporary as large as
    the per-example gradients first, about 10x slower at the sizes DP-SGD sees.
    """
    return torch.linalg.vector_norm(rows, dim=-1).square()


def materialised(per_example: torch.Tensor) -> ParameterGradients:
    """Per-example gradients held as a (batch, *parameter shape) tensor."""
    flat = per_example.reshape(len(per_example), -1)
    return ParameterGradients(
        squared_norms=squared_row_norms(flat),
        weighted_sum=lambda scale: (scale @ flat).view(per_example.shape[1:]),
    )
