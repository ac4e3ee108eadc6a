"""``nn.GroupNorm`` and ``nn.LayerNorm``: the affine parameters' per-example gradients.

Both normalise each example on its own, so per-example gradients exist: for ``y = x_hat * w + b``
the example's weight gradient is ``sum(x_hat * g)`` over the positions that share a weight entry,
and its bias gradient ``sum(g)``. They are small (one entry per channel) and formed outright.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from auditml.training.per_example.base import ParameterGradients, materialised, trainable


def _affine(
    layer: nn.Module, normalised: torch.Tensor, backprop: torch.Tensor, shared_dims: tuple[int, ...]
) -> dict[str, ParameterGradients]:
    def summed(tensor: torch.Tensor) -> torch.Tensor:
        # torch's sum over an empty tuple of dims reduces everything; here it must reduce nothing.
        return tensor.sum(shared_dims) if shared_dims else tensor

    found: dict[str, ParameterGradients] = {}
    if trainable(layer, "weight"):
        found["weight"] = materialised(summed(normalised * backprop))
    if trainable(layer, "bias"):
        found["bias"] = materialised(summed(backprop))
    return found


def group_norm_rule(
    layer: nn.Module, activation: torch.Tensor, backprop: torch.Tensor
) -> dict[str, ParameterGradients]:
    layer = cast(nn.GroupNorm, layer)
    normalised = F.group_norm(activation, layer.num_groups, eps=layer.eps)
    return _affine(layer, normalised, backprop, tuple(range(2, activation.dim())))


def layer_norm_rule(
    layer: nn.Module, activation: torch.Tensor, backprop: torch.Tensor
) -> dict[str, ParameterGradients]:
    layer = cast(nn.LayerNorm, layer)
    normalised = F.layer_norm(activation, layer.normalized_shape, eps=layer.eps)
    leading = activation.dim() - len(layer.normalized_shape)
    return _affine(layer, normalised, backprop, tuple(range(1, leading)))
