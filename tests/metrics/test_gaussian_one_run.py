"""The one-run bound under the Gaussian assumption: closed forms, validity, the checks, refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import GaussianOneRunBound, MetricsInputError, gaussian_one_run_audit
from auditml.metrics.dp.gdp import gdp_epsilon


def _ideal(mu: float, canaries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ideal mechanism: canary i's observation is N(μ, 1) if included, N(0, 1) if not."""
    rng = np.random.default_rng(seed)
    included = rng.random(canaries) < 0.5
    return rng.normal(size=canaries) + mu * included, included


def _exact_groups(mu: float, per_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic scores: each group the evenly spaced N(·, 1) quantiles, shifted by μ."""
    quantiles = stats.norm.ppf((np.arange(per_group) + 0.5) / per_group)
    scores = np.concatenate([quantiles + mu, quantiles])
    return scores, np.arange(2 * per_group) < per_group


def test_the_statistic_and_the_bound_match_scipy() -> None:
    scores, included = _ideal(0.8, 300, seed=3)
    bound = gaussian_one_run_audit(scores, included, delta=1e-5, confidence=0.9)
    reference = stats.ttest_ind(scores[included], scores[~included], equal_var=True)
    assert bound.t_statistic == pytest.approx(reference.statistic, rel=1e-10)
    # μ_lb / √(1/n₁ + 1/n₀) is the noncentrality at which the observed t is the 90 % quantile.
    scale = math.sqrt(1 / bound.included + 1 / bound.excluded)
    tail = stats.nct.sf(bound.t_statistic, bound.canaries - 2, bound.mu / scale)
    assert tail == pytest.approx(0.1, abs=1e-8)
    assert bound.epsilon == gdp_epsilon(bound.mu, 1e-5)
    assert bound.mu_estimate == pytest.approx(bound.t_statistic * scale)
    assert (bound.included, bound.excluded) == (int(included.sum()), int((~included).sum()))


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0, 4.0])
def test_many_canaries_recover_mu(mu: float) -> None:
    # Exact N(μ, 1) against N(0, 1) quantiles: d/s is μ up to the quantiles' variance (< 1), and
    # the bound is below the estimate by about z · √(4/m) · √(1 + μ²/8).
    scores, included = _exact_groups(mu, 20_000)
    bound = gaussian_one_run_audit(scores, included, delta=1e-5)
    sd = math.sqrt(np.var(scores[~included], ddof=1))
    assert bound.mu_estimate == pytest.approx(mu / sd, rel=1e-9)
    margin = stats.norm.ppf(0.95) * math.sqrt(2 / 20_000) * math.sqrt(1 + mu**2 / 8)
    assert bound.mu == pytest.approx(mu / sd - margin, abs=2e-3)
    assert 0.95 * gdp_epsilon(mu, 1e-5) < bound.epsilon < gdp_epsilon(mu, 1e-5)


@pytest.mark.parametrize("mu", [0.0, 0.5, 1.0, 2.0])
def test_the_bound_fails_at_most_as_often_as_allowed_on_the_ideal_mechanism(mu: float) -> None:
    # 400 audits at 95 %: the failures (μ_lb > μ) are Binomial(400, p) with p <= 0.05 if valid,
    # and the test is exact, so p is 0.05 (not far below: a bound that never failed would be
    # needlessly loose). 3.5 standard deviations either side.
    failures = sum(
        gaussian_one_run_audit(*_ideal(mu, 200, seed), delta=1e-5).mu > mu for seed in range(400)
    )
    assert 5 <= failures <= 35, failures


def test_broken_central_t_would_fail_the_validity_check_at_large_mu() -> None:
    # Why the noncentral t: a central t quantile (λ_lb = t - t_{1-β}) ignores that the
    # statistic's spread grows with λ (√(1 + λ²/2ν)); at μ = 4 it fails ~19 % of the time.
    failures, central_failures = 0, 0
    for seed in range(400):
        scores, included = _ideal(4.0, 200, seed)
        bound = gaussian_one_run_audit(scores, included, delta=1e-5)
        scale = math.sqrt(1 / bound.included + 1 / bound.excluded)
        central = (bound.t_statistic - stats.t.ppf(0.95, bound.canaries - 2)) * scale
        failures += bound.mu > 4.0
        central_failures += central > 4.0
    assert failures <= 35 < central_failures, (failures, central_failures)


def test_a_mechanism_that_leaks_nothing_gives_zero_mostly() -> None:
    scores, included = _ideal(0.0, 1000, seed=0)
    bound = gaussian_one_run_audit(scores, included)
    assert bound.mu == 0.0 and bound.epsilon == 0.0
    # Members scoring lower than non-members prove nothing either (not a negative bound).
    flipped = gaussian_one_run_audit(-_ideal(1.0, 1000, seed=0)[0], _ideal(1.0, 1000, seed=0)[1])
    assert flipped.mu == 0.0 and flipped.t_statistic < -10


def test_the_result_is_labelled_and_json_ready() -> None:
    bound = gaussian_one_run_audit(*_ideal(1.0, 500, seed=1), delta=1e-6, confidence=0.99)
    assert isinstance(bound, GaussianOneRunBound)
    record = bound.to_dict()
    assert record["kind"] == "bound under the Gaussian assumption"
    assert record["confidence"] == 0.99 and record["delta"] == 1e-6
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    assert bound.normality_p == min(bound.normality_p_included, bound.normality_p_excluded)
    assert bound.normality_test == "shapiro_wilk"


def test_the_checks_see_skewed_and_unequal_scores() -> None:
    scores, included = _exact_groups(1.0, 500)
    fine = gaussian_one_run_audit(scores, included)
    assert fine.normality_p > 0.5 and fine.equal_variance_p > 0.5
    rng = np.random.default_rng(0)
    skewed = rng.exponential(size=1000) + included  # a loss-like score: skewed to the right
    assert gaussian_one_run_audit(skewed, included).normality_p < 1e-6
    wider = np.where(included, 3 * scores, scores)  # included scores three times as spread
    checked = gaussian_one_run_audit(wider, included)
    assert checked.equal_variance_p < 1e-6 and checked.normality_p > 0.5
    # Above 5000 scores a group is tested by D'Agostino-Pearson.
    big = gaussian_one_run_audit(*_exact_groups(1.0, 6000))
    assert big.normality_test == "dagostino_pearson" and big.normality_p > 0.5


def test_a_constant_group_is_a_failed_check_not_an_error() -> None:
    scores, included = _exact_groups(1.0, 50)
    scores[included] = 5.0
    bound = gaussian_one_run_audit(scores, included)
    assert bound.normality_p_included == 0.0 and bound.equal_variance_p < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"delta": 0.0}, "`delta`"),
        ({"delta": 1.0}, "`delta`"),
        ({"delta": float("nan")}, "`delta`"),
        ({"confidence": 0.5}, "`confidence`"),
        ({"confidence": 1.0}, "`confidence`"),
        ({"confidence": "0.9"}, "`confidence`"),
        ({"scores": [1.0, 2.0, float("inf"), 0.0, 1.0, 2.0]}, "`scores`"),
        ({"scores": [1.0, 2.0, 3.0]}, "`scores` and `included`"),
        ({"included": [1, 1, 1, 1, 0, 0]}, "`included`"),
        ({"included": [1, 2, 1, 0, 0, 0]}, "`included`"),
        ({"scores": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]}, "`scores`"),
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(kwargs: dict, names: str) -> None:
    call = {"scores": [0.3, 1.2, 2.0, -0.5, 0.1, 0.4], "included": [1, 1, 1, 0, 0, 0], **kwargs}
    with pytest.raises(MetricsInputError, match=names):
        gaussian_one_run_audit(**call)


def test_the_bound_ignores_the_scores_units_down_to_the_floats_limits() -> None:
    scores, included = _ideal(1.0, 400, seed=2)
    bound = gaussian_one_run_audit(scores, included)
    for factor, offset in ((1e-300, 0.0), (1e300, 0.0), (3.0, 1e6), (-1.0, 0.0)):
        moved = gaussian_one_run_audit(factor * scores + offset, included)
        if factor > 0:
            assert moved.mu == pytest.approx(bound.mu, rel=1e-6), (factor, offset)
            assert moved.t_statistic == pytest.approx(bound.t_statistic, rel=1e-6)
        else:
            assert moved.mu == 0.0 and moved.t_statistic == pytest.approx(-bound.t_statistic)


def test_a_huge_separation_gives_a_finite_bound_below_the_estimate() -> None:
    # t ≈ 1e12 is beyond what scipy's noncentral t computes; the bound is taken at t = 1e4,
    # which can only lower it (λ_lb increases with t).
    scores, included = _ideal(0.0, 40, seed=0)
    bound = gaussian_one_run_audit(scores + 1e12 * included, included)
    assert bound.t_statistic > 1e11
    assert math.isfinite(bound.epsilon) and 1000 < bound.mu < bound.mu_estimate
    smaller = gaussian_one_run_audit(scores + 100 * included, included)
    assert smaller.t_statistic < 1e4 and 10 < smaller.mu < bound.mu
