"""A small ResNet for 32x32 colour images with GroupNorm in place of BatchNorm.

BatchNorm mixes examples within a batch, so per-example gradients (and DP-SGD) are undefined for
it; GroupNorm normalises each example on its own (the usual substitute in DP training).
"""

from __future__ import annotations

import torch
from torch import nn

_GROUPS = 8


class _Block(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(_GROUPS, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(_GROUPS, out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.GroupNorm(_GROUPS, out_channels),
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetGroupNorm(nn.Module):
    """Three stages of one residual block each (32, 64, 128 channels)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, 1, 1, bias=False), nn.GroupNorm(_GROUPS, 32), nn.ReLU()
        )
        self.stages = nn.Sequential(_Block(32, 32, 1), _Block(32, 64, 2), _Block(64, 128, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(x)))
        return self.head(torch.flatten(features, 1))


def resnet_groupnorm(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return ResNetGroupNorm(input_shape[0], num_classes)
