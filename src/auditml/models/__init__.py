"""Model architectures: a registry of factories ``(input_shape, num_classes) -> nn.Module``.

Adding an architecture is one module with a factory plus one ``MODELS.register`` line.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from auditml.errors import ConfigError
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
    """The architecture ``arch`` for inputs of one example's ``input_shape``.

    An architecture that cannot take such inputs (a CNN given tabular rows, layers sized for
    another input) is refused here, with a ``ConfigError``, instead of failing mid-training:
    the model is built and run once on two zero inputs (in eval mode, without gradients, so no
    state such as BatchNorm statistics changes).
    """
    factory = MODELS.get(arch)
    try:
        model = factory(input_shape, num_classes)
        was_training = model.training
        with torch.no_grad():
            outputs = model.eval()(torch.zeros(2, *input_shape))
        model.train(was_training)
    except (ValueError, RuntimeError, TypeError, IndexError) as err:
        raise ConfigError(
            f"model.arch={arch!r} cannot take inputs of shape {tuple(input_shape)} "
            f"({_one_line(err)}); choose an architecture for them, or leave model.arch unset "
            "for the dataset's default"
        ) from err
    if tuple(outputs.shape) != (2, num_classes):
        raise ConfigError(
            f"model.arch={arch!r} gives outputs of shape {tuple(outputs.shape[1:])} for inputs "
            f"of shape {tuple(input_shape)}, not ({num_classes},) class scores"
        )
    return model


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:159] + "…"


__all__ = ["MODELS", "ModelFactory", "accuracy", "build_model", "predict_logits"]
