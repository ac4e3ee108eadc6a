"""DP-SGD with Opacus: model checks, noise calibration and the accountant.

Privacy semantics are Opacus's: each example's gradient is clipped to ``max_grad_norm``,
Gaussian noise of std ``noise_multiplier * max_grad_norm`` is added to the sum, batches are
drawn by Poisson sampling with rate ``1 / batches_per_epoch``, and ε is computed by the chosen
accountant (PRV by default: tighter than RDP for the same noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opacus.accountants.utils import get_noise_multiplier
from opacus.validators import ModuleValidator
from torch import nn

from auditml.config import DPConfig
from auditml.errors import ModelError


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

    Calibration is Opacus's binary search on the accountant: the returned σ yields
    ``target - 0.01 < ε <= target`` at δ over ``epochs * batches_per_epoch`` steps.
    """
    sample_rate = 1.0 / batches_per_epoch
    steps = epochs * batches_per_epoch
    if dp.noise_multiplier is not None:
        return NoisePlan(dp.noise_multiplier, sample_rate, steps, calibrated=False)
    assert dp.epsilon is not None  # guaranteed by DPConfig's validator
    sigma = get_noise_multiplier(
        target_epsilon=dp.epsilon,
        target_delta=dp.delta,
        sample_rate=sample_rate,
        steps=steps,
        accountant=dp.accountant,
    )
    return NoisePlan(float(sigma), sample_rate, steps, calibrated=True)


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
            "set training.dp.fix_model: true to let auditml replace them"
        )
    before = {name: type(module).__name__ for name, module in model.named_modules()}
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
    found = []
    for name, module in model.named_modules():
        if any(True for _ in module.children()):
            continue
        for problem in ModuleValidator.validate(module, strict=False):
            reason = " ".join(str(problem).split()).split(". ")[0]
            found.append(f"{type(module).__name__} at '{name}' ({reason})")
    return found
