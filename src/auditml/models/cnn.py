"""Small convolutional networks for grey images. BatchNorm-free: every layer has an Opacus
per-sample-gradient rule, so the same model trains with and without DP-SGD.

The ``_gn`` variants add GroupNorm after each convolution: the DP-friendly defaults of the DP
recipe (:mod:`auditml.training.recipe`). Normalising each example on its own keeps activations at
a scale the clipped, noisy updates can move, which the plain network loses under DP-SGD
(De et al. 2022; measured in ``benchmarks/dp_recipe_probe.py``: +1.6 to +2 points on
Fashion-MNIST at the same ε).
"""

from __future__ import annotations

from torch import nn

# Groups per GroupNorm: 32 and 64 channels fall into groups of 4 and 8 (as in the probe).
_GROUPS = 8


def _conv_block(channels_in: int, channels_out: int, group_norm: bool) -> list[nn.Module]:
    norm: list[nn.Module] = [nn.GroupNorm(_GROUPS, channels_out)] if group_norm else []
    conv = nn.Conv2d(channels_in, channels_out, kernel_size=3, padding=1)
    return [conv, *norm, nn.ReLU(), nn.MaxPool2d(2)]


def _cnn_28x28(input_shape: tuple[int, int, int], num_classes: int, group_norm: bool) -> nn.Module:
    channels, height, width = input_shape
    return nn.Sequential(
        *_conv_block(channels, 32, group_norm),
        *_conv_block(32, 64, group_norm),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def _cnn_8x8(input_shape: tuple[int, int, int], num_classes: int, group_norm: bool) -> nn.Module:
    channels, height, width = input_shape
    return nn.Sequential(
        *_conv_block(channels, 32, group_norm),
        nn.Flatten(),
        nn.Linear(32 * (height // 2) * (width // 2), 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def cnn_28x28(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Two conv blocks and two dense layers for 28x28 images (MNIST, Fashion-MNIST)."""
    return _cnn_28x28(input_shape, num_classes, group_norm=False)


def cnn_28x28_gn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """``cnn_28x28`` with GroupNorm after each convolution (the DP recipe's default)."""
    return _cnn_28x28(input_shape, num_classes, group_norm=True)


def cnn_8x8(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A conv block and two dense layers for 8x8 images (scikit-learn's digits)."""
    return _cnn_8x8(input_shape, num_classes, group_norm=False)


def cnn_8x8_gn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """``cnn_8x8`` with GroupNorm after its convolution (the DP recipe's default)."""
    return _cnn_8x8(input_shape, num_classes, group_norm=True)
