"""Model inversion: reconstruct a representative input of each class by optimising its score.

Two methods, both white box (they need the gradient of the model's output with respect to its
input), both searching the box ``[lower, upper]`` of the data's observed range in the dataset's
standardised space (every step is followed by a clamp to it, the projection onto the box).

``miface`` — Fredrikson, Jha & Ristenpart 2015, "Model Inversion Attacks that Exploit Confidence
Information and Basic Countermeasures" (CCS), Algorithm 1 (MI-Face) without its optional
denoising step. Plain gradient descent from ``x₀ = 0`` (the data's mean in standardised space) on

    c(x) = 1 − softmax(f(x))_class,

stopping at the first of: ``steps`` iterations (the paper's α); no new lowest cost for
``patience`` consecutive iterations (β); a cost at or below ``cost_threshold`` (γ). It returns
the iterate of lowest cost. The paper ran α=5000, β=100, γ=0.99, λ=0.1 on 112x92 faces; here
γ defaults to 1e-6, stopping only once the model is sure, since a γ of 0.99 accepts any input
the model gives 1% to the class (on digits, running on raised the evaluator's accuracy on the
reconstructions from 0.7 to 0.9). IBM ART's ``MIFace`` (1.20.1) differs: its loop continues
while ``cost <= threshold or cost >= max(window)``, so it runs ``max_iter`` (10,000) steps
whenever the class gets 1% or more, returns the last iterate, and on a model that outputs
logits ascends the logit rather than the probability.
Because ∂c/∂x = −p(1−p)·∂(logit margin)/∂x, the gradient vanishes where the model is confidently
wrong or confidently right: MI-Face stalls on saturated models (the weakness ``tv`` addresses).

``tv`` — a stronger variant with an image prior, in the spirit of Mahendran & Vedaldi 2015
("Understanding Deep Image Representations by Inverting Them") and the regularised inversions
that followed: Adam on

    L(x) = −log softmax(f(x))_class + λ_tv · TV(x) + λ_l2 · ‖x‖²/d,

    TV(x) = Σ_{c,i,j} (|x_{c,i+1,j} − x_{c,i,j}| + |x_{c,i,j+1} − x_{c,i,j}|) / d,

with d the number of input values (so the weights do not depend on the image size). The log
does not saturate as p does, TV favours piecewise-smooth images over adversarial noise, and the
L2 term keeps values near the data's mean. ``restarts`` random starts, uniform in the box, are
optimised for ``steps`` steps; each class keeps the start whose final iterate has the highest
class probability. TV only exists for images ``(C, H, W)``; for flat inputs ``(F,)`` it is not
applied and only the L2 prior acts (:func:`inversion_notes` says so for the record).

Determinism: random starts are drawn from a CPU generator seeded with ``seed``, so they are the
same on every device; on the CPU the whole result is reproducible bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from pydantic import Field, model_validator
from torch import nn

from auditml.attacks.base import AttackSettings, validated_settings
from auditml.errors import AuditMLError

InversionMethod = Literal["miface", "tv"]


class InversionInputError(AuditMLError, ValueError):
    """The model, classes, input shape or bounds given to :func:`invert` are unusable."""


DEFAULT_LR: dict[str, float] = {"miface": 1.0, "tv": 0.1}
"""Step size when none is given. MI-Face's plain gradient step scales with p(1 − p), Adam's does
not, so one value cannot serve both; these did best of those tried on digits (0.05-1.0)."""


class InversionSettings(AttackSettings):
    """How to invert; ``patience`` and ``cost_threshold`` are MI-Face's, the weights and
    ``restarts`` the ``tv`` method's (each method ignores the others' settings). ``lr``
    defaults to the method's :data:`DEFAULT_LR`."""

    method: InversionMethod = "tv"
    steps: int = Field(default=1000, ge=1, le=1_000_000)
    lr: float = Field(gt=0, le=100)
    patience: int = Field(default=100, ge=1)
    cost_threshold: float = Field(default=1e-6, ge=0, lt=1)
    tv_weight: float = Field(default=0.05, ge=0, le=1e6)
    l2_weight: float = Field(default=0.01, ge=0, le=1e6)
    restarts: int = Field(default=4, ge=1, le=1000)
    seed: int = Field(default=0, ge=0, lt=2**63)

    @model_validator(mode="before")
    @classmethod
    def _method_learning_rate(cls, values: Any) -> Any:
        # Filled in before validation, so the recorded settings show the step size used.
        if isinstance(values, dict) and values.get("lr") is None:
            method = values.get("method", "tv")
            return {**values, "lr": DEFAULT_LR.get(method, DEFAULT_LR["tv"])}
        return values


def inversion_settings(**settings: object) -> InversionSettings:
    """:class:`InversionSettings` from keywords; a bad value is one :class:`ConfigError` line."""
    return validated_settings(InversionSettings, "model_inversion", dict(settings))


def is_image_shape(input_shape: Sequence[int]) -> bool:
    """Whether inputs of this shape are images ``(C, H, W)`` (TV applies) rather than flat."""
    return len(input_shape) == 3


def inversion_notes(settings: InversionSettings, input_shape: Sequence[int]) -> list[str]:
    """Lines worth recording beside the reconstructions: settings that did not apply."""
    if settings.method == "tv" and settings.tv_weight > 0 and not is_image_shape(input_shape):
        return [f"tv_weight={settings.tv_weight} not applied: inputs of shape "
                f"{tuple(input_shape)} are not images (C, H, W); only the L2 prior acts"]
    return []


def invert(
    model: nn.Module,
    classes: Sequence[int] | ArrayLike,
    input_shape: Sequence[int],
    settings: InversionSettings,
    *,
    device: torch.device,
    lower: ArrayLike,
    upper: ArrayLike,
) -> np.ndarray:
    """One reconstruction per entry of ``classes``, float32 ``(len(classes), *input_shape)``.

    ``model`` maps a batch of inputs to logits and must already be on ``device``; it is run in
    eval mode (its mode is restored afterwards) and its parameters are neither changed nor given
    gradients. ``lower`` and ``upper`` are scalars or arrays broadcastable to ``input_shape``:
    the smallest and largest value of each input coordinate in the population.
    """
    shape = _check_shape(input_shape)
    low, high = _check_bounds(lower, upper, shape)
    wanted = _check_classes(classes)
    was_training = model.training
    model.eval()
    try:
        num_classes = _num_classes(model, shape, device)
        if wanted.max() >= num_classes:
            raise InversionInputError(
                f"classes must be in 0..{num_classes - 1} (the model has {num_classes} outputs), "
                f"got {int(wanted.max())}"
            )
        low_t = torch.as_tensor(low, device=device)
        high_t = torch.as_tensor(high, device=device)
        target = torch.as_tensor(wanted, device=device)
        if settings.method == "miface":
            result = _miface(model, target, shape, settings, low_t, high_t)
        else:
            result = _tv(model, target, shape, settings, low_t, high_t)
    finally:
        model.train(was_training)
    return result.detach().cpu().numpy().astype(np.float32)


def _miface(model: nn.Module, target: torch.Tensor, shape: tuple[int, ...],
            settings: InversionSettings, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(len(target), device=target.device)
    x = torch.clamp(torch.zeros((len(target), *shape), device=target.device), low, high)
    best_x = x.clone()
    best_cost = torch.full((len(target),), float("inf"), device=target.device)
    since_best = torch.zeros(len(target), dtype=torch.long, device=target.device)
    active = torch.ones(len(target), dtype=torch.bool, device=target.device)
    for _ in range(settings.steps):
        x.requires_grad_(True)
        cost = 1 - torch.softmax(model(x), dim=1)[rows, target]
        # Each row's cost depends on its own input only (eval mode), so the gradient of the sum
        # is every row's own gradient; torch.autograd.grad leaves the parameters' .grad alone.
        (gradient,) = torch.autograd.grad(cost.sum(), x)
        with torch.no_grad():
            step = settings.lr * gradient * active.view(-1, *([1] * len(shape)))
            x = torch.clamp(x.detach() - step, low, high)
            cost = 1 - torch.softmax(model(x), dim=1)[rows, target]
            improved = active & (cost < best_cost)
            best_x[improved] = x[improved]
            best_cost = torch.where(improved, cost, best_cost)
            since_best = torch.where(improved, 0, since_best + 1)
            active &= (since_best < settings.patience) & (best_cost > settings.cost_threshold)
        if not bool(active.any()):
            break
    return best_x


def _tv(model: nn.Module, target: torch.Tensor, shape: tuple[int, ...],
        settings: InversionSettings, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    restarts, count = settings.restarts, len(target)
    generator = torch.Generator().manual_seed(settings.seed)
    unit = torch.rand((restarts * count, *shape), generator=generator).to(target.device)
    # Row r*count + k is restart r of class k.
    x = (low + unit * (high - low)).requires_grad_(True)
    labels = target.repeat(restarts)
    rows = torch.arange(len(labels), device=target.device)
    optimiser = torch.optim.Adam([x], lr=settings.lr)
    tv_weight = settings.tv_weight if is_image_shape(shape) else 0.0
    size = float(np.prod(shape))
    for _ in range(settings.steps):
        log_p = torch.log_softmax(model(x), dim=1)[rows, labels]
        loss = -log_p + settings.l2_weight * x.pow(2).flatten(1).sum(1) / size
        if tv_weight > 0:
            loss = loss + tv_weight * _total_variation(x) / size
        (x.grad,) = torch.autograd.grad(loss.sum(), x)
        optimiser.step()
        with torch.no_grad():
            x.clamp_(low, high)
    with torch.no_grad():
        final = torch.log_softmax(model(x), dim=1)[rows, labels].view(restarts, count)
        best = final.argmax(dim=0)  # the first restart among equals
        columns = torch.arange(count, device=best.device)
        return x.detach().view(restarts, count, *shape)[best, columns]


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV of each image in a batch ``(N, C, H, W)``."""
    down = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).sum(1)
    across = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().flatten(1).sum(1)
    return down + across


def _check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(size) for size in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise InversionInputError(
            f"input_shape must be (C, H, W) for images or (F,) for flat inputs, got {shape}"
        )
    return shape


def _check_bounds(lower: ArrayLike, upper: ArrayLike,
                  shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    bounds = []
    for name, value in (("lower", lower), ("upper", upper)):
        array = np.asarray(value, dtype=np.float32)
        try:
            array = np.broadcast_to(array, shape).copy()
        except ValueError:
            raise InversionInputError(
                f"{name} must be a scalar or broadcast to the input shape {shape}, "
                f"got shape {array.shape}"
            ) from None
        if not np.isfinite(array).all():
            raise InversionInputError(f"{name} must be finite")
        bounds.append(array)
    low, high = bounds
    if (low > high).any():
        raise InversionInputError(
            f"lower must not exceed upper: lower={float(low[low > high].flat[0])} > "
            f"upper={float(high[low > high].flat[0])} (pass the population's min and max)"
        )
    return low, high


def _check_classes(classes: Sequence[int] | ArrayLike) -> np.ndarray:
    wanted = np.asarray(classes)
    if wanted.ndim != 1 or wanted.size == 0:
        raise InversionInputError(f"classes must be a non-empty list of class indices, "
                                  f"got shape {wanted.shape}")
    if wanted.dtype.kind not in "iu" or wanted.min() < 0:
        raise InversionInputError(f"classes must be non-negative integers, got {wanted.tolist()}")
    return wanted.astype(np.int64)


def _num_classes(model: nn.Module, shape: tuple[int, ...], device: torch.device) -> int:
    with torch.no_grad():
        try:
            logits = model(torch.zeros((1, *shape), device=device))
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:160]
            raise InversionInputError(
                f"the model does not accept inputs of shape {shape} on {device} ({reason})"
            ) from None
    if logits.ndim != 2 or logits.shape[0] != 1:
        raise InversionInputError(
            f"the model must return logits of shape (batch, classes), got {tuple(logits.shape)}"
        )
    return int(logits.shape[1])
