"""Model architectures: a registry of factories ``(input_shape, num_classes) -> nn.Module``.

Adding an architecture is one module with a factory plus one ``MODELS.register`` line.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from auditml.models.cnn import cnn_8x8, cnn_8x8_gn, cnn_28x28, cnn_28x28_gn
from auditml.models.inference import accuracy, predict_logits
from auditml.models.mlp import mlp, mlp_small_tanh, mlp_tabular
from auditml.models.resnet import resnet_groupnorm
from auditml.registry import Registry

ModelFactory = Callable[[tuple[int, ...], int], nn.Module]

MODELS: Registry[ModelFactory] = Registry("model architecture")
MODELS.register("cnn_28x28", cnn_28x28)
MODELS.register("cnn_8x8", cnn_8x8)
MODELS.register("cnn_28x28_gn", cnn_28x28_gn)
MODELS.register("cnn_8x8_gn", cnn_8x8_gn)
MODELS.register("mlp", mlp)
MODELS.register("mlp_small_tanh", mlp_small_tanh)
MODELS.register("mlp_tabular", mlp_tabular)
MODELS.register("resnet_groupnorm", resnet_groupnorm)


def build_model(arch: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return MODELS.get(arch)(input_shape, num_classes)


__all__ = ["MODELS", "ModelFactory", "accuracy", "build_model", "predict_logits"]
