"""The many-runs test of a claimed trade-off curve, on mechanisms whose true curve is known."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import binom, norm

from auditml.metrics import MetricsInputError
from auditml.metrics.dp.thresholds import (
    BonferroniAllScores,
    BonferroniHull,
    Explicit,
    MultiSplit,
    Split,
    ThresholdStrategy,
)
from auditml.metrics.dp.trials_claim_test import tradeoff_claim_test


def gaussian_tradeoff(mu: float):
    """G_μ(α) = Φ(Φ⁻¹(1 − α) − μ): the trade-off of telling N(0,1) from N(μ,1)."""
    return lambda alpha: norm.cdf(norm.ppf(1 - np.asarray(alpha)) - mu)


def _runs(mu: float, runs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``runs`` Gaussian-mechanism observations of one canary, IN by a fair coin: μ-GDP."""
    is_member = rng.random(runs) < 0.5
    return rng.normal(mu * is_member, 1.0), is_member


def test_a_true_claim_is_rejected_at_most_alpha_of_the_time() -> None:
    rng = np.random.default_rng(0)
    trials = 400
    rejected = sum(
        tradeoff_claim_test(*_runs(2.0, 1000, rng), gaussian_tradeoff(2.0), seed=i).violation
        for i in range(trials)
    )
    # At most 5% in expectation; the binomial 99.9% quantile at 5% as the tolerance.
    assert rejected <= binom.ppf(0.999, trials, 0.05)


def test_a_false_claim_is_rejected() -> None:
    # True μ = 3 claimed as μ = 1: clearly caught with 1000 runs.
    rng = np.random.default_rng(1)
    caught = [
        tradeoff_claim_test(*_runs(3.0, 1000, rng), gaussian_tradeoff(1.0), seed=i).violation
        for i in range(50)
    ]
    assert sum(caught) >= 48


def test_the_test_is_conservative_at_the_boundary() -> None:
    # Slightly less private than claimed (μ 1.1 vs 1.0) with few runs: rarely flagged.
    rng = np.random.default_rng(2)
    flagged = sum(
        tradeoff_claim_test(*_runs(1.1, 200, rng), gaussian_tradeoff(1.0), seed=i).violation
        for i in range(100)
    )
    assert flagged <= 15


def test_the_bounds_are_clopper_pearson_on_the_evaluation_half() -> None:
    scores = np.array([3.0, 2.0, 1.0, 0.0, 2.5, -1.0, -2.0, -3.0])
    is_member = np.array([True, True, True, True, False, False, False, False])
    result = tradeoff_claim_test(scores, is_member, lambda a: 1 - np.asarray(a),
                                 confidence=0.9)
    assert 0 < result.false_positive_upper <= 1 and 0 < result.false_negative_upper <= 1
    # The trivial claim f(α) = 1 − α (no privacy) can never be violated.
    assert not result.violation
    assert result.allowed_false_negative == pytest.approx(1 - result.false_positive_upper)


def test_bad_confidence_is_refused() -> None:
    with pytest.raises(MetricsInputError, match=r"`confidence` must be in \(0.5, 1\), got 1.5."):
        tradeoff_claim_test([1.0, 0.0, 1.0, 0.0], [True, True, False, False],
                            gaussian_tradeoff(1.0), confidence=1.5)
    # The old name still works for one release, with a warning.
    with pytest.warns(DeprecationWarning, match="alpha"), pytest.raises(MetricsInputError,
                                                                       match="`alpha`"):
        tradeoff_claim_test([1.0, 0.0, 1.0, 0.0], [True, True, False, False],
                            gaussian_tradeoff(1.0), alpha=1.5)


@pytest.mark.parametrize(
    ("tradeoff", "message"),
    [
        (None, "must be a function"),
        (lambda a: np.full_like(a, np.nan), "one finite FNR in"),
        (lambda a: np.array([0.5]), "got shape"),
        (lambda a: 1.5 - np.asarray(a), "one finite FNR in"),
        (lambda a: ["x"] * len(a), "must return numbers"),
    ],
)
def test_a_curve_that_is_no_curve_is_refused(tradeoff: object, message: str) -> None:
    # A NaN curve would otherwise pass as "no violation" on scores that plainly violate it.
    scores, is_member = _runs(10.0, 200, np.random.default_rng(0))
    with pytest.raises(MetricsInputError, match=message):
        tradeoff_claim_test(scores, is_member, tradeoff)  # type: ignore[arg-type]


STRATEGIES = [BonferroniHull(), BonferroniAllScores(), Split(), MultiSplit(splits=9),
              Explicit(threshold=1.0)]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda strategy: strategy.name)
def test_every_strategy_rejects_a_true_claim_at_most_alpha_of_the_time(
    strategy: ThresholdStrategy,
) -> None:
    # At confidence 0.8 the 20 % allowance is measurable in 200 trials.
    rng = np.random.default_rng(3)
    trials = 200
    rejected = 0
    for trial in range(trials):
        each = replace(strategy, seed=trial) if hasattr(strategy, "seed") else strategy
        rejected += tradeoff_claim_test(*_runs(1.0, 400, rng), gaussian_tradeoff(1.0),
                                        confidence=0.8, threshold=each).violation
    assert rejected <= binom.ppf(0.999, trials, 0.2)


@pytest.mark.parametrize("strategy", STRATEGIES[:4], ids=lambda strategy: strategy.name)
def test_every_searching_strategy_catches_a_false_claim(strategy: ThresholdStrategy) -> None:
    rng = np.random.default_rng(4)
    result = tradeoff_claim_test(*_runs(3.0, 1000, rng), gaussian_tradeoff(1.0), threshold=strategy)
    assert result.violation
    assert result.threshold_strategy == strategy.to_dict()
    assert result.false_negative_upper < result.allowed_false_negative
