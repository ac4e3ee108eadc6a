"""The one-run ε lower bound (Steinke, Nasr and Jagielski 2023): closed forms, a naive reference,
monotonicity, and soundness on mechanisms whose ε is known.

The mechanisms: per-canary randomized response (an IN canary scores 1 with probability
e^ε / (1 + e^ε), an OUT canary with 1 / (1 + e^ε)), which is exactly ε-DP and for which the number
of correct guesses is exactly Binomial(r, e^ε / (1 + e^ε)); and the same with each canary's coin
revealed outright with probability δ, which is (ε, δ)-DP but not (ε, 0)-DP.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import special, stats

from auditml.metrics import (
    MetricsInputError,
    OneRunBound,
    one_run_audit,
    one_run_epsilon_lower_bound,
)
from auditml.metrics.dp.one_run_epsilon import GUESS_FRACTIONS, _guess_grid

# --- reference implementations, written independently of the module -----------------------


def naive_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """The theorem's right-hand side, term by term, with the maximum over every i in 1..m."""
    q = math.exp(epsilon) / (1 + math.exp(epsilon))
    pmf = stats.binom.pmf(np.arange(r + 1), r, q).tolist()
    tail = sum(pmf[v:])
    spread, window = 0.0, 0.0  # window = P[v - i <= B < v]
    for i in range(1, m + 1):
        if v - i >= 0:
            window += pmf[v - i]
        spread = max(spread, window / i)
    return min(tail + 2 * m * delta * spread, 1.0)


def naive_epsilon(m: int, r: int, v: int, delta: float, beta: float) -> float:
    """Algorithm 2: bisection for the largest ε whose p-value is below β, from [0, 64]."""
    low, high = 0.0, 64.0
    for _ in range(80):
        middle = (low + high) / 2
        if naive_p_value(m, r, v, middle, delta) < beta:
            low = middle
        else:
            high = middle
    return low


def randomized_response_canaries(
    epsilon: float, canaries: int, rng: np.random.Generator, reveal: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, coins): ε-randomized response per canary; with probability `reveal` the coin
    itself shows (score 2 if IN, -1 if OUT), which makes the mechanism (ε, reveal)-DP."""
    included = rng.random(canaries) < 0.5
    truthful = rng.random(canaries) < special.expit(epsilon)
    scores = np.where(truthful, included, ~included).astype(float)
    revealed = rng.random(canaries) < reveal
    scores[revealed] = np.where(included[revealed], 2.0, -1.0)
    return scores, included


# --- the bound from counts ------------------------------------------------------------------


def test_ceiling_hand_computed() -> None:
    # 100 of 100 correct: P[Binomial(100, q) >= 100] = q^100 = 0.05, so q = 0.05^(1/100) and
    # ε = ln(q / (1 - q)) = ln(0.970487 / 0.029513) = 3.49297.
    result = one_run_epsilon_lower_bound(100, 100, 1000)
    assert result.epsilon == pytest.approx(3.4929654, abs=1e-6)
    assert result.max_epsilon == result.epsilon
    # The same through the closed form, and the ceiling of 1000 guesses (about ln(1000 / ln 20)).
    q = 0.05 ** (1 / 1000)
    assert one_run_epsilon_lower_bound(1000, 1000, 1000).epsilon == pytest.approx(
        math.log(q / (1 - q)), rel=1e-9
    )
    assert one_run_epsilon_lower_bound(1000, 1000, 1000).epsilon == pytest.approx(5.809, abs=1e-3)


@pytest.mark.parametrize(
    ("correct", "guesses", "confidence"),
    [(100, 100, 0.95), (70, 100, 0.95), (70, 100, 0.99), (9, 10, 0.9), (3000, 5000, 0.95)],
)
def test_pure_bound_matches_scipy_binom(correct: int, guesses: int, confidence: float) -> None:
    result = one_run_epsilon_lower_bound(correct, guesses, 10 * guesses, confidence=confidence)
    assert result.epsilon > 0
    # At ε_lb the tail P[Binomial(r, q) >= v] is exactly the level: ε_lb is where rejection ends.
    tail = stats.binom.sf(correct - 1, guesses, special.expit(result.epsilon))
    assert tail == pytest.approx(1 - confidence, rel=1e-6)
    below = stats.binom.sf(correct - 1, guesses, special.expit(result.epsilon - 1e-6))
    assert below < 1 - confidence


@pytest.mark.parametrize(
    ("correct", "guesses", "canaries", "delta"),
    [
        (100, 100, 1000, 1e-5),
        (70, 100, 1000, 1e-5),
        (45, 50, 200, 1e-4),
        (18, 20, 20, 0.01),
        (60, 100, 100, 0.0),
        (9, 10, 1000, 1e-3),
    ],
)
def test_bound_matches_naive_algorithm(
    correct: int, guesses: int, canaries: int, delta: float
) -> None:
    result = one_run_epsilon_lower_bound(correct, guesses, canaries, delta=delta)
    expected = naive_epsilon(canaries, guesses, correct, delta, 0.05)
    assert result.epsilon == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert result.max_epsilon == pytest.approx(
        naive_epsilon(canaries, guesses, guesses, delta, 0.05), rel=1e-7
    )


def test_no_evidence_gives_zero() -> None:
    assert one_run_epsilon_lower_bound(0, 100, 1000).epsilon == 0.0
    assert one_run_epsilon_lower_bound(50, 100, 1000).epsilon == 0.0  # chance accuracy
    assert one_run_epsilon_lower_bound(0, 0, 1000).epsilon == 0.0
    assert one_run_epsilon_lower_bound(0, 0, 1000).max_epsilon == 0.0
    # 2 m δ >= 1/β: no count can reject anything.
    assert one_run_epsilon_lower_bound(100, 100, 1000, delta=0.1).epsilon == 0.0


def test_monotone_in_correct_guesses() -> None:
    for delta in (0.0, 1e-5):
        bounds = [
            one_run_epsilon_lower_bound(v, 200, 1000, delta=delta).epsilon for v in range(100, 201)
        ]
        assert all(np.diff(bounds) >= 0)
        assert bounds[0] == 0.0 and bounds[-1] > 3
        assert max(bounds) <= one_run_epsilon_lower_bound(200, 200, 1000, delta=delta).max_epsilon


def test_monotone_in_guesses_at_fixed_accuracy() -> None:
    # 80 % correct: more guesses (and canaries to make them) give a larger bound.
    for delta in (0.0, 1e-6):
        bounds = [
            one_run_epsilon_lower_bound(4 * n, 5 * n, 10 * n, delta=delta).epsilon
            for n in (10, 20, 50, 100, 200, 1000)
        ]
        assert all(np.diff(bounds) > 0)
        # It approaches logit(0.8) = ln 4 from below.
        assert bounds[-1] < math.log(4)
        assert bounds[-1] > 0.9 * math.log(4)


def test_monotone_in_delta_and_confidence() -> None:
    by_delta = [
        one_run_epsilon_lower_bound(90, 100, 1000, delta=delta).epsilon
        for delta in (0.0, 1e-6, 1e-5, 1e-4, 1e-3)
    ]
    assert all(np.diff(by_delta) < 0)
    by_confidence = [
        one_run_epsilon_lower_bound(90, 100, 1000, confidence=confidence).epsilon
        for confidence in (0.6, 0.9, 0.95, 0.99, 0.999)
    ]
    assert all(np.diff(by_confidence) < 0)
    # δ = 0 does not depend on m; at δ > 0 more canaries (a larger 2 m δ) lower the bound.
    assert one_run_epsilon_lower_bound(90, 100, 100).epsilon == (
        one_run_epsilon_lower_bound(90, 100, 10**6).epsilon
    )
    assert (
        one_run_epsilon_lower_bound(90, 100, 100, delta=1e-5).epsilon
        > one_run_epsilon_lower_bound(90, 100, 10**4, delta=1e-5).epsilon
    )


@pytest.mark.parametrize(("epsilon", "guesses"), [(0.5, 120), (1.0, 80), (2.0, 50)])
@pytest.mark.parametrize("delta", [0.0, 1e-4])
def test_exact_coverage_for_randomized_response(epsilon: float, guesses: int, delta: float) -> None:
    # For ε-randomized response the correct guesses are exactly Binomial(r, e^ε / (1 + e^ε)),
    # so the probability that the bound exceeds ε is a finite sum: it must be at most 5 %.
    canaries = 5 * guesses
    pmf = stats.binom.pmf(np.arange(guesses + 1), guesses, special.expit(epsilon))
    above = [
        one_run_epsilon_lower_bound(v, guesses, canaries, delta=delta).epsilon > epsilon
        for v in range(guesses + 1)
    ]
    failure = float(pmf[above].sum())
    assert 0 < failure <= 0.05  # some outcomes do exceed ε: the bound is not trivially loose


# --- the audit from scores ------------------------------------------------------------------


def test_audit_counts_hand_case() -> None:
    scores = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    included = [1, 0, 1, 0, 0, 1]
    # IN guesses on scores 5, 4 (right, wrong); OUT guesses on 0, 1 (wrong, right).
    result = one_run_audit(scores, included, k_positive=2, k_negative=2)
    assert (result.guesses, result.correct, result.canaries) == (4, 2, 6)
    assert (result.k_positive, result.k_negative, result.candidates) == (2, 2, 1)
    assert result == OneRunBound(
        **{
            **one_run_epsilon_lower_bound(2, 4, 6).to_dict(),
            "k_positive": 2,
            "k_negative": 2,
        }
    )
    # A missing count is 0: the paper's IN-only guessing.
    only_in = one_run_audit(scores, included, k_positive=3)
    assert (only_in.guesses, only_in.correct, only_in.k_negative) == (3, 2, 0)
    only_out = one_run_audit(scores, included, k_negative=1)
    assert (only_out.guesses, only_out.correct, only_out.k_positive) == (1, 0, 0)


def test_grid_is_fixed_by_the_number_of_canaries() -> None:
    grid = _guess_grid(1000)
    assert len(grid) == 2 * len(GUESS_FRACTIONS) - 1 == 13
    assert (500, 500) in grid and (10, 0) in grid and (5, 5) in grid
    assert all(1 <= p + n <= 1000 for p, n in grid)
    assert all(1 <= p + n <= 3 for p, n in _guess_grid(3))
    assert len(set(_guess_grid(3))) == len(_guess_grid(3))


def test_grid_result_is_the_best_candidate_at_the_corrected_level() -> None:
    scores, included = randomized_response_canaries(2.0, 1000, np.random.default_rng(3))
    result = one_run_audit(scores, included)
    assert result.candidates == 13 and result.confidence == 0.95
    corrected = 1 - 0.05 / 13
    for positive, negative in _guess_grid(1000):
        fixed = one_run_audit(
            scores, included, k_positive=positive, k_negative=negative, confidence=corrected
        )
        assert fixed.epsilon <= result.epsilon
        assert fixed.max_epsilon <= result.max_epsilon
    chosen = one_run_audit(
        scores,
        included,
        k_positive=result.k_positive,
        k_negative=result.k_negative,
        confidence=corrected,
    )
    assert chosen.epsilon == result.epsilon and chosen.correct == result.correct
    assert result.max_epsilon == pytest.approx(
        one_run_epsilon_lower_bound(1000, 1000, 1000, confidence=corrected).epsilon, rel=1e-12
    )


def test_ties_are_broken_independently_of_the_coins() -> None:
    # Constant scores carry no information. With coins ordered members first, "first index
    # first" would guess perfectly; random tie-breaking must not.
    included = np.repeat([True, False], 500)
    for seed in range(5):
        result = one_run_audit(np.zeros(1000), included, seed=seed)
        assert result.epsilon < 0.3
    fixed = one_run_audit(np.zeros(1000), included, k_positive=100, k_negative=100)
    assert 60 < fixed.correct < 140


def test_permuting_canaries_without_ties_changes_nothing() -> None:
    rng = np.random.default_rng(5)
    scores, included = rng.normal(size=500), rng.random(500) < 0.5
    scores[included] += 1.5
    order = rng.permutation(500)
    assert one_run_audit(scores, included) == one_run_audit(scores[order], included[order])


def test_all_canaries_in_is_allowed() -> None:
    result = one_run_audit(np.arange(10.0), np.ones(10, bool), k_positive=5)
    assert result.correct == 5 and result.epsilon > 0


@pytest.mark.parametrize("epsilon", [0.5, 2.0])
def test_randomized_response_audit_is_valid(epsilon: float) -> None:
    rng = np.random.default_rng(11)
    fixed, grid = [], []
    for _ in range(100):
        scores, included = randomized_response_canaries(epsilon, 1000, rng)
        fixed.append(one_run_audit(scores, included, k_positive=250, k_negative=250).epsilon)
        grid.append(one_run_audit(scores, included).epsilon)
    assert np.mean(np.array(fixed) <= epsilon) >= 0.95
    assert np.mean(np.array(grid) <= epsilon) >= 0.95
    assert np.median(grid) > 0.5 * epsilon


@pytest.mark.parametrize("epsilon", [1.0, 2.0])
def test_randomized_response_audit_is_tight_with_many_canaries(epsilon: float) -> None:
    scores, included = randomized_response_canaries(epsilon, 50_000, np.random.default_rng(2))
    result = one_run_audit(scores, included)
    assert 0.9 * epsilon < result.epsilon <= epsilon
    assert one_run_audit(scores, included, delta=1e-6).epsilon > 0.85 * epsilon


def test_delta_term_is_needed_and_sufficient() -> None:
    # (ε, δ)-DP but not (ε, 0)-DP: ~m δ = 20 coins shown outright. Guessing them (they score
    # highest and lowest) pushes the δ = 0 bound above ε; the δ-aware bound stays below.
    epsilon, delta = 1.0, 0.01
    rng = np.random.default_rng(7)
    pure, approximate = [], []
    for _ in range(60):
        scores, included = randomized_response_canaries(epsilon, 2000, rng, reveal=delta)
        pure.append(one_run_audit(scores, included, k_positive=20, k_negative=20).epsilon)
        approximate.append(
            one_run_audit(scores, included, k_positive=20, k_negative=20, delta=delta).epsilon
        )
    assert np.mean(np.array(pure) > epsilon) > 0.2
    assert np.mean(np.array(approximate) <= epsilon) >= 0.95


def test_a_million_canaries_with_delta() -> None:
    scores, included = randomized_response_canaries(1.0, 10**6, np.random.default_rng(0))
    result = one_run_audit(scores, included, delta=1e-8)
    assert 0.9 < result.epsilon <= 1.0


def test_result_serialises_to_json() -> None:
    result = one_run_audit([0.1, 0.9, 0.3, 0.8], [0, 1, 0, 1])
    loaded = json.loads(json.dumps(result.to_dict()))
    assert set(loaded) == {
        "epsilon",
        "confidence",
        "delta",
        "guesses",
        "correct",
        "canaries",
        "max_epsilon",
        "k_positive",
        "k_negative",
        "candidates",
        "method",
    }
    assert loaded["method"] == "steinke_nasr_jagielski_2023"  # which theorem gave the number
    assert loaded["epsilon"] <= loaded["max_epsilon"]
    counts_only = one_run_epsilon_lower_bound(3, 4, 10).to_dict()
    assert counts_only["k_positive"] is None and counts_only["candidates"] == 1


# --- input validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "settings", "message"),
    [
        ((5, 4, 10), {}, "`correct` must be an integer in [0, 4] (at most `guesses`), got 5."),
        ((-1, 4, 10), {}, "`correct` must be an integer in [0, 4] (at most `guesses`), got -1."),
        ((2.0, 4, 10), {}, "`correct` must be an integer in [0, 4] (at most `guesses`), got 2.0."),
        ((1, 11, 10), {}, "`guesses` must be an integer in [0, 10] (at most `canaries`), got 11."),
        ((0, 0, 0), {}, "`canaries` must be a positive integer, got 0."),
        ((1, 1, True), {}, "`canaries` must be a positive integer, got True."),
        ((1, 2, 3), {"confidence": 0.5}, "`confidence` must be in (0.5, 1), got 0.5."),
        ((1, 2, 3), {"confidence": 1.0}, "`confidence` must be in (0.5, 1), got 1.0."),
        ((1, 2, 3), {"delta": 1.0}, "`delta` must be in [0, 1), got 1.0."),
        ((1, 2, 3), {"delta": -1e-9}, "`delta` must be in [0, 1), got -1e-09."),
        ((1, 2, 3), {"delta": float("nan")}, "`delta` must be in [0, 1), got nan."),
    ],
)
def test_invalid_counts_and_settings(
    arguments: tuple[object, ...], settings: dict[str, object], message: str
) -> None:
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        one_run_epsilon_lower_bound(*arguments, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scores", "included", "settings", "message"),
    [
        ([0.1, 0.2], [0, 1, 1], {}, "`scores` and `included` must have the same length, got 2"),
        ([], [], {}, "`included` must hold at least one example, got none."),
        ([[0.1, 0.2]], [[0, 1]], {}, "`scores` must be 1-D (one entry per example)"),
        ([0.1, np.inf], [0, 1], {}, "`scores` must be finite, got 1 infinite values."),
        ([0.1, np.nan], [0, 1], {}, "`scores` must be finite, got 1 NaN values."),
        (["a", "b"], [0, 1], {}, "`scores` must be real numbers"),
        ([0.1, 0.2], [0, 2], {}, "`included` must hold booleans or 0/1"),
        ([0.1, 0.2], [0, 1], {"k_positive": 3}, "`k_positive` must be an integer in [0, 2]"),
        ([0.1, 0.2], [0, 1], {"k_negative": -1}, "`k_negative` must be an integer in [0, 2]"),
        (
            [0.1, 0.2],
            [0, 1],
            {"k_positive": 2, "k_negative": 1},
            "`k_positive + k_negative` must be in [1, 2] (the number of canaries), got 3.",
        ),
        ([0.1, 0.2], [0, 1], {"k_positive": 0}, "`k_positive + k_negative` must be in [1, 2]"),
        ([0.1, 0.2], [0, 1], {"seed": -1}, "`seed` must be a non-negative integer, got -1."),
        ([0.1, 0.2], [0, 1], {"confidence": 0.3}, "`confidence` must be in (0.5, 1), got 0.3."),
    ],
)
def test_invalid_audit_inputs(
    scores: object, included: object, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        one_run_audit(scores, included, **settings)  # type: ignore[arg-type]
