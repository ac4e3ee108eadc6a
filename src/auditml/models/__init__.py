"""Model architectures: a registry of factories ``(input_shape, num_classes) -> nn.Module``.

Adding an architecture is one module with a factory plus one ``MODELS.register_lazy`` line.
Importing this package does not import torch: the factories, :func:`predict_logits` and
:func:`accuracy` load their modules when first used, so a config can be checked (and a run's
cached outputs audited) without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from auditml.errors import ConfigError
from auditml.lazy import lazy_attributes
from auditml.models.user import import_factory, is_reference
from auditml.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from auditml.models.inference import accuracy, predict_logits

ModelFactory = Callable[[tuple[int, ...], int], "nn.Module"]

MODELS: Registry[ModelFactory] = Registry("model architecture")
MODELS.register_lazy("cnn_28x28", "auditml.models.cnn", "cnn_28x28")
MODELS.register_lazy("cnn_8x8", "auditml.models.cnn", "cnn_8x8")
MODELS.register_lazy("cnn_28x28_gn", "auditml.models.cnn", "cnn_28x28_gn")
MODELS.register_lazy("cnn_8x8_gn", "auditml.models.cnn", "cnn_8x8_gn")
MODELS.register_lazy("gpt2_tiny", "auditml.models.causal_lm", "gpt2_tiny")
MODELS.register_lazy("mlp", "auditml.models.mlp", "mlp")
MODELS.register_lazy("mlp_small_tanh", "auditml.models.mlp", "mlp_small_tanh")
MODELS.register_lazy("mlp_tabular", "auditml.models.mlp", "mlp_tabular")
MODELS.register_lazy("resnet_groupnorm", "auditml.models.resnet", "resnet_groupnorm")
MODELS.register_lazy("scatternet_linear", "auditml.models.scattering", "scatternet_linear")

__getattr__ = lazy_attributes(__name__, {
    "accuracy": "auditml.models.inference", "predict_logits": "auditml.models.inference",
})


def build_model(
    arch: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    config_dir: Path | None = None,
    task: str = "classification",
) -> nn.Module:
    """The architecture ``arch`` for inputs of one example's ``input_shape``.

    ``arch`` is a registered name or ``module.path:factory``, a factory of the user's own
    (:mod:`auditml.models.user`; ``config_dir`` is where its module may also be, beside the
    current directory). An architecture that cannot take such inputs (a CNN given tabular rows,
    layers sized for another input) is refused here, with a ``ConfigError``, instead of failing
    mid-training: the model is built and run once on two zero inputs (in eval mode, without
    gradients, so no state such as BatchNorm statistics changes). For ``task="causal_lm"`` the
    inputs are token ids ``(2, L)`` and the outputs must be next-token logits ``(2, L, vocab)``
    over the tokenizer's vocabulary (:mod:`auditml.data.text_tokens`).
    """
    import torch

    own = is_reference(arch)
    factory = import_factory(arch, config_dir) if own else MODELS.get(arch)
    # The user's factory may raise anything; a registered one only what a shape mismatch raises.
    expected: tuple[type[BaseException], ...] = (
        (Exception, SystemExit) if own else (ValueError, RuntimeError, TypeError, IndexError)
    )
    try:
        model = factory(input_shape, num_classes)
    except expected as err:
        raise _unusable(arch, input_shape, "building it", err) from err
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(
            f"model.arch={arch!r} returned an object of type {type(model).__name__}, not a "
            "torch.nn.Module; "
            "the factory must return the model (factory(input_shape, num_classes) -> nn.Module)"
        )
    try:
        was_training = model.training
        with torch.no_grad():
            zeros = torch.zeros(2, *input_shape, dtype=torch.long if task == "causal_lm" else None)
            outputs = model.eval()(zeros)
        model.train(was_training)
    except expected as err:
        raise _unusable(arch, input_shape, "running it on two zero inputs", err) from err
    shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else None
    if task == "causal_lm":
        _check_language_model(arch, input_shape, shape, outputs)
    elif shape != (2, num_classes):
        got = f"shape {shape[1:]}" if shape is not None else f"type {type(outputs).__name__}"
        raise ConfigError(
            f"model.arch={arch!r} gives outputs of {got} for inputs of shape "
            f"{tuple(input_shape)}, not ({num_classes},) class scores: the model must return "
            f"logits of shape (batch, {num_classes})"
        )
    _check_trainable(arch, model, outputs)
    return model


def _check_trainable(arch: str, model: nn.Module, outputs: object) -> None:
    """Refuse, before training, a model that could train but not be trained or saved: no
    trainable weights, outputs that are not floating point (no gradient flows), or weights that
    share memory (tied: safetensors, which every model is saved with, cannot store them)."""
    import torch

    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ConfigError(f"model.arch={arch!r} has no trainable parameters: there is nothing "
                          "to train; give the model weights that require gradients")
    if isinstance(outputs, torch.Tensor) and not outputs.is_floating_point():
        raise ConfigError(f"model.arch={arch!r} gives outputs of dtype {outputs.dtype}; logits "
                          "must be floating point (no gradient flows through integers)")
    seen: dict[tuple[torch.device, int], str] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.numel() == 0:
            continue
        key = (tensor.device, tensor.untyped_storage().data_ptr())
        if key in seen:
            raise ConfigError(
                f"model.arch={arch!r} shares weights between {seen[key]} and {name} (tied "
                "weights); auditml saves models with safetensors, which stores no shared "
                "tensors: give each layer its own weights"
            )
        seen[key] = name


def _check_language_model(
    arch: str, input_shape: tuple[int, ...], shape: tuple[int, ...] | None, outputs: object
) -> None:
    from auditml.data.text_tokens import VOCAB_SIZE

    expected = (2, *input_shape, VOCAB_SIZE)
    if shape != expected:
        got = f"shape {shape}" if shape is not None else f"type {type(outputs).__name__}"
        raise ConfigError(
            f"model.arch={arch!r} gives outputs of {got} for token ids of shape "
            f"{(2, *input_shape)}, not next-token logits {expected}: text data needs a causal "
            "language model over auditml's byte tokens (e.g. model.arch: gpt2_tiny)"
        )


def own_model_errors(arch: str) -> tuple[type[Exception], ...]:
    """What running a model of ``arch`` may raise that is the model's fault, to catch and report
    with :func:`own_model_failed`: anything, for the user's own factory (``module:factory``);
    nothing, for a registered architecture, whose errors are auditml's bugs (left to show their
    traceback)."""
    return (Exception,) if is_reference(arch) else ()


def own_model_failed(arch: str, doing: str, err: BaseException) -> ConfigError:
    """The one line for the user's own model (``module:factory``) that raised ``err`` while
    ``doing`` (building it, running it on zeros, training it): the error, not a traceback."""
    return ConfigError(
        f"model.arch={arch!r}: {doing} raised {type(err).__name__}: {_one_line(err)}; fix the "
        "factory"
    )


def _unusable(
    arch: str, input_shape: tuple[int, ...], doing: str, err: BaseException
) -> ConfigError:
    if is_reference(arch):
        return own_model_failed(arch, f"{doing} for inputs of shape {tuple(input_shape)}", err)
    return ConfigError(
        f"model.arch={arch!r} cannot take inputs of shape {tuple(input_shape)} "
        f"({_one_line(err)}); choose an architecture for them, or leave model.arch unset "
        "for the dataset's default"
    )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:159] + "…"


__all__ = [
    "MODELS", "ModelFactory", "accuracy", "build_model", "own_model_errors", "own_model_failed",
    "predict_logits",
]
