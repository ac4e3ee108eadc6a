"""DP-SGD with Opacus: model checks, noise calibration and the accountant.

Privacy semantics are Opacus's: each example's gradient is clipped to ``max_grad_norm``,
Gaussian noise of std ``noise_multiplier * max_grad_norm`` is added to the sum, batches are
drawn by Poisson sampling with rate ``1 / batches_per_epoch``, and ε is computed by the chosen
accountant (PRV by default: tighter than RDP for the same noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from auditml.config import DPConfig
from auditml.errors import ConfigError, ModelError
from auditml.training.calibration import AccountingError, calibrate_noise, epsilon_spent

if TYPE_CHECKING:
    from auditml.config import AuditMLConfig


@dataclass(frozen=True)
class NoisePlan:
    """How much noise DP-SGD adds, and the schedule the accountant sees."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    # True when noise_multiplier was calibrated to reach training.dp.epsilon.
    calibrated: bool


def plan_noise(dp: DPConfig, *, batches_per_epoch: int, epochs: int) -> NoisePlan:
    """Use the configured ``noise_multiplier``, or calibrate one that spends at most ε.

    Either way the accountant is asked once for the whole schedule, so a setting it cannot
    account for (σ so small that PRV would need a huge grid, δ too small for its floating point,
    ε below its floor) is a :class:`~auditml.errors.ConfigError` before training, not a
    traceback or a hang after the first epoch. Calibration (:func:`calibrate_noise`) returns σ
    with ``target - 0.01 < ε <= target`` at δ over ``epochs * batches_per_epoch`` steps.
    """
    sample_rate = 1.0 / batches_per_epoch
    steps = epochs * batches_per_epoch
    schedule = f"{steps} steps at sampling rate {sample_rate:.3g}, δ={dp.delta:g}"
    if dp.noise_multiplier is not None:
        try:
            epsilon_spent(dp.accountant, dp.noise_multiplier, sample_rate, steps, dp.delta)
        except (AccountingError, ArithmeticError) as error:
            raise ConfigError(
                f"training.dp.noise_multiplier={dp.noise_multiplier:g} cannot be accounted for "
                f"with {schedule}: {error}; add noise, train fewer epochs, or set "
                "training.dp.accountant: rdp"
            ) from None
        return NoisePlan(dp.noise_multiplier, sample_rate, steps, calibrated=False)
    assert dp.epsilon is not None  # guaranteed by DPConfig's validator
    try:
        sigma = calibrate_noise(dp.epsilon, dp.delta, sample_rate, steps, dp.accountant)
    except (AccountingError, ArithmeticError) as error:
        raise ConfigError(
            f"training.dp.epsilon={dp.epsilon:g} is out of reach for {schedule}: {error}; "
            "choose another epsilon or delta, or change training.dp.accountant"
        ) from None
    return NoisePlan(sigma, sample_rate, steps, calibrated=True)


def check_noise_plan(config: AuditMLConfig) -> NoisePlan | None:
    """The noise plan of ``config``'s DP-SGD schedule, from the config alone (None without DP).

    Run before any data is loaded, so an ε, δ or σ the accountant cannot handle is refused
    before the work. The number of batches assumes half the canaries are drawn in (each is a
    fair coin); training plans again with the batches it actually has.
    """
    dp = config.training.dp
    if not dp.enabled:
        return None
    canaries = config.training.canaries
    # Input-space canaries are examples in the loader; gradient canaries are not (they are
    # sampled at the real examples' rate, which the real examples alone fix).
    drawn_in = canaries.count // 2 if canaries.kind != "gradient" else 0
    examples = config.data.train_size + drawn_in
    batches = math.ceil(examples / config.data.batch_size)
    return plan_noise(dp, batches_per_epoch=batches, epochs=config.training.epochs)


def prepare_for_dp(model: nn.Module, *, fix: bool, report: Callable[[str], None]) -> nn.Module:
    """Return a model DP-SGD can train, or raise naming each layer it cannot.

    With ``fix`` the offending layers are replaced by Opacus's ModuleValidator (BatchNorm becomes
    GroupNorm) and each replacement is reported.
    """
    problems = _offending_layers(model)
    if not problems:
        return model
    if not fix:
        raise ModelError(
            f"DP-SGD cannot train this model: {'; '.join(problems)}. Replace BatchNorm with "
            "GroupNorm (per-example gradients are undefined for layers that mix examples), or "
            "set training.dp.fix_model: true to let auditml replace them (Opacus's "
            "ModuleValidator.fix)"
        )
    before = {name: type(module).__name__ for name, module in model.named_modules()}
    from opacus.validators import ModuleValidator

    fixed = ModuleValidator.fix(model)
    for name, module in fixed.named_modules():
        old = before.get(name)
        if old is not None and old != type(module).__name__:
            report(f"fix_model: replaced {old} at '{name}' with {type(module).__name__}")
    remaining = _offending_layers(fixed)
    if remaining:
        raise ModelError(f"fix_model could not make the model DP-compatible: {remaining[0]}")
    return fixed


def _offending_layers(model: nn.Module) -> list[str]:
    """Each layer Opacus rejects, as "BatchNorm2d at '1' (reason)".

    Opacus's own messages do not say which layer failed, so each leaf is validated on its own.
    """
    from opacus.validators import ModuleValidator

    found = []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        for problem in ModuleValidator.validate(module, strict=False):
            reason = " ".join(str(problem).split()).split(". ")[0]
            found.append(f"{type(module).__name__} at '{name}' ({reason})")
    return found
