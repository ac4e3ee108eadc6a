"""The random-stopping tuner of Papernot & Steinke (2022) at each finite ε of a sweep.

Tuning on private data leaks: which setting won depends on the data. Their tuner bounds that
leak: draw the number of trials K from D_{η,γ} (:class:`~auditml.training.tuning_privacy.
StoppingRule`), train K independent trials, each with a candidate drawn uniformly, and keep the
one with the best validation accuracy. The ε of the whole procedure is
:func:`~auditml.training.tuning_privacy.random_stopping_epsilon` (their Theorem 2).

Only settings that leave DP-SGD's noise schedule (σ, sampling rate, steps) unchanged may be
tuned, so every trial spends the same per-run budget. Trials are ordinary run directories under
the sweep's ``tuning/``; their draws (K, candidates, training seeds) follow the config's seed,
so a rerun reuses them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from auditml.config import MAX_SEED, AuditMLConfig
from auditml.errors import ConfigError
from auditml.run_directory import RunDirectory, SweepDirectory
from auditml.sweep.plan import run_config
from auditml.training.tuning_privacy import StoppingRule, random_stopping_epsilon

# Tunable settings and their config keys: none of them changes the noise schedule.
TUNABLE = {
    "learning_rate": "training.learning_rate",
    "max_grad_norm": "training.dp.max_grad_norm",
    "weight_decay": "training.weight_decay",
    "momentum": "training.momentum",
}
DEFAULT_STOPPING = "geometric:0.2"
_TUNING_STREAM = 12  # keeps the tuner's draws apart from every other use of the seed


@dataclass(frozen=True)
class TuningPlan:
    """The candidates (every combination of the given values) and the stopping rule."""

    candidates: list[dict[str, float]]
    rule: StoppingRule


def parse_tuning(specs: Sequence[str], stopping: str | None) -> TuningPlan:
    """``--tune NAME=V1,V2,...`` (repeatable) and ``--tune-stopping`` as a plan."""
    grid: dict[str, list[float]] = {}
    for spec in specs:
        name, _, values = spec.partition("=")
        if name not in TUNABLE:
            raise ConfigError(
                f"--tune {spec[:60]}: can tune {', '.join(TUNABLE)} (settings that leave the "
                "noise schedule unchanged), as NAME=V1,V2,..."
            )
        if name in grid:
            raise ConfigError(f"--tune: {name} is given twice; list all its values once")
        try:
            numbers = [float(value) for value in values.split(",")]
        except ValueError:
            raise ConfigError(
                f"--tune {spec[:60]}: values must be numbers separated by commas"
            ) from None
        if len(set(numbers)) != len(numbers) or not all(map(math.isfinite, numbers)):
            raise ConfigError(f"--tune {spec[:60]}: give distinct finite values")
        grid[name] = numbers
    if not grid:
        raise ConfigError("--tune: name at least one setting, e.g. learning_rate=0.01,0.05")
    candidates = [dict(zip(grid, values, strict=True))
                  for values in itertools.product(*grid.values())]
    return TuningPlan(candidates, StoppingRule.parse(stopping or DEFAULT_STOPPING))


@dataclass(frozen=True)
class Trial:
    candidate: dict[str, float]
    config: AuditMLConfig


def plan_trials(
    base: AuditMLConfig, epsilon: float, plan: TuningPlan, sweep: SweepDirectory
) -> list[Trial]:
    """K trials at ``epsilon``, drawn from the config's seed (validated configs, not trained)."""
    rng = np.random.default_rng([base.seed, _TUNING_STREAM, round(epsilon * 1_000_000)])
    count = plan.rule.draw(rng)
    name = SweepDirectory.run_name(base.experiment_name, epsilon)
    trials = []
    for index in range(count):
        candidate = plan.candidates[int(rng.integers(len(plan.candidates)))]
        overrides: dict[str, Any] = {TUNABLE[key]: value for key, value in candidate.items()}
        # A fresh training seed per trial: the theorem needs independent runs.
        overrides["training.seed"] = int(rng.integers(MAX_SEED))
        trials.append(Trial(candidate, run_config(
            base, epsilon, sweep, name=f"{name}_trial{index + 1}", output_dir=sweep.tuning_dir,
            overrides=overrides,
        )))
    return trials


class TuningResult(BaseModel):
    """The tuner at one ε: its trials, the winner, and the ε of one trial and of the whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon_target: float
    stopping: str
    expected_trials: float
    trials: list[dict[str, Any]]
    best_run: str
    best_candidate: dict[str, float]
    best_val_acc: float
    delta: float
    trial_epsilon_rdp: float
    tuned_epsilon: float

    def summary(self) -> str:
        setting = ", ".join(f"{key}={value:g}" for key, value in self.best_candidate.items())
        return (
            f"- ε target {self.epsilon_target:g}: {len(self.trials)} trial(s) drawn "
            f"({self.stopping}, E[K]={self.expected_trials:.2f}); best {setting} with "
            f"validation accuracy {self.best_val_acc:.1%} ({self.best_run}). One trial: "
            f"ε={self.trial_epsilon_rdp:.2f} (RDP); the whole tuning procedure: "
            f"**ε={self.tuned_epsilon:.2f}** at "
            f"δ={self.delta:g} (Papernot & Steinke 2022, Theorem 2)."
        )


def tuning_result(epsilon: float, trials: Sequence[Trial], rule: StoppingRule) -> TuningResult:
    """Read the trained trials back and account for the whole tuner."""
    rows, schedules = [], []
    for trial in trials:
        training = RunDirectory(trial.config.run_dir).read_training()
        rows.append({"run": trial.config.experiment_name, "candidate": trial.candidate,
                     "val_acc": training.val_acc})
        schedules.append((float(training.noise_multiplier or 0), float(training.sample_rate or 0),
                          int(training.steps or 0)))
    best = max(range(len(rows)), key=lambda index: rows[index]["val_acc"])
    delta = trials[0].config.training.dp.delta
    privacy = random_stopping_epsilon(schedules, delta, rule)
    return TuningResult(
        epsilon_target=epsilon, stopping=rule.describe(), expected_trials=rule.expected_trials,
        trials=rows, best_run=rows[best]["run"], best_candidate=trials[best].candidate,
        best_val_acc=rows[best]["val_acc"], delta=delta,
        trial_epsilon_rdp=privacy.trial_epsilon, tuned_epsilon=privacy.tuned_epsilon,
    )
