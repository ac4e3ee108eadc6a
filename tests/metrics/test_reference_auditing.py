"""Google jax_privacy's auditing tests of the ε lower bound, translated to auditml's API.

jax_privacy (``jax_privacy/auditing.py``, ``CanaryScoreAuditor.epsilon_clopper_pearson``) takes
in- and out-scores, a significance and a threshold strategy; here the same cases go through
:func:`auditml.metrics.epsilon_lower_bound` with ``confidence = 1 - significance`` and the
strategies of :mod:`auditml.metrics.dp.thresholds`. auditml's bound always takes the better of the
two tails (their ``one_sided=False``); the one-sided bound is never larger, so the tightness
tolerances are at least as hard here.

Scores are deterministic normal quantiles, as theirs are, so the tightness cases do not depend on
a random draw. The true ε of separation μ is that of the Gaussian mechanism with σ = 1/μ (Balle
and Wang 2018), computed here from its closed form with scipy, independently of auditml.

The validity simulations (the last section) are auditml's own: for every strategy, random draws
from a mechanism whose curve is known; the rate of "bound > true ε" is compared with
1 - confidence.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from auditml.metrics import epsilon_lower_bound
from auditml.metrics.dp.thresholds import (
    BonferroniAllScores,
    BonferroniHull,
    Explicit,
    MultiSplit,
    Split,
    ThresholdStrategy,
    stratified_split,
)


def deterministic_normal(mu: float, n: int) -> np.ndarray:
    """The n quantiles of N(mu, 1) at (i + 1/2) / n."""
    return stats.norm.ppf((np.arange(n) + 0.5) / n) + mu


def gaussian_epsilon(mu: float, delta: float) -> float:
    """ε at δ of the Gaussian mechanism with sensitivity 1 and σ = 1/μ (0 when μ = 0)."""
    if mu == 0:
        return 0.0

    def excess(epsilon: float) -> float:
        return float(special.ndtr(-epsilon / mu + mu / 2)
                     - math.exp(epsilon) * special.ndtr(-epsilon / mu - mu / 2) - delta)

    return 0.0 if excess(0.0) <= 0 else float(optimize.brentq(excess, 0.0, 100.0, xtol=1e-12))


def in_out(mu: float, members: int, nonmembers: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate(
        [deterministic_normal(mu, members), deterministic_normal(0, nonmembers)])
    is_member = np.concatenate([np.ones(members, bool), np.zeros(nonmembers, bool)])
    return scores, is_member


def assert_tight(strategy: ThresholdStrategy, mu: float, members: int, ratio: float,
                 significance: float, tolerance: float) -> None:
    scores, is_member = in_out(mu, members, int(members * ratio))
    bound = epsilon_lower_bound(scores, is_member, delta=0.1, confidence=1 - significance,
                                threshold=strategy).epsilon
    true_epsilon = gaussian_epsilon(mu, 0.1)
    assert bound < true_epsilon
    assert bound == pytest.approx(true_epsilon, rel=tolerance)


# --- test_epsilon_clopper_pearson_tight -------------------------------------------------------


@pytest.mark.parametrize("strategy", [BonferroniHull(), Split(seed=0)], ids=["hull", "split"])
def test_tight_at_the_issue_s_case(strategy: ThresholdStrategy) -> None:
    # 2e6 + 2e6 scores, μ = 0.3, significance 0.2, δ = 0.1: within 20 % of ε = 0.0458. The
    # all-scores Bonferroni gives 0.0362 here (21 % below), the hull 0.0383, the split 0.0423.
    assert_tight(strategy, 0.3, 2_000_000, 1.0, 0.2, 0.2)


def test_the_all_scores_bonferroni_is_not_tight_at_the_issue_s_case() -> None:
    # What issue 26 measured, kept as a figure: the level divided by 4e6 candidates costs 21 %.
    scores, is_member = in_out(0.3, 2_000_000, 2_000_000)
    bound = epsilon_lower_bound(scores, is_member, delta=0.1, confidence=0.8,
                                threshold=BonferroniAllScores()).epsilon
    assert bound < 0.8 * gaussian_epsilon(0.3, 0.1)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("mu", [1.0, 1.5])
@pytest.mark.parametrize("strategy", [BonferroniHull(), Split(seed=0)], ids=["hull", "split"])
def test_tight_scaled_down(strategy: ThresholdStrategy, mu: float, ratio: float) -> None:
    # Their grid at a tenth of the size (2e5 members), same tolerance.
    assert_tight(strategy, mu, 200_000, ratio, 0.2, 0.2)


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("mu", [0.3, 1.0, 1.5])
@pytest.mark.parametrize("strategy", [BonferroniHull(), Split(seed=0)], ids=["hull", "split"])
def test_tight_full_size(strategy: ThresholdStrategy, mu: float, ratio: float) -> None:
    # Their whole grid at their size: 2e6 members (about 40 s in all on two cores).
    assert_tight(strategy, mu, 2_000_000, ratio, 0.2, 0.2)


# --- test_epsilon_clopper_pearson_tight_multi_split -------------------------------------------


def test_multi_split_tight() -> None:
    # Their case μ = 1, equal sizes, at a fifth of their 1e5 members; 100 splits, significance 0.1.
    assert_tight(MultiSplit(seed=0), 1.0, 20_000, 1.0, 0.1, 0.2)


@pytest.mark.slow
@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("mu", [0.7, 1.0, 1.5])
def test_multi_split_tight_full_size(mu: float, ratio: float) -> None:
    assert_tight(MultiSplit(seed=0), mu, 100_000, ratio, 0.1, 0.2)


# --- test_epsilon_clopper_pearson_explicit: the hand values -----------------------------------


def hand_bound(members: np.ndarray, nonmembers: np.ndarray, threshold: float,
               significance: float, delta: float = 0.0) -> float:
    """The Clopper-Pearson bound at one threshold from scipy's Beta quantiles, both tails."""
    fn, fp = int(np.sum(members < threshold)), int(np.sum(nonmembers >= threshold))

    def upper(count: int, trials: int) -> float:
        return 1.0 if count == trials else float(
            stats.beta.ppf(1 - significance / 2, count + 1, trials - count))

    fnr, fpr = upper(fn, len(members)), upper(fp, len(nonmembers))
    terms = [math.log(1 - delta - fnr) - math.log(fpr) if 1 - delta - fnr > 0 else -math.inf,
             math.log(1 - delta - fpr) - math.log(fnr) if 1 - delta - fpr > 0 else -math.inf]
    return max(0.0, *terms)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("ratio", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("members", [100, 1000])
def test_explicit_threshold_matches_the_hand_formula(
    members: int, ratio: float, threshold: float
) -> None:
    member_scores = deterministic_normal(1, members)
    nonmember_scores = deterministic_normal(0, int(members * ratio))
    scores = np.concatenate([member_scores, nonmember_scores])
    is_member = np.arange(len(scores)) < members
    bound = epsilon_lower_bound(scores, is_member, confidence=0.9,
                                threshold=Explicit(threshold=threshold))
    expected = hand_bound(member_scores, nonmember_scores, threshold, 0.1)
    assert bound.epsilon == pytest.approx(expected, rel=1e-9)
    assert bound.threshold == threshold and bound.threshold_policy == "explicit"
    assert (bound.positives, bound.negatives) == (members, int(members * ratio))


# --- Split and MultiSplit behaviour -----------------------------------------------------------


def test_split_bounds_on_the_evaluation_part_at_the_chosen_threshold() -> None:
    rng = np.random.default_rng(11)
    scores = np.concatenate([rng.normal(1.5, 1, 400), rng.normal(0, 1, 600)])
    is_member = np.arange(1000) < 400
    bound = epsilon_lower_bound(scores, is_member, delta=1e-5, confidence=0.95,
                                threshold=Split(fraction=0.3, seed=4))
    choice, evaluation = stratified_split(is_member, 0.3, 4)
    # The threshold is a calibration score, and the bound is the one at it on the rest.
    assert bound.threshold in set(scores[choice].tolist())
    evaluated_members = scores[evaluation][is_member[evaluation]]
    evaluated_nonmembers = scores[evaluation][~is_member[evaluation]]
    assert (bound.positives, bound.negatives) == (280, 420)
    assert bound.epsilon == pytest.approx(
        hand_bound(evaluated_members, evaluated_nonmembers, bound.threshold, 0.05, 1e-5),
        rel=1e-9)
    # The best threshold on the calibration part: no calibration score does better there.
    chosen = hand_bound(scores[choice][is_member[choice]], scores[choice][~is_member[choice]],
                        bound.threshold, 0.05, 1e-5)
    assert all(chosen >= hand_bound(scores[choice][is_member[choice]],
                                    scores[choice][~is_member[choice]], t, 0.05, 1e-5) - 1e-12
               for t in np.unique(scores[choice]))


def test_multi_split_reports_the_upper_median_of_split_bounds_at_half_the_level() -> None:
    rng = np.random.default_rng(12)
    scores = np.concatenate([rng.normal(1.0, 1, 300), rng.normal(0, 1, 300)])
    is_member = np.arange(600) < 300
    splits = 9
    bound = epsilon_lower_bound(scores, is_member, delta=1e-5, confidence=0.9,
                                threshold=MultiSplit(splits=splits, seed=3))
    seeds = np.random.default_rng(3).integers(0, np.iinfo(np.int64).max, size=splits)
    singles = sorted(
        (epsilon_lower_bound(scores, is_member, delta=1e-5, confidence=0.95,
                             threshold=Split(seed=int(seed))).epsilon for seed in seeds),
        reverse=True)
    assert len(set(singles)) > 3  # the splits differ, so the median is a real choice
    assert bound.epsilon == singles[math.ceil(splits / 2) - 1]
    assert bound.threshold_strategy == {"name": "multi_split", "splits": 9, "fraction": 0.5,
                                        "seed": 3}


def test_the_record_names_the_strategy_and_its_candidates() -> None:
    scores, is_member = in_out(1.0, 500, 500)
    hull = epsilon_lower_bound(scores, is_member, delta=1e-5)
    everything = epsilon_lower_bound(scores, is_member, delta=1e-5,
                                     threshold=BonferroniAllScores())
    assert hull.threshold_policy == "bonferroni_hull"
    assert hull.to_dict()["threshold_strategy"] == {"name": "bonferroni_hull"}
    assert everything.candidates == 999
    assert hull.candidates is not None and 1 <= hull.candidates < 100
    # Fewer candidates, a larger level each: the hull's bound is the stronger.
    assert hull.epsilon > everything.epsilon > 0


# --- validity on mechanisms with a known curve ------------------------------------------------

TRIALS = 200
SIGNIFICANCE = 0.2  # large, so that the failure rate is measurable in a few hundred trials


def failures(strategy: ThresholdStrategy, mu: float, delta: float, members: int,
             nonmembers: int) -> int:
    """Draws (of TRIALS) where the bound exceeds the true ε; the split strategies get a new
    seed each draw."""
    true_epsilon = gaussian_epsilon(mu, delta)
    count = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng(1000 + trial)
        scores = np.concatenate([rng.normal(mu, 1, members), rng.normal(0, 1, nonmembers)])
        is_member = np.arange(members + nonmembers) < members
        each = strategy
        if isinstance(strategy, Split):
            each = Split(fraction=strategy.fraction, seed=trial)
        elif isinstance(strategy, MultiSplit):
            each = MultiSplit(splits=strategy.splits, fraction=strategy.fraction, seed=trial)
        bound = epsilon_lower_bound(scores, is_member, delta=delta, confidence=1 - SIGNIFICANCE,
                                    threshold=each)
        count += bound.epsilon > true_epsilon + 1e-9
    return count


# At most SIGNIFICANCE of the draws may fail; the slack is the binomial's 99.9 % quantile, so a
# valid strategy fails this test once in a thousand runs of a given case at most.
ALLOWED = int(stats.binom.ppf(0.999, TRIALS, SIGNIFICANCE))

MECHANISMS = [
    pytest.param(0.0, 0.0, 500, 500, id="no-signal"),
    pytest.param(0.0, 0.0, 100, 2000, id="no-signal-unbalanced"),
    pytest.param(1.0, 1e-5, 500, 500, id="gaussian-mu1"),
    pytest.param(0.5, 0.1, 1000, 1000, id="gaussian-mu0.5-delta0.1"),
]


@pytest.mark.parametrize(("mu", "delta", "members", "nonmembers"), MECHANISMS)
@pytest.mark.parametrize(
    "strategy",
    [BonferroniHull(), BonferroniAllScores(), Split(), MultiSplit(splits=15),
     Explicit(threshold=1.0)],
    ids=["hull", "all-scores", "split", "multi-split", "explicit"],
)
def test_failure_rate_is_at_most_the_significance(
    strategy: ThresholdStrategy, mu: float, delta: float, members: int, nonmembers: int
) -> None:
    assert failures(strategy, mu, delta, members, nonmembers) <= ALLOWED
