"""``auditml audit-dp --config F --runs K``: the many-runs audit of a DP-SGD recipe.

Nasr et al. 2023 ("Tight Auditing of Differentially Private Machine Learning"): train the
config's recipe K times on the same members, each run with ONE gradient canary (a fixed gradient
of norm C in the clipped sum, before the noise) included by its own fair coin, and score each
run's canary from every noisy update (the all-iterates likelihood ratio of
:mod:`auditml.audit.canaries.scores`). The K (score, coin) pairs are independent draws of the
mechanism's privacy game, so the classical tests apply without the one-run theorems' slack:

- an ε lower bound at the run's δ (:func:`auditml.metrics.epsilon_lower_bound`, Clopper-Pearson
  at a threshold chosen on the other half), and
- the test of the whole privacy curve the run's accountant claims
  (:func:`auditml.metrics.dp.trials_claim_test.tradeoff_claim_test`).

Each holds at 95 % on its own. **The verdict ``violation`` is the claim test alone**, so it is
wrong with probability at most 5 % when the claim holds; it needs no second test, because an ε
bound above the claimed ε rejects the (ε, δ) curve, which lies below the claimed one, and the
claim test sees the same evidence with the claimed curve itself. (Before, both tests ran at
97.5 % and were OR-ed: a weaker test twice over.) The runs go through the reference-model
engine's executors (a process pool by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console

from auditml.audit.canaries.scores import all_iterates_scores
from auditml.config import AuditMLConfig, parse_config
from auditml.data import make_split
from auditml.errors import ConfigError
from auditml.metrics import Split, claimed_tradeoff, epsilon_lower_bound
from auditml.metrics.dp.trials_claim_test import tradeoff_claim_test
from auditml.records import ManyRunsRecord
from auditml.training.executors import JobProgress, make_executor
from auditml.training.trainer import load_dataset

CONFIDENCE = 0.95


@dataclass(frozen=True)
class CanaryRunJob:
    """One training run of the recipe with one gradient canary; returns what the audit needs."""

    config: dict[str, Any]
    seed: int
    train_indices: np.ndarray

    def run(self) -> dict[str, Any]:
        from auditml.training.batched_jobs import job_device
        from auditml.training.reference import load_pool
        from auditml.training.trainer import fit_model

        config = parse_config(self.config, "audit-dp run")
        # The pool is loaded once per process, as for reference models.
        members = load_pool(self.config).subset(self.train_indices)
        # training.device, resolved where the job runs (as reference models do).
        fit = fit_model(config, members, None, seed=self.seed, device=job_device(config))
        record, plan = fit.gradient_canaries, fit.plan
        if record is None or plan is None:
            raise ConfigError("audit-dp: the run recorded no gradient canary (is DP enabled?)")
        score = all_iterates_scores(
            record.observations, noise_multiplier=record.noise_multiplier,
            sample_rate=record.sample_rate, clip=record.max_grad_norm,
        )[0]
        return {"score": float(score), "included": bool(record.included[0]),
                "history": [plan.noise_multiplier, plan.sample_rate, plan.steps],
                "epsilon": fit.epsilon}


MAX_RUNS = 100_000
"""More runs than this is no plan: each trains a model (and the job list alone would not fit)."""


def check_runs_and_workers(runs: object, workers: object) -> None:
    """Refuse a number of runs outside [8, :data:`MAX_RUNS`] or of workers below 1, before any
    work (a huge ``--runs`` would sit building its job list)."""
    if isinstance(runs, bool) or not isinstance(runs, int) or not 8 <= runs <= MAX_RUNS:
        raise ConfigError(f"audit-dp needs 8 to {MAX_RUNS:,} runs (--runs), got {runs!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers!r}")


def many_runs_audit(
    config: AuditMLConfig, runs: int, *, workers: int = 1, console: Console | None = None
) -> ManyRunsRecord:
    """Train ``runs`` copies of ``config``'s DP recipe with one canary each and audit them."""
    dp = config.training.dp
    if not dp.enabled:
        raise ConfigError("audit-dp audits a DP-SGD recipe: set training.dp.enabled: true")
    check_runs_and_workers(runs, workers)
    executor = make_executor(config.audit.executor, workers, config.audit.ray_address)
    recipe = config.model_dump(mode="json")
    recipe["training"]["canaries"] = {"count": 1, "kind": "gradient", "direction": "dirac"}
    # Every run trains on the config's members (drawn once, here); each run's seed drives its
    # initialisation, batches, noise and its canary's coin.
    loaded = load_dataset(config)
    members = make_split(loaded.pool.y, config.data.train_size, config.seed,
                         validation_from_pool=loaded.test is None,
                         audit_size=config.data.audit_size).trained
    jobs = [
        CanaryRunJob(recipe, int(np.random.default_rng([config.seed, 17, k]).integers(2**31)),
                     members)
        for k in range(runs)
    ]
    results: list[dict[str, Any] | None] = [None] * runs
    with JobProgress(console, "audit-dp runs", runs) as advance:
        def done(index: int, result: dict[str, Any]) -> None:
            results[index] = result
            advance()

        executor.run(jobs, done)
    outcomes = [result for result in results if result is not None]
    scores = np.array([outcome["score"] for outcome in outcomes])
    included = np.array([outcome["included"] for outcome in outcomes])
    sigma, rate, steps = outcomes[0]["history"]
    claimed = float(outcomes[0]["epsilon"])
    if included.sum() < 2 or (~included).sum() < 2:
        raise ConfigError(
            f"audit-dp drew {int(included.sum())} runs with the canary and "
            f"{int((~included).sum())} without; use more --runs"
        )
    # A few hundred runs at most: the split's guarantee is exact at any size, where the hull's
    # is asymptotic (see BonferroniHull).
    bound = epsilon_lower_bound(scores, included, delta=dp.delta, confidence=CONFIDENCE,
                                threshold=Split(seed=config.seed))
    curve = claimed_tradeoff([(sigma, rate, int(steps))], mechanism=dp.accountant)
    test = tradeoff_claim_test(scores, included, curve, confidence=CONFIDENCE,
                               threshold=Split(seed=config.seed))
    violation = test.violation
    return ManyRunsRecord(
        experiment_name=config.experiment_name, runs=runs, included=int(included.sum()),
        delta=dp.delta, claimed_epsilon=claimed, confidence=CONFIDENCE,
        epsilon_lower_bound=bound.to_dict(),
        claim_test=test.to_dict(), violation=violation,
        scores=scores.tolist(), coins=included.tolist(),
    )
