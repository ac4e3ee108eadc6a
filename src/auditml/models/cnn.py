"""Small convolutional networks for grey images. GroupNorm-free and BatchNorm-free: every layer
has an Opacus per-sample-gradient rule, so the same model trains with and without DP-SGD."""

from __future__ import annotations

from torch import nn


def cnn_28x28(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Two conv blocks and two dense layers for 28x28 images (MNIST, Fashion-MNIST)."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (height // 4) * (width // 4), 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def cnn_8x8(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A conv block and two dense layers for 8x8 images (scikit-learn's digits)."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 32, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (height // 2) * (width // 2), 128),
        nn.ReLU(),
        nn.Linear(128, num_classes),
    )
