"""DP-SGD set-up: noise calibration against Opacus's accountant, and model checks."""

from __future__ import annotations

import pytest
from opacus.accountants import create_accountant
from torch import nn

from auditml.config import DPConfig, parse_config
from auditml.errors import ConfigError, ModelError
from auditml.formatting import dp_guarantee_line
from auditml.training.privacy import check_noise_plan, plan_noise, prepare_for_dp
from time_limit import finishes_within


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
    assert 4.99 < epsilon <= 5.0
    assert dp_guarantee_line(epsilon, 2e-4) == "Achieved DP guarantee: ε=5.00, δ=2e-04"


def test_given_noise_multiplier_is_used_as_is() -> None:
    dp = DPConfig(enabled=True, noise_multiplier=1.3, delta=1e-5)
    plan = plan_noise(dp, batches_per_epoch=10, epochs=3)
    assert (plan.noise_multiplier, plan.calibrated, plan.steps) == (1.3, False, 30)


@pytest.mark.parametrize("target", [1e-3, 1e-6])
@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_epsilon_below_the_floor_is_a_config_error(target: float, accountant: str) -> None:
    # Opacus raised ValueError("The privacy budget is too low.") at train time.
    dp = DPConfig(enabled=True, epsilon=target, accountant=accountant)
    floor = "even noise_multiplier=1000 spends" if accountant == "prv" else "cannot certify less"
    with pytest.raises(ConfigError, match=rf"training.dp.epsilon={target:g} is out of reach for "
                       rf"400 steps at sampling rate 0.05, δ=1e-05: .*{floor}"):
        plan_noise(dp, batches_per_epoch=20, epochs=20)


def test_huge_epsilon_with_prv_is_refused_fast() -> None:
    # Opacus's calibration ran for more than 150 s on this.
    dp = DPConfig(enabled=True, epsilon=1e6)
    with finishes_within(20), pytest.raises(ConfigError, match="would need a grid of"):
        plan_noise(dp, batches_per_epoch=10, epochs=2)


def test_huge_epsilon_with_rdp_is_calibrated() -> None:
    dp = DPConfig(enabled=True, epsilon=1e6, accountant="rdp")
    with finishes_within(20):
        plan = plan_noise(dp, batches_per_epoch=10, epochs=2)
    assert 1e6 - 0.01 < _epsilon("rdp", plan.noise_multiplier, 0.1, 20, 1e-5) <= 1e6


@pytest.mark.parametrize("sigma", [1e-9, 1e-3])
def test_noise_too_small_for_prv_is_a_config_error_before_training(sigma: float) -> None:
    # It used to pass here and fail with ValueError / a 237 GiB allocation after epoch 1.
    dp = DPConfig(enabled=True, noise_multiplier=sigma)
    with finishes_within(20), pytest.raises(
        ConfigError, match=rf"training.dp.noise_multiplier={sigma:g} cannot be accounted for"
    ) as caught:
        plan_noise(dp, batches_per_epoch=10, epochs=2)
    assert "training.dp.accountant: rdp" in str(caught.value)


def test_tiny_noise_is_fine_for_rdp() -> None:
    dp = DPConfig(enabled=True, noise_multiplier=1e-9, accountant="rdp")
    assert plan_noise(dp, batches_per_epoch=10, epochs=2).noise_multiplier == 1e-9


def test_check_noise_plan_uses_the_configs_schedule(tiny_config) -> None:
    raw = tiny_config(training={"dp": {"enabled": True, "epsilon": 3.0}, "canaries": {"count": 20}})
    plan = check_noise_plan(parse_config(raw))
    # 100 members + half of 20 canaries, batches of 50 -> 3 batches per epoch, 2 epochs.
    assert plan is not None and (plan.sample_rate, plan.steps) == (1 / 3, 6)
    assert check_noise_plan(parse_config(tiny_config())) is None
    # Gradient canaries are not examples: 100 members alone make 2 batches per epoch.
    gradient = tiny_config(training={"dp": {"enabled": True, "epsilon": 3.0},
                                     "canaries": {"count": 20, "kind": "gradient"}})
    plan = check_noise_plan(parse_config(gradient))
    assert plan is not None and (plan.sample_rate, plan.steps) == (1 / 2, 4)
    raw["training"]["dp"]["epsilon"] = 1e-4
    with pytest.raises(ConfigError, match=r"training.dp.epsilon=0.0001 is out of reach"):
        check_noise_plan(parse_config(raw))


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


def test_train_refuses_an_unreachable_epsilon_before_loading_data(
    tiny_config, write_config, monkeypatch, capsys
) -> None:
    import auditml.training.trainer as trainer
    from auditml.cli import main

    monkeypatch.setattr(trainer, "load_dataset", lambda config: pytest.fail("data was loaded"))
    path = write_config(tiny_config(training={"dp": {"enabled": True, "epsilon": 1e-3}}))
    code = main(["train", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: training.dp.epsilon=0.001 is out of reach for 4 steps")
