"""auditml.metrics.dp.gdp: hand values, the reference's tight test, validity by simulation."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import (
    GaussianDPEstimate,
    GaussianDPLowerBound,
    MetricsInputError,
    gdp_epsilon,
    gdp_epsilon_estimate,
    gdp_lower_bound,
)


def gaussian_true_epsilon(mu: float, delta: float) -> float:
    """ε of the Gaussian mechanism with μ = sensitivity / σ (Balle and Wang 2018), by bisection."""
    low, high = 0.0, 100.0
    if stats.norm.cdf(mu / 2) - stats.norm.cdf(-mu / 2) <= delta:
        return 0.0
    for _ in range(200):
        middle = (low + high) / 2
        left = stats.norm.cdf(-middle / mu + mu / 2)
        right = math.exp(middle) * stats.norm.cdf(-middle / mu - mu / 2)
        low, high = (middle, high) if left - right > delta else (low, middle)
    return (low + high) / 2


def labelled(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    return np.r_[members, nonmembers], is_member


def naive_mu_bound(scores: np.ndarray, is_member: np.ndarray, alpha: float) -> float:
    """Every distinct score as threshold, exact scipy Clopper-Pearson bounds, no table."""
    members, nonmembers = int(is_member.sum()), int((~is_member).sum())
    best = -math.inf
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        false_positives = int(flagged[~is_member].sum())
        false_negatives = int((~flagged[is_member]).sum())
        fpr = 1.0 if false_positives == nonmembers else stats.beta.isf(
            alpha / (2 * nonmembers), false_positives + 1, nonmembers - false_positives
        )
        fnr = 1.0 if false_negatives == members else stats.beta.isf(
            alpha / (2 * members), false_negatives + 1, members - false_negatives
        )
        best = max(best, stats.norm.isf(fpr) - stats.norm.ppf(fnr))
    return max(best, 0.0)


# --- the conversion ---------------------------------------------------------------------------


def test_gdp_epsilon_hand_values() -> None:
    assert gdp_epsilon(1.0, 1e-5) == pytest.approx(gaussian_true_epsilon(1.0, 1e-5), rel=1e-9)
    assert 4.3 < gdp_epsilon(1.0, 1e-5) < 4.45  # ≈ 4.377 for σ = 1 at δ = 1e-5
    assert gdp_epsilon(3.0, 0.05) == pytest.approx(gaussian_true_epsilon(3.0, 0.05), rel=1e-9)
    assert gdp_epsilon(-0.3, 1e-5) == 0.0
    assert gdp_epsilon(0.2, 0.5) == 0.0  # δ(0) = 2Φ(0.1) - 1 ≈ 0.08 <= 0.5


# --- the lower bound --------------------------------------------------------------------------


def test_lower_bound_hand_value_at_perfect_separation() -> None:
    # 20 members above 20 non-members: the best threshold has 0 of 20 errors on both sides, and
    # the Clopper-Pearson bound for 0 of n at level a is 1 - a^(1/n), a = 0.05 / (2 * 20).
    scores, is_member = labelled(np.arange(20) + 100.0, np.arange(20.0))
    bound = gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.95)
    rate = 1 - (0.05 / 40) ** (1 / 20)
    assert bound.mu == pytest.approx(-2 * stats.norm.ppf(rate), rel=1e-9)
    assert bound.epsilon == pytest.approx(gaussian_true_epsilon(bound.mu, 1e-5), rel=1e-6)
    assert (bound.false_positives, bound.false_negatives, bound.threshold) == (0, 0, 100.0)
    assert (bound.negatives, bound.positives, bound.alpha) == (20, 20, 0.05)


@pytest.mark.parametrize(("mu", "members", "nonmembers"), [(1.0, 300, 200), (3.0, 150, 400)])
def test_lower_bound_equals_the_naive_loop(mu: float, members: int, nonmembers: int) -> None:
    rng = np.random.default_rng(int(mu * 10))
    scores, is_member = labelled(
        np.round(rng.normal(mu, 1, members), 1), np.round(rng.normal(0, 1, nonmembers), 1)
    )  # rounded: ties too
    bound = gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.9)
    assert bound.mu == pytest.approx(naive_mu_bound(scores, is_member, 0.1), rel=1e-9)
    assert bound.mu > 0


def test_lower_bound_table_is_conservative_beyond_exact_counts() -> None:
    # 3,000 per class: counts above 1,000 are rounded up to the table; never above the naive max.
    rng = np.random.default_rng(5)
    scores, is_member = labelled(rng.normal(0.5, 1, 3000), rng.normal(0, 1, 3000))
    naive = naive_mu_bound(scores, is_member, 0.05)
    bound = gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.95).mu
    assert 0.99 * naive <= bound <= naive + 1e-12


@pytest.mark.parametrize("mu", [0.1, 0.3, 1.0, 3.0])
@pytest.mark.parametrize("out_samples_ratio", [0.5, 1.0, 1.5])
def test_epsilon_from_gdp_tight(mu: float, out_samples_ratio: float) -> None:
    # jax_privacy's test_epsilon_from_gdp_tight, translated: 5e5 members ~ N(μ, 1), 5e5 * ratio
    # non-members ~ N(0, 1), significance 0.1, δ = 0.05, within 5 % of the true ε. At μ = 0.3
    # (ε ≈ 0.2, where δ(0) ≈ 0.12 is close to δ, so ε moves fast with μ) no lower bound at this
    # confidence gets within 5 %: jax_privacy's own method on these draws gives 0.183 (-8 %),
    # this one 0.177-0.184 (-8 to -11 %); there the tolerance is 12 %.
    rng = np.random.default_rng(seed=0xBAD5EED)
    in_samples = 500_000
    members = rng.normal(mu, 1, in_samples)
    nonmembers = rng.normal(0, 1, int(in_samples * out_samples_ratio))
    bound = gdp_lower_bound(*labelled(members, nonmembers), delta=5e-2, confidence=0.9)
    true_epsilon = gaussian_true_epsilon(mu, 5e-2)
    assert bound.epsilon == pytest.approx(true_epsilon, rel=0.12 if mu == 0.3 else 0.05)
    assert bound.epsilon <= true_epsilon


@pytest.mark.parametrize("mu", [0.0, -1.0, -3.0])
def test_epsilon_from_gdp_non_positive_mu_is_zero(mu: float) -> None:
    rng = np.random.default_rng(seed=0xBAD5EED)
    scores, is_member = labelled(rng.normal(mu, 1, 5000), rng.normal(0, 1, 5000))
    bound = gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.95)
    assert bound.epsilon == 0.0 and bound.mu == 0.0


@pytest.mark.parametrize(("mu", "alpha"), [(0.0, 0.2), (0.5, 0.2), (2.0, 0.2)])
def test_lower_bound_is_valid_on_the_gaussian_mechanism(mu: float, alpha: float) -> None:
    # The μ bound exceeds the true μ (and so ε the true ε) with probability <= alpha. Checked
    # to fail without the union bound over the counts (level alpha / 2 at every threshold fails
    # in 30-39 % of these trials).
    rng = np.random.default_rng(int(mu * 100) + 7)
    trials, failures, positive = 200, 0, 0
    for _ in range(trials):
        scores, is_member = labelled(rng.normal(mu, 1, 300), rng.normal(0, 1, 300))
        bound = gdp_lower_bound(scores, is_member, delta=1e-3, confidence=1 - alpha)
        failures += bound.mu > mu
        positive += bound.epsilon > 0
        assert bound.epsilon <= gaussian_true_epsilon(mu, 1e-3) + 1e-9 or bound.mu > mu
    # Binomial(200, 0.2) exceeds its mean + 3 standard deviations with probability ~0.2 %.
    assert failures <= alpha * trials + 3 * math.sqrt(trials * alpha * (1 - alpha))
    if mu == 0.0:  # null data: ε > 0 is a failure, at the same rate
        assert positive == failures
    if mu == 2.0:  # and the bound has power: not 0 on a strong signal
        assert positive > 0.9 * trials


# --- the estimate ------------------------------------------------------------------------------


@pytest.mark.parametrize("mu", [0.5, 1.0, 3.0])
def test_estimate_is_close_on_the_tight_data(mu: float) -> None:
    rng = np.random.default_rng(seed=0xBAD5EED)
    scores, is_member = labelled(rng.normal(mu, 1, 500_000), rng.normal(0, 1, 500_000))
    estimate = gdp_epsilon_estimate(scores, is_member, delta=5e-2)
    assert estimate.mu == pytest.approx(mu, rel=0.02)
    assert estimate.epsilon == pytest.approx(gaussian_true_epsilon(mu, 5e-2), rel=0.05)
    assert estimate.auc == pytest.approx(stats.norm.cdf(mu / math.sqrt(2)), abs=1e-3)
    assert estimate.method == "auc" and "not a bound" in estimate.note


def test_estimate_on_null_data_is_above_zero_about_half_the_time() -> None:
    rng = np.random.default_rng(3)
    above = sum(
        gdp_epsilon_estimate(
            *labelled(rng.normal(0, 1, 500), rng.normal(0, 1, 500)), delta=1e-5
        ).epsilon > 0
        for _ in range(200)
    )
    assert 70 <= above <= 130  # Binomial(200, 1/2) ± 4 sd


def test_estimate_hand_values() -> None:
    # Members below non-members: AUC 0, clipped to 1/(2 * 100 * 100); μ < 0 and ε = 0.
    reversed_estimate = gdp_epsilon_estimate(np.r_[np.zeros(100), np.ones(100)],
                                             np.r_[np.ones(100), np.zeros(100)], delta=1e-5)
    assert reversed_estimate.mu == pytest.approx(math.sqrt(2) * stats.norm.ppf(1 / 20_000))
    assert reversed_estimate.epsilon == 0.0 and reversed_estimate.auc == 0.0
    separated = gdp_epsilon_estimate(np.r_[np.ones(100), np.zeros(100)],
                                     np.r_[np.ones(100), np.zeros(100)], delta=1e-5)
    assert separated.mu == pytest.approx(math.sqrt(2) * stats.norm.isf(1 / 20_000))
    assert math.isfinite(separated.epsilon) and separated.epsilon > 0
    # AUC by hand: 4 + 4 + 2 + 1 of 16 pairs, μ = √2 Φ⁻¹(11/16).
    estimate = gdp_epsilon_estimate([4, 3, 1, 0, 2, 1.5, 0.5, -1], [1, 1, 1, 1, 0, 0, 0, 0],
                                    delta=1e-5)
    assert estimate.auc == 11 / 16
    assert estimate.mu == pytest.approx(math.sqrt(2) * stats.norm.ppf(11 / 16), rel=1e-12)


def test_results_serialise_and_inputs_are_checked() -> None:
    rng = np.random.default_rng(0)
    scores, is_member = labelled(rng.normal(1, 1, 200), rng.normal(0, 1, 200))
    for result in (gdp_lower_bound(scores, is_member, delta=1e-5),
                   gdp_epsilon_estimate(scores, is_member, delta=1e-5)):
        assert isinstance(result, (GaussianDPLowerBound, GaussianDPEstimate))
        assert json.loads(json.dumps(result.to_dict(), allow_nan=False)) == result.to_dict()
    with pytest.raises(MetricsInputError, match=re.escape("`delta` must be in (0, 1)")):
        gdp_epsilon_estimate(scores, is_member, delta=0.0)
    with pytest.raises(MetricsInputError, match=re.escape("`confidence` must be in (0.5, 1)")):
        gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.3)
    # The knob is `confidence`, as in every bound; `alpha` is its deprecated old name.
    with pytest.warns(DeprecationWarning, match="confidence=1 - alpha"):
        old = gdp_lower_bound(scores, is_member, delta=1e-5, alpha=0.1)
    assert old == gdp_lower_bound(scores, is_member, delta=1e-5, confidence=0.9)
    with pytest.raises(MetricsInputError, match="not both"):
        gdp_lower_bound(scores, is_member, delta=1e-5, alpha=0.1, confidence=0.9)
    with pytest.raises(MetricsInputError, match="at least one member"):
        gdp_lower_bound([0.1, 0.2], [1, 1], delta=1e-5)


def test_gdp_epsilon_checks_its_arguments() -> None:
    with pytest.raises(MetricsInputError, match=re.escape("`mu` must be a finite number, got nan")):
        gdp_epsilon(float("nan"), 1e-5)
    with pytest.raises(MetricsInputError, match=re.escape("`delta` must be in (0, 1)")):
        gdp_epsilon(1.0, 1.0)


def test_the_estimates_interval_is_the_auc_interval_mapped_through_the_estimate() -> None:
    """BCa respects monotone maps (Efron 1987): ε̂'s interval is ε̂ at the AUC interval's ends,
    it holds ε̂ whenever the AUC interval holds the AUC, and μ <= 0 maps to 0."""
    from auditml.metrics import gdp_estimate_interval, membership_intervals

    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)]
    is_member = np.r_[np.ones(400, bool), np.zeros(400, bool)]
    estimate = gdp_epsilon_estimate(scores, is_member, delta=1e-5)
    auc_interval = membership_intervals(scores, is_member, resamples=400, seed=0).auc
    low, high = gdp_estimate_interval(auc_interval, 400, 400, delta=1e-5)
    assert low <= estimate.epsilon <= high
    expected_high = gdp_epsilon(math.sqrt(2) * float(stats.norm.ppf(auc_interval[1])), 1e-5)
    assert high == pytest.approx(expected_high, rel=1e-12)
    assert gdp_estimate_interval((0.3, 0.5), 400, 400, delta=1e-5) == (0.0, 0.0)
    with pytest.raises(MetricsInputError, match="auc_interval"):
        gdp_estimate_interval((0.7, 0.6), 400, 400, delta=1e-5)


def test_gdp_epsilon_of_a_huge_mu_is_finite() -> None:
    # μ = 1e30 (found by the API fuzz): rounding in the log of e^ε Φ(-ε/μ - μ/2), two ~1e59
    # terms, used to overflow math.exp; ε is about μ²/2 there.
    for mu in (1e30, 1e10):
        assert gdp_epsilon(mu, 1e-5) == pytest.approx(mu**2 / 2, rel=1e-6)
