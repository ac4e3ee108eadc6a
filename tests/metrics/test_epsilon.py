"""ε lower bounds and the Gaussian-DP estimate: hand cases, naive loops, and soundness.

Soundness is checked on mechanisms whose true ε is known: randomized response (members answer 1
with probability e^ε / (1 + e^ε), non-members with 1 / (1 + e^ε)) and the Gaussian mechanism
(member scores N(μ, 1), non-member scores N(0, 1), μ = 1/σ), whose (ε, δ) curve is
δ(ε) = Φ(μ/2 - ε/μ) - e^ε Φ(-μ/2 - ε/μ) (Balle and Wang 2018).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
from scipy import optimize, stats

from auditml.metrics import (
    EpsilonLowerBound,
    GaussianDPEstimate,
    MetricsInputError,
    epsilon_lower_bound,
    gdp_epsilon_estimate,
)
from auditml.metrics.dp.gdp import gdp_epsilon as _gdp_epsilon
from auditml.metrics.dp.thresholds import BonferroniAllScores, Split
from auditml.metrics.dp.trials_epsilon import (
    _best_threshold,
    _clopper_pearson_upper,
    _gaussian_mu,
    _raw_epsilon,
    epsilon_bound_tail,
)
from auditml.metrics.threshold import _stratified_halves

POLICIES = ("split", "bonferroni")

# --- reference implementations, written independently of the module -----------------------


def gaussian_true_epsilon(mu: float, delta: float) -> float:
    """The exact ε of the Gaussian mechanism with μ = sensitivity / σ at δ (Balle and Wang 2018)."""

    def curve(epsilon: float) -> float:
        return stats.norm.cdf(mu / 2 - epsilon / mu) - math.exp(epsilon) * stats.norm.cdf(
            -mu / 2 - epsilon / mu
        )

    if curve(0.0) <= delta:
        return 0.0
    return optimize.brentq(lambda epsilon: curve(epsilon) - delta, 0.0, 200.0, xtol=1e-12)


def upper_bound_by_binomtest(count: int, trials: int, level: float) -> float:
    """The one-sided exact (Clopper-Pearson) interval [0, u] of scipy's binomial test."""
    one_sided = stats.binomtest(count, trials, alternative="less").proportion_ci(
        confidence_level=1 - level, method="exact"
    )
    two_sided = stats.binomtest(count, trials).proportion_ci(
        confidence_level=1 - 2 * level, method="exact"
    )
    # Sanity of the reference itself: one-sided at `level` is the top of two-sided at 2 level.
    assert one_sided.low == 0.0
    assert one_sided.high == pytest.approx(two_sided.high, rel=1e-12)
    return float(one_sided.high)


def naive_bound(
    fp: int, negatives: int, fn: int, positives: int, delta: float, level: float
) -> float:
    """ε_lb at one threshold, straight from the formula, one scalar at a time."""

    def upper(count: int, trials: int) -> float:
        return (
            1.0 if count == trials else float(stats.beta.ppf(1 - level, count + 1, trials - count))
        )

    fpr, fnr = upper(fp, negatives), upper(fn, positives)
    candidates = [0.0]
    if 1 - delta - fnr > 0:
        candidates.append(math.log((1 - delta - fnr) / fpr))
    if 1 - delta - fpr > 0:
        candidates.append(math.log((1 - delta - fpr) / fnr))
    return max(candidates)


def naive_bonferroni(
    scores: np.ndarray, is_member: np.ndarray, delta: float, alpha: float
) -> tuple[float, float]:
    """(threshold, ε): every distinct score in decreasing order, first strict maximum wins."""
    distinct = sorted(set(scores.tolist()), reverse=True)
    level = alpha / (2 * max(len(distinct) - 1, 1))
    best_threshold, best = distinct[0], 0.0
    for threshold in distinct:
        fp = int(np.sum(scores[~is_member] >= threshold))
        fn = int(np.sum(scores[is_member] < threshold))
        bound = naive_bound(fp, int((~is_member).sum()), fn, int(is_member.sum()), delta, level)
        if bound > best:
            best_threshold, best = threshold, bound
    return best_threshold, best


def all_thresholds_reference(
    scores: np.ndarray,
    is_member: np.ndarray,
    level: float,
    objective: Callable[[np.ndarray, np.ndarray], np.ndarray],
    floor: float,
) -> tuple[float, float]:
    """_best_threshold without pruning: the objective at every distinct score, vectorised."""
    distinct = np.unique(scores)[::-1]
    nonmember_scores = np.sort(scores[~is_member])
    member_scores = np.sort(scores[is_member])
    fp = len(nonmember_scores) - np.searchsorted(nonmember_scores, distinct, side="left")
    fn = np.searchsorted(member_scores, distinct, side="left")
    values = np.maximum(
        objective(
            _clopper_pearson_upper(fp, len(nonmember_scores), level),
            _clopper_pearson_upper(fn, len(member_scores), level),
        ),
        floor,
    )
    best = int(np.argmax(values))
    return float(distinct[best]), float(values[best])


# --- score generators -------------------------------------------------------------------------


def labels(per_class: int) -> np.ndarray:
    return np.concatenate([np.ones(per_class, bool), np.zeros(per_class, bool)])


def gaussian_quantile_scores(mu: float, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Members ~ N(mu, 1), non-members ~ N(0, 1), as evenly spaced quantiles (no randomness)."""
    quantiles = stats.norm.ppf((np.arange(per_class) + 0.5) / per_class)
    return np.concatenate([quantiles + mu, quantiles]), labels(per_class)


def gaussian_random_scores(
    mu: float, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    scores = rng.normal(size=2 * per_class)
    scores[:per_class] += mu
    return scores, labels(per_class)


def randomized_response(
    epsilon: float, per_class: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """0/1 answers of ε-DP randomized response: the test "answer == 1" is tight for ε."""
    truthful = rng.random(2 * per_class) < math.exp(epsilon) / (1 + math.exp(epsilon))
    is_member = labels(per_class)
    return np.where(truthful, is_member, ~is_member).astype(float), is_member


def randomized_response_expected_counts(
    epsilon: float, per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """Randomized response with every count at its expectation (no randomness)."""
    ones = round(per_class * math.exp(epsilon) / (1 + math.exp(epsilon)))
    answers = np.zeros(2 * per_class)
    answers[:ones] = 1  # members answering 1
    answers[2 * per_class - (per_class - ones) :] = 1  # non-members answering 1
    return answers, labels(per_class)


# --- Clopper-Pearson and the formula ------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "trials", "level"),
    [
        (0, 10, 0.025),
        (3, 10, 0.025),
        (9, 10, 0.025),
        (7, 200, 0.001),
        (150, 200, 1e-6),
        (1, 1, 0.05),
    ],
)
def test_clopper_pearson_matches_scipy_binomtest(count: int, trials: int, level: float) -> None:
    bound = _clopper_pearson_upper(np.array([count]), trials, level)[0]
    if count == trials:
        assert bound == 1.0
    else:
        assert bound == pytest.approx(upper_bound_by_binomtest(count, trials, level), rel=1e-9)


def test_clopper_pearson_closed_forms() -> None:
    # k = 0: P(Binomial(n, u) = 0) = (1 - u)^n = level.
    assert _clopper_pearson_upper(np.array([0]), 50, 0.01)[0] == pytest.approx(1 - 0.01 ** (1 / 50))
    # k = n - 1: P(X <= n - 1) = 1 - u^n = level.
    assert _clopper_pearson_upper(np.array([49]), 50, 0.01)[0] == pytest.approx(0.99 ** (1 / 50))
    bounds = _clopper_pearson_upper(np.arange(51), 50, 0.01)
    assert np.all(np.diff(bounds) > 0) and bounds[-1] == 1.0


def test_raw_epsilon_hand_cases() -> None:
    fpr, fnr = np.array([0.1, 0.1, 0.6, 1.0]), np.array([0.2, 0.2, 0.6, 1.0])
    values = _raw_epsilon(fpr, fnr, 0.0)
    # max(ln(0.8 / 0.1), ln(0.9 / 0.2)) = ln 8; with δ = 0.1: ln(0.7 / 0.1) = ln 7.
    assert values[0] == pytest.approx(math.log(8))
    assert _raw_epsilon(fpr, fnr, 0.1)[0] == pytest.approx(math.log(7))
    assert values[2] < 0  # worse than chance: no evidence
    assert values[3] == -math.inf  # 1 - δ - FNR = 0


def test_bound_on_hand_counted_randomized_response() -> None:
    # Scores 0/1, 90 of 100 members and 10 of 100 non-members answer 1. One informative threshold
    # (score >= 1), so Bonferroni's level is alpha / 2 per rate; FP = FN = 10.
    scores = np.array([1.0] * 90 + [0.0] * 10 + [1.0] * 10 + [0.0] * 90)
    is_member = labels(100)
    result = epsilon_lower_bound(scores, is_member, alpha=0.05, policy="bonferroni")
    upper = upper_bound_by_binomtest(10, 100, 0.025)
    assert result.epsilon == pytest.approx(math.log((1 - upper) / upper), rel=1e-9)
    assert (result.threshold, result.false_positives, result.false_negatives) == (1.0, 10, 10)
    assert (result.negatives, result.positives) == (100, 100)
    # δ enters as 1 - δ - FNR_ub.
    with_delta = epsilon_lower_bound(scores, is_member, delta=0.1, policy="bonferroni")
    assert with_delta.epsilon == pytest.approx(math.log((0.9 - upper) / upper), rel=1e-9)


# --- the Bonferroni path equals the naive loop --------------------------------------------------


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(4, 150))
    is_member = rng.random(size) < rng.choice([0.2, 0.5, 0.8])
    is_member[rng.choice(size, 4, replace=False)] = [True, True, False, False]
    shift = rng.choice([0, 2, 10])
    scores = rng.integers(0, rng.choice([2, 5, 30, 10**6]), size) + shift * is_member
    return scores.astype(float), is_member


@pytest.mark.parametrize("seed", range(30))
def test_bonferroni_matches_naive_loop(seed: int) -> None:
    scores, is_member = random_case(seed)
    delta = [0.0, 1e-3, 0.2][seed % 3]
    result = epsilon_lower_bound(scores, is_member, delta=delta, alpha=0.1, policy="bonferroni")
    threshold, epsilon = naive_bonferroni(scores, is_member, delta, 0.1)
    assert result.epsilon == pytest.approx(epsilon, rel=1e-9, abs=1e-12)
    assert result.threshold == threshold
    assert result.false_positives == int(np.sum(scores[~is_member] >= threshold))
    assert result.false_negatives == int(np.sum(scores[is_member] < threshold))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("objective", ["epsilon", "mu"])
def test_pruning_is_exact(seed: int, objective: str) -> None:
    # A coarse table (exact up to 3, then counts growing by half) forces the bracketing path.
    rng = np.random.default_rng(seed)
    per_class = int(rng.integers(200, 3000))
    scores, is_member = gaussian_random_scores(float(rng.choice([0.0, 0.3, 2.0])), per_class, rng)
    scores = np.round(scores, int(rng.choice([1, 3, 8])))  # some runs of ties
    if objective == "epsilon":
        function, floor = partial(_raw_epsilon, delta=1e-3), 0.0
    else:
        function, floor = _gaussian_mu, -math.inf
    level = 0.05 / (2 * per_class)
    expected = all_thresholds_reference(scores, is_member, level, function, floor)
    for exact_counts, growth in [(3, 1.5), (50, 1.01), (10**6, 1.002)]:
        found = _best_threshold(
            scores,
            is_member,
            level,
            function,
            floor=floor,
            exact_counts=exact_counts,
            growth=growth,
        )
        assert found[0] == expected[0]
        assert found[1] == pytest.approx(expected[1], rel=1e-12)


# --- the split policy -------------------------------------------------------------------------


def test_split_chooses_on_calibration_and_bounds_on_evaluation() -> None:
    scores, is_member = gaussian_random_scores(1.5, 301, np.random.default_rng(3))
    result = epsilon_lower_bound(scores, is_member, delta=1e-5, threshold=Split(seed=7))
    calibration, evaluation = _stratified_halves(is_member, 7)
    threshold, _ = _best_threshold(
        scores[calibration],
        is_member[calibration],
        0.025,
        partial(_raw_epsilon, delta=1e-5),
        floor=0.0,
    )
    assert result.threshold == threshold
    evaluated_scores, evaluated_members = scores[evaluation], is_member[evaluation]
    fp = int(np.sum(evaluated_scores[~evaluated_members] >= threshold))
    fn = int(np.sum(evaluated_scores[evaluated_members] < threshold))
    assert (result.false_positives, result.false_negatives) == (fp, fn)
    assert (result.negatives, result.positives) == (150, 150)  # the smaller half of 301 each
    assert result.epsilon == pytest.approx(naive_bound(fp, 150, fn, 150, 1e-5, 0.025), rel=1e-9)
    assert result.epsilon > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_bound_depends_on_ranks_only(policy: str) -> None:
    scores, is_member = gaussian_random_scores(1.0, 500, np.random.default_rng(5))
    result = epsilon_lower_bound(scores, is_member, policy=policy)
    transformed = epsilon_lower_bound(np.exp(scores) * 3 - 1, is_member, policy=policy)
    assert transformed.epsilon == result.epsilon
    assert transformed.false_positives == result.false_positives


@pytest.mark.parametrize("policy", POLICIES)
def test_no_signal_cases_give_zero(policy: str) -> None:
    result = epsilon_lower_bound(np.full(20, 3.0), labels(10), policy=policy)
    assert result.epsilon == 0.0 and result.threshold == 3.0
    # Higher means member: an attack whose members score lower proves nothing until negated.
    reversed_scores = np.concatenate([np.zeros(500), np.ones(500)])
    assert epsilon_lower_bound(reversed_scores, labels(500), policy=policy).epsilon == 0.0
    assert epsilon_lower_bound(-reversed_scores, labels(500), policy=policy).epsilon > 3
    # Perfect separation with few examples: the counts cannot prove much.
    tiny = epsilon_lower_bound([1.0, 1.0, 0.0, 0.0], [1, 1, 0, 0], policy=policy)
    assert tiny.epsilon == 0.0


@pytest.mark.parametrize("policy", POLICIES)
def test_true_negative_side_counts(policy: str) -> None:
    # Every member answers 1, half the non-members do: TPR / FPR = 2 only (ε >= ln 2), but
    # TNR / FNR = 0.5 / 0, so the second inequality, 1 - FPR <= e^ε FNR + δ, proves much more.
    scores = np.concatenate([np.ones(500), np.ones(250), np.zeros(250)])
    result = epsilon_lower_bound(scores, labels(500), policy=policy)
    assert result.epsilon > 3 > math.log(2)
    assert result.false_negatives == 0


# --- soundness: randomized response -------------------------------------------------------------


def validity_rate(
    make_trial: Callable[[int], tuple[np.ndarray, np.ndarray]],
    policy: str,
    delta: float,
    true_epsilon: float,
    trials: int,
) -> float:
    valid = 0
    for trial in range(trials):
        scores, is_member = make_trial(trial)
        bound = epsilon_lower_bound(scores, is_member, delta=delta, policy=policy, seed=trial)
        valid += bound.epsilon <= true_epsilon
    return valid / trials


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("epsilon", [1.0, 2.0])
def test_randomized_response_bound_is_valid(policy: str, epsilon: float) -> None:
    rng = np.random.default_rng(int(epsilon * 100) + len(policy))

    def make_trial(trial: int) -> tuple[np.ndarray, np.ndarray]:
        return randomized_response(epsilon, 1000, rng)

    assert validity_rate(make_trial, policy, 0.0, epsilon, trials=200) >= 0.95


def test_randomized_response_plug_in_would_not_be_valid() -> None:
    # The point estimate ln(TPR / FPR) at the one threshold exceeds the true ε about half the
    # time: the validity test above can tell a valid bound from an invalid one.
    rng = np.random.default_rng(11)
    above = 0
    for _ in range(200):
        scores, is_member = randomized_response(1.0, 1000, rng)
        tpr, fpr = scores[is_member].mean(), scores[~is_member].mean()
        above += math.log(tpr / fpr) > 1.0
    assert above / 200 > 0.3


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("epsilon", [1.0, 2.0])
def test_randomized_response_bound_is_tight_for_large_samples(policy: str, epsilon: float) -> None:
    scores, is_member = randomized_response_expected_counts(epsilon, 20_000)
    bound = epsilon_lower_bound(scores, is_member, policy=policy).epsilon
    assert 0.8 * epsilon < bound <= epsilon


# --- soundness: the Gaussian mechanism ----------------------------------------------------------


def test_gaussian_true_epsilon_reference() -> None:
    # Independent checks of the reference: at ε it leaves exactly δ, and δ(0) = 2Φ(μ/2) - 1.
    assert gaussian_true_epsilon(1.0, 2 * stats.norm.cdf(0.5) - 1) == 0.0
    epsilon = gaussian_true_epsilon(1.0, 1e-5)
    assert 4.3 < epsilon < 4.45  # ≈ 4.377 for σ = 1 at δ = 1e-5
    assert _gdp_epsilon(1.0, 1e-5) == pytest.approx(epsilon, rel=1e-9)
    assert _gdp_epsilon(0.5, 0.1) == pytest.approx(gaussian_true_epsilon(0.5, 0.1), rel=1e-9)
    assert _gdp_epsilon(-0.3, 1e-5) == 0.0
    assert _gdp_epsilon(0.2, 0.5) == 0.0  # δ(0) = 2Φ(0.1) - 1 ≈ 0.08 <= 0.5


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize(("sigma", "delta"), [(1.0, 1e-5), (1.0, 0.2), (0.5, 0.3)])
def test_gaussian_mechanism_bound_is_valid(policy: str, sigma: float, delta: float) -> None:
    # δ = 1e-5 is the realistic setting; the large δ put the true ε where 1000 examples per
    # class can nearly reach it, so the check has teeth.
    mu = 1 / sigma
    true_epsilon = gaussian_true_epsilon(mu, delta)
    rng = np.random.default_rng(int(sigma * 10 + delta * 1000))

    def make_trial(trial: int) -> tuple[np.ndarray, np.ndarray]:
        return gaussian_random_scores(mu, 1000, rng)

    assert validity_rate(make_trial, policy, delta, true_epsilon, trials=200) >= 0.95


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("sigma", [1.0, 0.5])
def test_gaussian_mechanism_bound_is_within_a_factor(policy: str, sigma: float) -> None:
    # At δ = 1e-5 the true ε is decided by events rarer than 1 / 20000, which these examples
    # cannot see; the Clopper-Pearson bound reaches a third to a half of it (the GDP estimate, which
    # assumes the curve's shape, gets within 20%: see below).
    mu = 1 / sigma
    scores, is_member = gaussian_quantile_scores(mu, 20_000)
    bound = epsilon_lower_bound(scores, is_member, delta=1e-5, policy=policy).epsilon
    true_epsilon = gaussian_true_epsilon(mu, 1e-5)
    assert 0.3 * true_epsilon < bound <= true_epsilon


# --- results, inputs, scale -------------------------------------------------------------------


def test_results_serialise_to_json() -> None:
    scores, is_member = gaussian_random_scores(1.0, 200, np.random.default_rng(0))
    for result in (
        epsilon_lower_bound(scores, is_member, policy="bonferroni"),
        gdp_epsilon_estimate(scores, is_member, delta=1e-5),  # the ε record's neighbour
    ):
        assert isinstance(result, (EpsilonLowerBound, GaussianDPEstimate))
        assert json.loads(json.dumps(result.to_dict(), allow_nan=False)) == result.to_dict()
    record = epsilon_lower_bound(scores, is_member).to_dict()
    assert record["method"] == "clopper_pearson" and record["threshold_policy"] == "bonferroni_hull"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"alpha": 0.7}, "`alpha` must be in (0, 0.5), got 0.7."),
        ({"alpha": 0.5}, "`alpha` must be in (0, 0.5), got 0.5."),
        ({"alpha": 0}, "`alpha` must be in (0, 0.5), got 0."),
        ({"alpha": float("nan")}, "`alpha` must be in (0, 0.5), got nan."),
        ({"alpha": True}, "`alpha` must be in (0, 0.5), got True."),
        ({"alpha": "0.05"}, "`alpha` must be in (0, 0.5), got '0.05'."),
        ({"delta": 1.0}, "`delta` must be in [0, 1), got 1.0."),
        ({"delta": -1e-9}, "`delta` must be in [0, 1), got -1e-09."),
        ({"policy": "best"}, "`policy` must be one of 'split', 'bonferroni', got 'best'."),
        ({"seed": -1}, "`seed` must be a non-negative integer, got -1."),
    ],
)
def test_invalid_settings(settings: dict[str, object], message: str) -> None:
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        epsilon_lower_bound([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], **settings)  # type: ignore[arg-type]


def test_invalid_inputs() -> None:
    with pytest.raises(MetricsInputError, match="at least 2 members and 2 non-members"):
        epsilon_lower_bound([0.1, 0.2, 0.3], [0, 1, 1], threshold=Split())
    # Bonferroni needs no split: one of each is enough.
    assert epsilon_lower_bound([0.1, 0.2], [0, 1]).epsilon == 0.0
    assert epsilon_lower_bound([0.1, 0.2], [0, 1], policy="bonferroni").epsilon == 0.0
    with pytest.raises(MetricsInputError, match="`scores` must be finite"):
        epsilon_lower_bound([0.1, np.nan, 0.3, 0.4], [0, 0, 1, 1])
    with pytest.raises(MetricsInputError, match=re.escape("`delta` must be in (0, 1)")):
        gdp_epsilon_estimate([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], delta=0.0)


@pytest.mark.parametrize("policy", POLICIES)
def test_a_million_scores(policy: str) -> None:
    scores, is_member = gaussian_random_scores(0.5, 500_000, np.random.default_rng(0))
    result = epsilon_lower_bound(scores, is_member, delta=1e-5, policy=policy)
    assert 0 < result.epsilon < gaussian_true_epsilon(0.5, 1e-5)
    assert result.negatives + result.positives == (10**6 if policy == "bonferroni" else 500_000)


# --- which tail gave the bound ----------------------------------------------------------------


def _quantiles(count: int) -> np.ndarray:
    return stats.norm.ppf((np.arange(count) + 0.5) / count)


@pytest.mark.parametrize("policy", POLICIES)
def test_the_tail_of_the_bound_is_recorded(policy: str) -> None:
    members = _quantiles(200)
    is_member = np.concatenate([np.ones(200, bool), np.zeros(200, bool)])
    # A few members far above everyone: high scores flag members.
    high = members.copy()
    high[-40:] += 10
    member_side = epsilon_lower_bound(np.concatenate([high, members]), is_member, policy=policy)
    # A few non-members far below everyone, the rest like the members: ROC near the diagonal at
    # low FPR, yet low scores flag non-members (the reverse test).
    low = members.copy()
    low[:40] -= 10
    nonmember_side = epsilon_lower_bound(np.concatenate([members, low]), is_member,
                                         policy=policy)
    chance = epsilon_lower_bound(np.concatenate([members, members]), is_member, policy=policy)
    assert member_side.epsilon > 0.5 and member_side.tail == "member"
    assert nonmember_side.epsilon > 0.5 and nonmember_side.tail == "nonmember"
    assert chance.epsilon == 0 and chance.tail is None
    for bound in (member_side, nonmember_side, chance):
        assert json.loads(json.dumps(bound.to_dict()))["tail"] == bound.tail
        if policy == "split" and bound.epsilon > 0:
            # The tail is the larger term of the theorem at the recorded counts (scipy's Beta).
            fpr = stats.beta.isf(0.025, bound.false_positives + 1,
                                 bound.negatives - bound.false_positives)
            fnr = stats.beta.isf(0.025, bound.false_negatives + 1,
                                 bound.positives - bound.false_negatives)
            forward, backward = math.log((1 - fnr) / fpr), math.log((1 - fpr) / fnr)
            assert bound.tail == ("member" if forward >= backward else "nonmember")


def test_an_older_record_s_tail_is_derived_from_its_counts() -> None:
    is_member = np.concatenate([np.ones(200, bool), np.zeros(200, bool)])
    low = _quantiles(200)
    low[:40] -= 10
    bound = epsilon_lower_bound(np.concatenate([_quantiles(200), low]), is_member,
                                threshold=Split()).to_dict()
    older = {key: value for key, value in bound.items() if key != "tail"}
    assert epsilon_bound_tail(older) == "nonmember"
    # Without the level (Bonferroni's depends on the number of distinct scores): not known.
    assert epsilon_bound_tail({**older, "threshold_policy": "bonferroni"}) is None
    assert epsilon_bound_tail({"epsilon": 1.0}) is None


def test_old_setting_names_warn_and_keep_their_meaning() -> None:
    scores, is_member = gaussian_random_scores(1.5, 301, np.random.default_rng(8))
    with pytest.warns(DeprecationWarning, match="`policy` is deprecated"):
        old = epsilon_lower_bound(scores, is_member, confidence=0.9, policy="split", seed=3)
    assert old == epsilon_lower_bound(scores, is_member, confidence=0.9, threshold=Split(seed=3))
    with pytest.warns(DeprecationWarning, match="`alpha` is deprecated"):
        old = epsilon_lower_bound(scores, is_member, alpha=0.1, policy="bonferroni")
    assert old.epsilon == epsilon_lower_bound(
        scores, is_member, confidence=0.9, threshold=BonferroniAllScores()).epsilon
    assert old.alpha == 0.1
    with pytest.raises(MetricsInputError, match="not both"):
        epsilon_lower_bound(scores, is_member, confidence=0.9, alpha=0.1)
    with pytest.raises(MetricsInputError, match=re.escape("`confidence` must be in (0.5, 1)")):
        epsilon_lower_bound(scores, is_member, confidence=0.3)
