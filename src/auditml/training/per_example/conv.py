"""``nn.Conv2d``: per-example weight gradients, formed without im2col where the stride is 1.

An example's weight gradient pairs each output gradient with the input window it saw:
``G[o, i, u, v] = sum_{y, x} g[o, y, x] * a_pad[i, y*s + u*d, x*s + v*d]``. The textbook route
unfolds the input into every window (im2col) and multiplies once; on CPU the unfold costs more than
the product. With stride 1 each kernel offset ``(u, v)`` is instead one batched product against a
*view* of the padded input: flattened row-major, the window at offset ``(u, v)`` is the contiguous
run starting at ``u*d*W + v*d``, provided the output gradient is laid out on the same row width
``W`` (zero columns on the right). No copy of the input is made per offset. With very few input
channels (the first layer on grey or colour images) each offset's product is a thin
matrix-vector product and im2col wins instead; ``benchmarks/per_example_conv.py`` measures both.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from auditml.training.per_example.base import (
    ParameterGradients,
    materialised,
    squared_row_norms,
    trainable,
)

# At most this many input channels, im2col is faster than the shifted products (measured on CPU).
FEW_CHANNELS = 4


def conv2d_supported(layer: nn.Conv2d) -> str | None:
    """Why the fast path cannot take this convolution, or None when it can."""
    if layer.groups != 1:
        return f"groups={layer.groups}"
    if layer.padding_mode != "zeros":
        return f"padding_mode={layer.padding_mode!r}"
    if isinstance(layer.padding, str):
        return f"padding={layer.padding!r}"
    return None


def conv2d_rule(
    layer: nn.Module, activation: torch.Tensor, backprop: torch.Tensor
) -> dict[str, ParameterGradients]:
    conv = cast(nn.Conv2d, layer)
    found: dict[str, ParameterGradients] = {}
    if trainable(conv, "weight"):
        if conv.stride == (1, 1) and conv.in_channels > FEW_CHANNELS:
            found["weight"] = _shifted_products(conv, activation, backprop)
        else:
            per_example = _unfolded_products(conv, activation, backprop)
            found["weight"] = materialised(per_example.view(len(activation), *conv.weight.shape))
    if trainable(conv, "bias"):
        found["bias"] = materialised(backprop.sum((2, 3)))
    return found


def _unfolded_products(
    conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor
) -> torch.Tensor:
    windows = F.unfold(
        activation, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
        stride=conv.stride,
    )
    return torch.bmm(backprop.flatten(2), windows.transpose(1, 2))


def _shifted_products(
    conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor
) -> ParameterGradients:
    batch, in_channels = activation.shape[:2]
    out_channels, out_height, out_width = backprop.shape[1:]
    (kernel_h, kernel_w), (dilation_h, dilation_w) = conv.kernel_size, conv.dilation
    pad_h, pad_w = cast(tuple[int, int], conv.padding)
    # One extra zero row at the bottom: the last window's run reaches past the padded image by
    # (kernel_w - 1) * dilation_w entries, always fewer than one row.
    padded = F.pad(activation, (pad_w, pad_w, pad_h, pad_h + 1))
    row = padded.shape[3]
    flat_input = padded.flatten(2)
    flat_grad = F.pad(backprop, (0, row - out_width)).flatten(2)
    span = out_height * row
    # Offset-major, so that each product writes one contiguous block.
    products = backprop.new_empty(kernel_h * kernel_w, batch, out_channels, in_channels)
    for u in range(kernel_h):
        for v in range(kernel_w):
            start = u * dilation_h * row + v * dilation_w
            window = flat_input[:, :, start : start + span]
            torch.bmm(flat_grad, window.transpose(1, 2), out=products[u * kernel_w + v])
    # Views over (offset, example, entries), so that neither reduction copies the products.
    by_offset = products.view(kernel_h * kernel_w, batch, -1)
    shape = conv.weight.shape
    return ParameterGradients(
        squared_norms=squared_row_norms(by_offset).sum(0),
        weighted_sum=lambda scale: (
            (scale @ by_offset).view(kernel_h * kernel_w, out_channels, in_channels)
            .permute(1, 2, 0).reshape(shape)
        ),
    )
