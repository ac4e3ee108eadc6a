"""Beyond noise or not: Clopper-Pearson bounds against scipy, and each test's error rate under its
null hypothesis, simulated with the same threshold rule as tpr_at_fpr."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import MetricsInputError, tpr_at_fprs
from auditml.metrics.noise import (
    clopper_pearson_lower,
    clopper_pearson_upper,
    leakiest_beyond_noise,
    tpr_above_chance,
    tpr_exceeds,
)


@pytest.mark.parametrize(("count", "trials"), [(0, 10), (1, 10), (7, 10), (10, 10), (3, 300)])
def test_bounds_are_scipy_s_exact_interval(count: int, trials: int) -> None:
    # A two-sided exact interval at 1 − 2·level is the two one-sided bounds at level each.
    interval = stats.binomtest(count, trials).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson_lower(count, trials, 0.025) == pytest.approx(interval.low, abs=1e-12)
    assert clopper_pearson_upper(count, trials, 0.025) == pytest.approx(interval.high, abs=1e-12)


def test_the_reported_case_is_within_noise() -> None:
    # The issue: TPR@1%FPR of 0.67% and 1.33% on 300 members and 300 non-members, AUC ≈ 0.5.
    assert not tpr_above_chance(2 / 300, 0.01, 300, 300)
    assert not tpr_above_chance(4 / 300, 0.01, 300, 300)
    assert not tpr_exceeds(4 / 300, 300, 300, 2 / 300, 300, 300, fpr=0.01)
    assert leakiest_beyond_noise([2 / 300, 4 / 300], 0.01, [300, 300], [300, 300]) is None


def test_a_clear_leak_is_beyond_noise_and_named() -> None:
    # 3 of 300 non-members allowed: the FPR's upper bound is Beta(4, 297)'s 97.5% quantile.
    upper = stats.beta.ppf(0.975, 4, 297)
    needed = next(k for k in range(301) if stats.beta.ppf(0.025, k, 301 - k) > upper)
    assert tpr_above_chance(needed / 300, 0.01, 300, 300)
    assert not tpr_above_chance((needed - 1) / 300, 0.01, 300, 300)
    assert leakiest_beyond_noise([0.01, 0.9, 0.02], 0.01, [300] * 3, [300] * 3) == 1
    # Both beyond chance, but not beyond noise of each other: no leakiest. Nor 50% against 2%
    # with 300 non-members: the thresholds' true FPRs are anywhere from 0.3% to 3%.
    assert leakiest_beyond_noise([0.5, 0.52], 0.01, [300, 300], [300, 300]) is None
    assert leakiest_beyond_noise([0.5, 0.02], 0.01, [300, 300], [300, 300]) is None
    assert leakiest_beyond_noise([0.5, 0.02], 0.01, [3000, 3000], [3000, 3000]) == 0


def _null_tprs(rng: np.random.Generator, trials: int, members: int, nonmembers: int,
               shift: float = 0.0) -> np.ndarray:
    is_member = np.concatenate([np.ones(members, bool), np.zeros(nonmembers, bool)])
    found = np.empty(trials)
    for trial in range(trials):
        scores = rng.standard_normal(members + nonmembers) + shift * is_member
        found[trial] = tpr_at_fprs(scores, is_member, [0.01])[0]
    return found


def test_an_attack_at_chance_is_called_beyond_chance_at_most_alpha_of_the_time() -> None:
    rng = np.random.default_rng(0)
    tprs = _null_tprs(rng, 2000, 200, 150)
    rejected = np.mean([tpr_above_chance(tpr, 0.01, 200, 150, confidence=0.8) for tpr in tprs])
    # At alpha = 0.2 the test must reject at most 20% (+ simulation error) of chance attacks.
    assert rejected <= 0.2 + 3 * np.sqrt(0.2 * 0.8 / 2000)


def _exceeds(first: np.ndarray, second: np.ndarray, count: int, confidence: float = 0.95) -> float:
    return float(np.mean([
        tpr_exceeds(a, count, count, b, count, count, fpr=0.01, confidence=confidence)
        for a, b in zip(first, second, strict=True)
    ]))


@pytest.mark.parametrize("shift", [0.0, 1.0, 2.0])
def test_a_run_is_called_leakier_than_an_equal_one_at_most_alpha_of_the_time(
    shift: float,
) -> None:
    # Gaussian scores: the ROC curve of a likelihood-ratio test, concave as assumed.
    rng = np.random.default_rng(1)
    first, second = (_null_tprs(rng, 1000, 200, 200, shift=shift) for _ in range(2))
    assert _exceeds(first, second, 200, confidence=0.8) <= 0.2 + 3 * np.sqrt(0.2 * 0.8 / 1000)


def test_comparing_runs_has_power_where_they_differ_a_lot() -> None:
    rng = np.random.default_rng(2)
    leaky, private = _null_tprs(rng, 100, 1000, 1000, shift=3.0), _null_tprs(rng, 100, 1000, 1000)
    assert _exceeds(leaky, private, 1000) > 0.9
    assert _exceeds(private, leaky, 1000) == 0


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(MetricsInputError, match="`members`"):
        tpr_above_chance(0.1, 0.01, 0, 100)
    with pytest.raises(MetricsInputError, match="`fpr`"):
        tpr_above_chance(0.1, 0.0, 100, 100)
    with pytest.raises(MetricsInputError, match="`tpr`"):
        tpr_exceeds(1.5, 100, 100, 0.1, 100, 100, fpr=0.01)
    with pytest.raises(MetricsInputError, match="`other_nonmembers`"):
        tpr_exceeds(0.5, 100, 100, 0.1, 100, 0, fpr=0.01)
    with pytest.raises(MetricsInputError, match="one entry per audit"):
        leakiest_beyond_noise([0.1], 0.01, [100, 100], [100])
