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

When the output has few positions T against many weights (late layers of a ResNet: T = 64,
d*p = 1152 * 128), per-example gradients are never formed: the ghost norm
``||G||^2 = <U^T U, g^T g>`` needs two T x T Gram matrices (``T^2 (d + p)`` against ``T d p``;
Bu et al. 2023's rule ``2 T^2 <= d p``), and the clipped sum is one ordinary weight-gradient
convolution of the scaled output gradients.
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
        positions = backprop.shape[2] * backprop.shape[3]
        if 2 * positions * positions <= conv.weight[0].numel() * conv.out_channels:
            found["weight"] = _ghost(conv, activation, backprop)
        elif conv.stride == (1, 1) and conv.in_channels > FEW_CHANNELS:
            found["weight"] = _shifted_products(conv, activation, backprop)
        else:
            per_example = _unfolded_products(conv, activation, backprop)
            found["weight"] = materialised(per_example.view(len(activation), *conv.weight.shape))
    if trainable(conv, "bias"):
        found["bias"] = materialised(backprop.sum((2, 3)))
    return found


def _ghost(conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor) -> ParameterGradients:
    if conv.stride == (1, 1):
        # The window Gram is a sum over kernel offsets of Grams of shifted views (no im2col);
        # the zero columns of the laid-out gradient cancel the positions outside the image.
        runs = _ShiftedRuns(conv, activation, backprop)
        window_gram = sum(torch.bmm(w.transpose(1, 2), w) for w in runs.windows())
        grads = runs.flat_grad
    else:
        windows = F.unfold(
            activation, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
            stride=conv.stride,
        )
        window_gram = torch.bmm(windows.transpose(1, 2), windows)
        grads = backprop.flatten(2)
    grad_gram = torch.bmm(grads.transpose(1, 2), grads)
    squared = (window_gram * grad_gram).flatten(1).sum(1)
    return ParameterGradients(
        squared_norms=squared,
        weighted_sum=lambda scale: torch.nn.grad.conv2d_weight(
            activation, conv.weight.shape, backprop * scale[:, None, None, None],
            stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
        ),
    )


def _unfolded_products(
    conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor
) -> torch.Tensor:
    windows = F.unfold(
        activation, conv.kernel_size, dilation=conv.dilation, padding=conv.padding,
        stride=conv.stride,
    )
    return torch.bmm(backprop.flatten(2), windows.transpose(1, 2))


class _ShiftedRuns:
    """A stride-1 convolution's input windows as views: one (batch, in, span) run per offset.

    The padded input is flattened row-major with row width W; the output gradient is laid out on
    the same width (zero columns on the right), flattened to (batch, out, span).
    """

    def __init__(self, conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor) -> None:
        out_height, out_width = backprop.shape[2:]
        pad_h, pad_w = cast(tuple[int, int], conv.padding)
        # One extra zero row at the bottom: the last window's run reaches past the padded image
        # by (kernel_w - 1) * dilation_w entries, always fewer than one row.
        padded = F.pad(activation, (pad_w, pad_w, pad_h, pad_h + 1))
        self.row = padded.shape[3]
        self.flat_input = padded.flatten(2)
        self.flat_grad = F.pad(backprop, (0, self.row - out_width)).flatten(2)
        self.span = out_height * self.row
        self.conv = conv

    def windows(self) -> list[torch.Tensor]:
        """The runs in weight order: offset (u, v) is entry ``u * kernel_w + v``."""
        (kernel_h, kernel_w), (dilation_h, dilation_w) = self.conv.kernel_size, self.conv.dilation
        starts = [
            u * dilation_h * self.row + v * dilation_w
            for u in range(kernel_h)
            for v in range(kernel_w)
        ]
        return [self.flat_input[:, :, start : start + self.span] for start in starts]


def _shifted_products(
    conv: nn.Conv2d, activation: torch.Tensor, backprop: torch.Tensor
) -> ParameterGradients:
    batch, in_channels = activation.shape[:2]
    out_channels = backprop.shape[1]
    runs = _ShiftedRuns(conv, activation, backprop)
    windows = runs.windows()
    # Offset-major, so that each product writes one contiguous block.
    products = backprop.new_empty(len(windows), batch, out_channels, in_channels)
    for offset, window in enumerate(windows):
        torch.bmm(runs.flat_grad, window.transpose(1, 2), out=products[offset])
    # Views over (offset, example, entries), so that neither reduction copies the products.
    by_offset = products.view(len(windows), batch, -1)
    shape = conv.weight.shape
    return ParameterGradients(
        squared_norms=squared_row_norms(by_offset).sum(0),
        weighted_sum=lambda scale: (
            (scale @ by_offset).view(len(windows), out_channels, in_channels)
            .permute(1, 2, 0).reshape(shape)
        ),
    )
