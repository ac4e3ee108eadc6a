"""The random-stopping tuner: its plan, its draws, and its report through ``auditml sweep``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.cli import main
from auditml.config import load_config, parse_config
from auditml.errors import ConfigError
from auditml.run_directory import RunDirectory, SweepDirectory
from auditml.sweep.tuner import _TUNING_STREAM, parse_tuning, plan_trials
from auditml.training.tuning_privacy import StoppingRule, random_stopping_epsilon


def test_candidates_are_every_combination_and_bad_specs_are_refused() -> None:
    plan = parse_tuning(["learning_rate=0.01,0.1", "max_grad_norm=0.5,1,2"], "geometric:0.25")
    assert len(plan.candidates) == 6
    assert {"learning_rate": 0.1, "max_grad_norm": 2.0} in plan.candidates
    assert plan.rule == StoppingRule(1.0, 0.25)
    for specs in (["epochs=1,2"], ["learning_rate=0.1,x"], ["learning_rate=0.1,0.1"],
                  ["learning_rate=0.1", "learning_rate=0.2"], []):
        with pytest.raises(ConfigError):
            parse_tuning(specs, None)


def test_trials_are_independent_runs_on_the_same_members(tmp_path: Path) -> None:
    base = parse_config({"experiment_name": "t", "output_dir": str(tmp_path), "seed": 3,
                         "training": {"dp": {"delta": 1e-4}}})
    plan = parse_tuning(["learning_rate=0.01,0.05,0.1"], "geometric:0.1")
    sweep = SweepDirectory(tmp_path / "s")
    trials = plan_trials(base, 2.0, plan, sweep)
    # K is the stopping rule's draw from the tuner's own stream of the config's seed.
    expected_count = plan.rule.draw(np.random.default_rng([3, _TUNING_STREAM, 2_000_000]))
    assert len(trials) == expected_count > 1
    assert all(trial.config.seed == 3 for trial in trials)  # the split's seed: same members
    seeds = [trial.config.training.seed for trial in trials]
    assert len(set(seeds)) == len(seeds) and None not in seeds
    assert all(trial.config.training.learning_rate == trial.candidate["learning_rate"]
               for trial in trials)
    assert all(trial.config.training.dp.epsilon == 2.0 for trial in trials)
    assert [t.config.run_dir for t in plan_trials(base, 2.0, plan, sweep)] == [
        t.config.run_dir for t in trials]  # a rerun finds the same trials


@pytest.mark.slow
def test_sweep_reports_the_accounted_epsilon_of_the_whole_tuning(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    path = write_config(tiny_config(
        experiment_name="tu", data={"train_size": 40, "batch_size": 20},
        training={"epochs": 2, "dp": {"delta": 1e-3}},
    ), "tu")
    code = main(["sweep", "--config", str(path), "--epsilons", "4", "--workers", "1",
                 "--tune", "learning_rate=0.01,0.05", "--tune-stopping", "geometric:0.5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    sweep = SweepDirectory(SweepDirectory.default_path(load_config(path)))
    tuning = json.loads(sweep.tuning_path.read_text())
    [result] = tuning["results"]
    trials = result["trials"]
    assert len(trials) >= 1 and result["expected_trials"] == pytest.approx(2.0)
    assert result["best_val_acc"] == max(trial["val_acc"] for trial in trials)
    records = [RunDirectory(sweep.tuning_dir / t["run"]).read_training() for t in trials]
    privacy = random_stopping_epsilon(
        [(r.noise_multiplier, r.sample_rate, r.steps) for r in records], 1e-3,
        StoppingRule(1.0, 0.5),
    )
    assert result["tuned_epsilon"] == pytest.approx(privacy.tuned_epsilon)
    assert result["tuned_epsilon"] > result["trial_epsilon_rdp"] > 3.9
    assert "the whole tuning procedure" in sweep.table_path("md").read_text()
    assert "the whole tuning procedure" in captured.out
