"""auditml.metrics.bootstrap: exactness against direct computation, scipy's BCa, and coverage."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import MetricsInputError, roc_auc, tpr_at_fprs
from auditml.metrics.bootstrap import (
    MembershipIntervals,
    _jackknife,
    _sorted,
    _weighted_statistics,
    mean_membership_intervals,
    membership_intervals,
)


def binormal(mu: float, members: int, nonmembers: int, rng: np.random.Generator,
             decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    scores = np.r_[rng.normal(mu, 1, members), rng.normal(0, 1, nonmembers)]
    if decimals is not None:
        scores = np.round(scores, decimals)  # ties
    return scores, np.r_[np.ones(members, bool), np.zeros(nonmembers, bool)]


FPRS = np.array([0.01, 0.1, 0.5])


@pytest.mark.parametrize("decimals", [None, 1])
def test_weighted_statistics_equal_the_roc_functions_on_the_expanded_sample(
    decimals: int | None,
) -> None:
    rng = np.random.default_rng(1)
    scores, is_member = binormal(0.8, 40, 60, rng, decimals)
    data = _sorted(scores, is_member)
    members, nonmembers = np.sort(scores[is_member]), np.sort(scores[~is_member])
    weights_m = rng.integers(0, 3, size=(5, 40))
    weights_n = rng.integers(0, 3, size=(5, 60))
    weights_n[:, 0] += 1  # never empty
    weights_m[:, 0] += 1
    auc, tprs = _weighted_statistics(data, weights_m, weights_n, FPRS)
    for row in range(5):
        expanded = np.r_[np.repeat(members, weights_m[row]), np.repeat(nonmembers, weights_n[row])]
        labels = np.r_[np.ones(weights_m[row].sum(), bool), np.zeros(weights_n[row].sum(), bool)]
        assert auc[row] == pytest.approx(roc_auc(expanded, labels), abs=1e-12)
        np.testing.assert_allclose(tprs[row], tpr_at_fprs(expanded, labels, FPRS), atol=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])
def test_jackknife_closed_forms_equal_leaving_one_out(decimals: int | None) -> None:
    rng = np.random.default_rng(2)
    scores, is_member = binormal(1.0, 30, 50, rng, decimals)
    data = _sorted(scores, is_member)
    (auc_m, auc_n), (tpr_m, tpr_n) = _jackknife(data, FPRS)
    leave_m = np.ones((30, 30), np.int64) - np.eye(30, dtype=np.int64)
    leave_n = np.ones((50, 50), np.int64) - np.eye(50, dtype=np.int64)
    direct_auc, direct_tpr = _weighted_statistics(data, leave_m, np.ones((30, 50), np.int64), FPRS)
    np.testing.assert_allclose(auc_m, direct_auc, atol=1e-12)
    np.testing.assert_allclose(tpr_m, direct_tpr, atol=1e-12)
    direct_auc, direct_tpr = _weighted_statistics(data, np.ones((50, 30), np.int64), leave_n, FPRS)
    np.testing.assert_allclose(auc_n, direct_auc, atol=1e-12)
    np.testing.assert_allclose(tpr_n, direct_tpr, atol=1e-12)


def test_agrees_with_scipy_bca_on_a_small_case() -> None:
    rng = np.random.default_rng(3)
    scores, is_member = binormal(0.7, 60, 80, rng)
    ours = membership_intervals(scores, is_member, fprs=[0.1], resamples=20_000, seed=4)

    def auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
        return roc_auc(np.r_[members, nonmembers],
                       np.r_[np.ones(len(members)), np.zeros(len(nonmembers))])

    def tpr(members: np.ndarray, nonmembers: np.ndarray) -> float:
        return float(tpr_at_fprs(np.r_[members, nonmembers],
                                 np.r_[np.ones(len(members)), np.zeros(len(nonmembers))], [0.1])[0])

    for statistic, interval, tolerance in ((auc, ours.auc, 0.006),
                                           (tpr, ours.tpr_at_fpr[0.1], 0.017)):
        reference = stats.bootstrap(
            (scores[is_member], scores[~is_member]), statistic, vectorized=False,
            paired=False, n_resamples=20_000, method="BCa", random_state=5,
        ).confidence_interval
        assert interval == pytest.approx((reference.low, reference.high), abs=tolerance)
    # A skewed case (AUC near 1, few examples; bias correction z0 ≈ -0.29): the bias
    # correction and the acceleration are scipy's (checked to fail without the acceleration).
    scores, is_member = binormal(3.0, 20, 20, np.random.default_rng(1))
    ours = membership_intervals(scores, is_member, fprs=[0.1], resamples=20_000, seed=4)
    reference = stats.bootstrap(
        (scores[is_member], scores[~is_member]), auc, vectorized=False, paired=False,
        n_resamples=20_000, method="BCa", random_state=5,
    ).confidence_interval
    assert ours.auc == pytest.approx((reference.low, reference.high), abs=0.006)


def test_coverage_on_the_binormal_model() -> None:
    # Members ~ N(1, 1), non-members ~ N(0, 1): AUC = Φ(1/√2), TPR(f) = Φ(Φ⁻¹(f) + 1).
    # 95 % intervals; 300 repetitions: coverage within 0.95 ± ~3.5 points (3 sd is 3.8).
    rng = np.random.default_rng(6)
    fprs = (0.1, 0.3)
    true_auc = stats.norm.cdf(1 / math.sqrt(2))
    true_tpr = {fpr: stats.norm.cdf(stats.norm.ppf(fpr) + 1) for fpr in fprs}
    repetitions = 300
    covered = {"auc": 0, **{fpr: 0 for fpr in fprs}}
    for repetition in range(repetitions):
        scores, is_member = binormal(1.0, 200, 200, rng)
        intervals = membership_intervals(scores, is_member, fprs=fprs, resamples=1000,
                                         seed=repetition)
        covered["auc"] += intervals.auc[0] <= true_auc <= intervals.auc[1]
        for fpr in fprs:
            low, high = intervals.tpr_at_fpr[fpr]
            covered[fpr] += low <= true_tpr[fpr] <= high
    for name, count in covered.items():
        assert abs(count / repetitions - 0.95) <= 0.04, (name, count / repetitions)


def test_intervals_surround_the_estimate_and_round_trip() -> None:
    rng = np.random.default_rng(7)
    scores, is_member = binormal(0.5, 300, 400, rng)
    intervals = membership_intervals(scores, is_member, seed=1)
    auc = roc_auc(scores, is_member)
    assert intervals.auc[0] < auc < intervals.auc[1]
    assert intervals.auc[1] - intervals.auc[0] < 0.1
    assert intervals == membership_intervals(scores, is_member, seed=1)  # seeded
    assert intervals != membership_intervals(scores, is_member, seed=2)
    record = json.loads(json.dumps(intervals.to_dict(), allow_nan=False))
    assert MembershipIntervals.from_dict(record) == intervals
    assert set(intervals.tpr_at_fpr) == {0.001, 0.01, 0.1}
    # Perfect separation: every resample has AUC 1 and TPR 1; the interval is the point.
    separated = membership_intervals(np.r_[np.ones(20), np.zeros(20)],
                                     np.r_[np.ones(20), np.zeros(20)], resamples=50)
    assert separated.auc == (1.0, 1.0) and separated.tpr_at_fpr[0.1] == (1.0, 1.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"confidence": 1.0}, "`confidence` must be in (0, 1), got 1.0."),
        ({"resamples": 5}, "`resamples` must be an integer in [10, 1e6], got 5."),
        ({"seed": -1}, "`seed` must be a non-negative integer, got -1."),
        ({"fprs": [1.5]}, "`fprs` must be in [0, 1], got 1.5."),
    ],
)
def test_invalid_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        membership_intervals([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], **settings)  # type: ignore[arg-type]
    with pytest.raises(MetricsInputError, match="at least 2 members and 2 non-members"):
        membership_intervals([0.1, 0.2, 0.3], [0, 1, 1])
    with pytest.raises(MetricsInputError, match="must be 0 <= low <= high <= 1"):
        MembershipIntervals.from_dict({"auc": [0.7, 0.6], "tpr_at_fpr": {}, "confidence": 0.95,
                                       "resamples": 10, "seed": 0})


def test_tpr_where_fpr_times_the_total_rounds_across_an_integer() -> None:
    # 0.29 * 100 is 28.999999999999996 and 0.57 * 100 is 56.99999999999999: the flagged count
    # allowed is the largest d with d / total <= f (29 and 57), not floor(f * total).
    # Members and non-members alternate, so every flagged non-member more finds one more member.
    members, nonmembers = np.arange(100) + 0.5, np.arange(100.0)
    scores, is_member = np.r_[members, nonmembers], np.r_[np.ones(100, bool), np.zeros(100, bool)]
    data = _sorted(scores, is_member)
    fprs = np.array([0.07, 0.29, 0.57])
    _, tprs = _weighted_statistics(
        data, np.ones((1, 100), np.int64), np.ones((1, 100), np.int64), fprs
    )
    expected = tpr_at_fprs(scores, is_member, fprs)
    np.testing.assert_array_equal(tprs[0], expected)


def test_intervals_are_those_of_the_reference_implementation() -> None:
    # Pinned from the first implementation (before the per-row binary search and tail sums):
    # faster code must give the same floats, bit for bit, from the same resamples.
    rng = np.random.default_rng(7)
    is_member = np.arange(4000) % 2 == 0
    scores = np.round(rng.normal(size=4000) + 0.3 * is_member, 2)
    intervals = membership_intervals(scores, is_member, fprs=(0.001, 0.01, 0.1), seed=3)
    assert intervals.auc == (0.593977845369025, 0.6280784469729682)
    assert intervals.tpr_at_fpr == {
        0.001: (0.0, 0.01), 0.01: (0.0115, 0.0335), 0.1: (0.17143616536509462, 0.2255)
    }


def test_the_mean_over_runs_agrees_with_scipy_bca_on_the_runs_samples() -> None:
    # Two runs of different strength and size: four samples (each run's members and
    # non-members), the statistic the mean of the two runs' AUCs (or TPRs).
    rng = np.random.default_rng(8)
    runs = [binormal(0.4, 50, 70, rng), binormal(1.2, 40, 60, rng)]
    ours = mean_membership_intervals(runs, fprs=[0.1], resamples=20_000, seed=4)

    def mean_of(metric):  # type: ignore[no-untyped-def]
        def statistic(m1: np.ndarray, n1: np.ndarray, m2: np.ndarray, n2: np.ndarray) -> float:
            return float(np.mean([metric(np.r_[m, n], np.r_[np.ones(len(m)), np.zeros(len(n))])
                                  for m, n in ((m1, n1), (m2, n2))]))
        return statistic

    samples = tuple(part for scores, is_member in runs
                    for part in (scores[is_member], scores[~is_member]))
    estimates = {"auc": np.mean([roc_auc(*run) for run in runs]),
                 "tpr": np.mean([tpr_at_fprs(*run, [0.1])[0] for run in runs])}
    for name, metric, interval, tolerance in (
        ("auc", roc_auc, ours.auc, 0.006),
        ("tpr", lambda s, m: tpr_at_fprs(s, m, [0.1])[0], ours.tpr_at_fpr[0.1], 0.017),
    ):
        reference = stats.bootstrap(
            samples, mean_of(metric), vectorized=False, paired=False, n_resamples=20_000,
            method="BCa", random_state=5,
        ).confidence_interval
        assert interval == pytest.approx((reference.low, reference.high), abs=tolerance), name
        assert interval[0] <= estimates[name] <= interval[1], name
    # Narrower than either run's own interval: the mean averages two runs' noise.
    for run in runs:
        alone = membership_intervals(*run, fprs=[0.1], resamples=20_000, seed=4)
        assert ours.auc[1] - ours.auc[0] < alone.auc[1] - alone.auc[0]


def test_one_run_is_membership_intervals_and_runs_are_checked() -> None:
    scores, is_member = binormal(0.5, 30, 40, np.random.default_rng(9))
    assert mean_membership_intervals([(scores, is_member)], seed=2) == membership_intervals(
        scores, is_member, seed=2)
    # The same run twice: the same estimate, a narrower interval (its noise averaged twice).
    twice = mean_membership_intervals([(scores, is_member)] * 2, seed=2)
    once = membership_intervals(scores, is_member, seed=2)
    assert twice.auc[1] - twice.auc[0] < once.auc[1] - once.auc[0]
    with pytest.raises(MetricsInputError, match="non-empty sequence"):
        mean_membership_intervals([])
    with pytest.raises(MetricsInputError, match=r"\(scores, is_member\) pair"):
        mean_membership_intervals([(scores, is_member, scores)])  # type: ignore[list-item]
    with pytest.raises(MetricsInputError, match="at least 2 members and 2 non-members"):
        mean_membership_intervals([(scores, is_member), ([0.1, 0.2, 0.3], [0, 1, 1])])
