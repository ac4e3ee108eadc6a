"""DP-SGD set-up: noise calibration against Opacus's accountant, and model checks."""

from __future__ import annotations

import pytest
from opacus.accountants import create_accountant
from torch import nn

from auditml.config import DPConfig
from auditml.errors import ModelError
from auditml.formatting import dp_guarantee_line
from auditml.training.privacy import plan_noise, prepare_for_dp


def _epsilon(accountant: str, sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    reference = create_accountant(accountant)
    reference.history = [(sigma, sample_rate, steps)]
    return reference.get_epsilon(delta)


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("target", [1.0, 5.0])
def test_calibrated_noise_reaches_target_from_below(accountant: str, target: float) -> None:
    # The tutorial's schedule: 5000 examples, batch 256 -> 20 batches per epoch, 20 epochs.
    dp = DPConfig(enabled=True, epsilon=target, delta=2e-4, accountant=accountant)
    plan = plan_noise(dp, batches_per_epoch=20, epochs=20)
    assert (plan.sample_rate, plan.steps, plan.calibrated) == (0.05, 400, True)
    epsilon = _epsilon(accountant, plan.noise_multiplier, plan.sample_rate, plan.steps, 2e-4)
    assert target - 0.05 <= epsilon <= target


def test_tutorial_eps5_line() -> None:
    """What `auditml train --config configs/dp_tutorial_eps5.yaml` prints, from the accountant."""
    dp = DPConfig(enabled=True, epsilon=5.0, delta=2e-4)
    plan = plan_noise(dp, batches_per_epoch=20, epochs=20)
    epsilon = _epsilon("prv", plan.noise_multiplier, plan.sample_rate, plan.steps, 2e-4)
    line = dp_guarantee_line(epsilon, 2e-4)
    assert line.startswith("Achieved DP guarantee: ε=4.9") and line.endswith(", δ=2e-04")


def test_given_noise_multiplier_is_used_as_is() -> None:
    dp = DPConfig(enabled=True, noise_multiplier=1.3, delta=1e-5)
    plan = plan_noise(dp, batches_per_epoch=10, epochs=3)
    assert (plan.noise_multiplier, plan.calibrated, plan.steps) == (1.3, False, 30)


def _batchnorm_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)
    )


def test_batchnorm_is_named_and_groupnorm_suggested() -> None:
    with pytest.raises(ModelError) as caught:
        prepare_for_dp(_batchnorm_model(), fix=False, report=print)
    message = str(caught.value)
    assert "BatchNorm2d at '1'" in message
    assert "GroupNorm" in message and "training.dp.fix_model: true" in message
    assert "\n" not in message


def test_fix_model_replaces_and_reports() -> None:
    reports: list[str] = []
    fixed = prepare_for_dp(_batchnorm_model(), fix=True, report=reports.append)
    assert isinstance(fixed[1], nn.GroupNorm)
    assert reports == ["fix_model: replaced BatchNorm2d at '1' with GroupNorm"]


def test_compatible_model_is_returned_untouched() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    assert prepare_for_dp(model, fix=False, report=print) is model
