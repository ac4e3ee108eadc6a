"""The sweep's plan: ε values, one config per ε, and the default attacks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from auditml.config import parse_config
from auditml.errors import AuditMLError, ConfigError
from auditml.run_directory import SweepDirectory
from auditml.sweep.plan import default_config, parse_epsilons, run_config, sweep_attacks


def test_epsilons_keep_their_order_and_inf_means_no_dp() -> None:
    assert parse_epsilons(["2", "0.5", "inf"]) == [2.0, 0.5, math.inf]
    for bad in (["nan"], ["1", "1.0"], ["-inf"]):
        with pytest.raises(ConfigError):
            parse_epsilons(bad)


@pytest.mark.parametrize(
    ("audit", "expected"),
    [
        ({}, ["mia_threshold"]),
        ({"reference_models": 4}, ["mia_lira"]),
        ({"attacks": ["mia_rmia"], "reference_models": 4}, ["mia_rmia"]),
    ],
)
def test_default_attack_is_the_strongest_the_config_pays_for(
    audit: dict[str, object], expected: list[str]
) -> None:
    config = parse_config({"experiment_name": "x", "audit": audit})
    assert sweep_attacks(config, None) == expected
    assert sweep_attacks(config, ["mia_shadow"]) == ["mia_shadow"]


def test_each_run_changes_only_dp(tmp_path: Path) -> None:
    base = parse_config({"experiment_name": "x", "seed": 4, "training": {
        "learning_rate": 0.03, "dp": {"enabled": True, "noise_multiplier": 2.0, "delta": 1e-4}}})
    sweep = SweepDirectory(tmp_path / "s")
    private, plain = run_config(base, 2.0, sweep), run_config(base, math.inf, sweep)
    assert private.run_dir == tmp_path / "s" / "runs" / "x_eps2"
    assert plain.run_dir == tmp_path / "s" / "runs" / "x_nodp"
    assert private.training.dp.epsilon == 2.0 and private.training.dp.noise_multiplier is None
    assert private.training.dp.enabled and not plain.training.dp.enabled
    for run in (private, plain):
        assert run.seed == 4 and run.training.learning_rate == 0.03
        assert run.training.dp.delta == 1e-4


def test_the_default_sweep_is_the_embedded_digits_data() -> None:
    config = default_config()
    assert config.data.dataset == "digits"
    assert config.training.dp.delta < 1 / config.data.train_size


def test_image_only_settings_on_tabular_data_fail_before_any_run_trains() -> None:
    config = parse_config({
        "experiment_name": "x", "data": {"dataset": "diabetes", "train_size": 100},
        "audit": {"mia_lira": {"augmentations": "shift"}},
    })
    with pytest.raises(AuditMLError, match=r"augmentations='shift' needs images .*\(10,\)"):
        sweep_attacks(config, ["mia_lira"])
    assert sweep_attacks(config, ["mia_threshold"]) == ["mia_threshold"]
