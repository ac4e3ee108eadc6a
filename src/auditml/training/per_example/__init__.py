"""Per-example gradient rules by layer type, and the check that a model is covered by them.

Adding a layer type is one module with a rule (see :mod:`.base`) plus one ``register`` line.
Layers are matched by exact type, as Opacus does: a subclass may compute something else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from auditml.errors import ModelError
from auditml.training.per_example.base import LayerRule, ParameterGradients
from auditml.training.per_example.clipping import PerExampleClipper
from auditml.training.per_example.conv import conv2d_rule, conv2d_supported
from auditml.training.per_example.linear import linear_rule
from auditml.training.per_example.normalization import group_norm_rule, layer_norm_rule


@dataclass(frozen=True)
class LayerSupport:
    rule: LayerRule
    # Why a particular layer of this type cannot be handled, or None when it can.
    refuses: Callable[[nn.Module], str | None] = lambda _: None


LAYER_RULES: dict[type[nn.Module], LayerSupport] = {}


def register(layer_type: type[nn.Module], support: LayerSupport) -> None:
    if layer_type in LAYER_RULES:
        raise ValueError(f"a per-example rule for {layer_type.__name__} is already registered")
    LAYER_RULES[layer_type] = support


register(nn.Linear, LayerSupport(linear_rule))
register(nn.Conv2d, LayerSupport(conv2d_rule, conv2d_supported))  # type: ignore[arg-type]
register(nn.GroupNorm, LayerSupport(group_norm_rule))
register(nn.LayerNorm, LayerSupport(layer_norm_rule))


def covered_layers(model: nn.Module) -> list[tuple[str, nn.Module, LayerRule]]:
    """Every module that holds trainable parameters, with its rule; raise if one has none."""
    problems = fast_path_problems(model)
    if problems:
        raise ModelError(
            f"the fast DP-SGD path cannot train this model: {problems[0]}; set "
            "training.dp.grad_sample_mode: auto (or hooks) to use Opacus for it"
        )
    return [
        (name, module, LAYER_RULES[type(module)].rule)
        for name, module in model.named_modules()
        if _own_trainable(module)
    ]


def fast_path_problems(model: nn.Module) -> list[str]:
    """Why the fast path cannot clip this model's gradients (empty when it can).

    Every trainable parameter must sit directly in a layer with a registered rule. What only
    shows at run time (a layer run twice, an in-place change) is caught by the clipper.
    """
    problems = []
    for name, module in model.named_modules():
        if not _own_trainable(module):
            continue
        support = LAYER_RULES.get(type(module))
        label = f"{type(module).__name__} at '{name}'"
        if support is None:
            problems.append(f"{label} has no per-example rule")
            continue
        own = [parameter for parameter, _ in module.named_parameters(recurse=False)]
        unknown = [parameter for parameter in own if parameter not in ("weight", "bias")]
        reason = support.refuses(module) or (f"parameters {unknown}" if unknown else None)
        if reason is not None:
            problems.append(f"{label} ({reason})")
    return problems


def _own_trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters(recurse=False))


__all__ = [
    "LAYER_RULES",
    "LayerRule",
    "LayerSupport",
    "ParameterGradients",
    "PerExampleClipper",
    "covered_layers",
    "fast_path_problems",
    "register",
]
