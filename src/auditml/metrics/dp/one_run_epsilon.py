"""The one-run ε lower bound of Steinke, Nasr and Jagielski: many canaries, one trained model.

Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1) Training Run" (NeurIPS).

**Setting.** ``m`` canaries are each included in training independently with probability 1/2:
``S_i`` is a fair coin, IN or OUT, drawn before training and recorded. After training, an auditor
who sees only the trained model (never the coins) makes a guess ``T_i`` about each canary: IN,
OUT, or abstain, with at most ``r`` non-abstentions. ``W`` is the number of correct guesses.

**The theorem** (their main result, Theorem 3, in the p-value form their code computes). If the
training algorithm is (ε, δ)-DP with respect to adding or removing one example, then for every ``v``

    P[W >= v] <= p_{ε,δ}(v) = P[B >= v] + 2 m δ · max_{i >= 1} P[v - i <= B < v] / i,
                              B ~ Binomial(r, e^ε / (1 + e^ε)),

where only ``i <= v`` can attain the maximum (for ``i > v`` the probability is P[B < v] and the
divisor only grows). At δ = 0 the second term vanishes: ``W`` is stochastically dominated by the
number of correct answers of ``r`` independent ε-randomized responses. What makes one run enough
is the connection between DP and generalisation: the canaries are inserted in parallel and the
analysis never pays for group privacy.

**The audit** (their Algorithm 2, computing the ε lower bound; code in their Appendix D).
``p_{ε,δ}(v)`` is a p-value for the hypothesis "the algorithm is (ε, δ)-DP" given ``v`` observed
correct guesses. The audit reports the largest ε it rejects at level β = 1 - confidence,

    ε_lb = sup { ε >= 0 : p_{ε,δ}(v) < β }      (0 when no ε is rejected).

Why the supremum is valid: an (ε₀, δ)-DP algorithm is (ε, δ)-DP for every ε >= ε₀, so
``F(v) = inf_{ε >= ε₀} p_{ε,δ}(v)`` bounds ``P[W >= v]`` for every ``v``, and so does its running
minimum over ``v``, which is non-increasing; hence ``P[F(W) < β] <= β``. As ``ε_lb > ε₀`` implies
``F(W) < β``, the claim "not (ε, δ)-DP for any ε < ε_lb" is wrong with probability at most β
(no monotonicity of ``p`` in ``v`` or ε is needed, and any rejected ε is as safe to report as
the supremum).

At δ = 0, ``P[B >= v]`` is the regularised incomplete beta function ``I_q(v, r - v + 1)``,
increasing in ``q = e^ε / (1 + e^ε)``, so ``ε_lb = logit(q_lb)`` exactly, with ``q_lb`` the
one-sided Clopper-Pearson lower confidence bound on the guesses' accuracy (the Beta(v, r - v + 1)
quantile at β). At δ > 0 the paper's bisection over ε is used, started from the δ = 0 value
(``p_{ε,δ} >= p_{ε,0}``, so nothing above it can be rejected).

**The ceiling.** Even all ``r`` guesses correct only show
``ε_lb = logit(β^{1/r}) ≈ ln(r / ln(1/β))`` at δ = 0, so 1000 guesses cannot show more than about
5.8 at 95 % confidence; every result reports its ceiling as ``max_epsilon``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from auditml.metrics.dp.trials_epsilon import _check_number
from auditml.metrics.roc import MetricsInputError, check_count, check_scores
from auditml.metrics.threshold import _check_seed

GUESS_FRACTIONS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Fractions of the canaries guessed on by :func:`one_run_audit` when no ``k_positive`` /
``k_negative`` is given (the candidate grid, fixed before any score is seen)."""

# The bisection over ε at δ > 0 stops when the bracket is this narrow relative to max(1, ε).
_EPSILON_TOLERANCE = 1e-10
_MAX_BISECTIONS = 200
# Binomial mass left out of the δ term's sums (and added back to the p-value as an upper bound).
_NEGLIGIBLE = 1e-30


@dataclass(frozen=True)
class OneRunBound:
    """A one-run ε lower bound and the counts it was computed from.

    With probability at least ``confidence`` (over the canaries' coins) the training algorithm is
    not (ε', ``delta``)-DP for any ε' < ``epsilon``. ``correct`` of the ``guesses`` non-abstaining
    guesses about ``canaries`` canaries were right. ``max_epsilon`` is the largest ``epsilon``
    the same procedure could have shown on these canaries (every guess correct): a result near it
    says the audit, not the algorithm, is the limit.

    ``k_positive`` and ``k_negative`` are the IN and OUT guesses that gave the bound, ``None``
    when only counts were given (:func:`one_run_epsilon_lower_bound`). ``candidates`` is the
    number of (k_positive, k_negative) choices tried, each at level ``(1 - confidence) /
    candidates`` (Bonferroni); 1 when the guesses were fixed in advance.
    ``epsilon == 0`` means no evidence against (0, δ)-DP at this confidence. ``method`` names
    the theorem that gave the bound: ``"steinke_nasr_jagielski_2023"`` (this module) or
    ``"mahloujifar_melis_chaudhuri_2024"`` (the f-DP test of :mod:`.one_run_fdp` with
    the (ε, δ)-DP curve); both hold for every (ε, δ)-DP algorithm.
    """

    epsilon: float
    confidence: float
    delta: float
    guesses: int
    correct: int
    canaries: int
    max_epsilon: float
    k_positive: int | None = None
    k_negative: int | None = None
    candidates: int = 1
    method: str = "steinke_nasr_jagielski_2023"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (numbers, and ``None`` for an unknown IN/OUT split)."""
        return asdict(self)


# --- settings -------------------------------------------------------------------------------


def _check_settings(delta: object, confidence: object) -> tuple[float, float]:
    checked_delta = _check_number(delta, "delta", 0.0, 1.0, low_closed=True)
    checked_confidence = _check_number(confidence, "confidence", 0.5, 1.0, low_closed=False)
    return checked_delta, checked_confidence


# --- the p-value and the bound --------------------------------------------------------------


def _p_value(canaries: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """p_{ε,δ}(v) of the theorem, or at most ``2 m δ _NEGLIGIBLE`` above it (never below).

    Not capped at 1: only comparisons with a level below 1/2 are made.
    """
    from scipy import stats  # here, not at the top: an audit without canaries never needs it

    accuracy = float(special.expit(epsilon))
    tail = float(stats.binom.sf(correct - 1, guesses, accuracy))  # P[B >= v]
    if delta == 0 or correct == 0:
        return tail
    # P[v - i <= B < v] for i = 1..v: cumulative sums of the pmf going down from v - 1. Terms
    # below `lowest` hold mass <= _NEGLIGIBLE (Hoeffding: P[B <= rq - t] <= exp(-2 t^2 / r)), so
    # leaving them out lowers the maximum by at most _NEGLIGIBLE, which is added back; this
    # keeps the work O(sqrt(r)) instead of O(v) when v is large.
    spread_width = math.sqrt(guesses * math.log(1 / _NEGLIGIBLE) / 2)
    lowest = max(math.floor(guesses * accuracy - spread_width), 0)
    counts = np.arange(correct - 1, min(lowest, correct - 1) - 1, -1)
    below = np.cumsum(stats.binom.pmf(counts, guesses, accuracy))
    spread = float(np.max(below / np.arange(1, len(counts) + 1)))
    if lowest > 0:
        spread += _NEGLIGIBLE
    return tail + 2 * canaries * delta * spread


def _epsilon_pure(guesses: int, correct: int, level: float) -> float:
    """ε_lb at δ = 0: the logit of the Clopper-Pearson lower bound on the accuracy, floored at 0."""
    if correct == 0:
        return 0.0
    # q_lb and 1 - q_lb each from their own Beta quantile, so the logit keeps its precision
    # when q_lb is within rounding of 1 (many guesses, all correct).
    from scipy import stats

    accuracy_low = stats.beta.ppf(level, correct, guesses - correct + 1)
    error_high = stats.beta.isf(level, guesses - correct + 1, correct)
    return max(float(np.log(accuracy_low) - np.log(error_high)), 0.0)


def _epsilon(canaries: int, guesses: int, correct: int, delta: float, level: float) -> float:
    """sup{ε : p_{ε,δ}(correct) < level}, by the closed form at δ = 0 and bisection above."""
    high = _epsilon_pure(guesses, correct, level)
    if delta == 0 or high == 0:
        return high
    if _p_value(canaries, guesses, correct, high, delta) < level:
        return high  # only by rounding: at `high` the δ = 0 p-value alone equals `level`
    # Invariants: `low` is rejected (or 0, which claims nothing) and `high` is not. Whatever
    # `low` ends as is a valid bound even if p were not monotone in ε: it was rejected.
    low = 0.0
    for _ in range(_MAX_BISECTIONS):
        if high - low <= _EPSILON_TOLERANCE * max(1.0, high):
            break
        middle = (low + high) / 2
        if _p_value(canaries, guesses, correct, middle, delta) < level:
            low = middle
        else:
            high = middle
    return low


def one_run_epsilon_lower_bound(
    correct: int,
    guesses: int,
    canaries: int,
    *,
    delta: float = 0.0,
    confidence: float = 0.95,
) -> OneRunBound:
    """The one-run ε lower bound from counts: ``correct`` of ``guesses`` guesses about ``canaries``.

    Implements Algorithm 2 of Steinke, Nasr and Jagielski 2023 (NeurIPS): with β = 1 -
    ``confidence``, ``v = correct``, ``r = guesses`` and ``m = canaries``,

        ε_lb = sup { ε >= 0 : P[B >= v] + 2 m δ max_{1<=i<=v} P[v - i <= B < v] / i  <  β },
        B ~ Binomial(r, e^ε / (1 + e^ε)),

    which is, with probability at least ``confidence``, at most the ε of any (ε, δ)-DP guarantee
    the training algorithm has (see the module docstring for the theorem). At δ = 0 this is
    exactly ``logit`` of the one-sided Clopper-Pearson lower bound on ``v / r`` and does not
    depend on ``m``; at δ > 0 it is found by bisection to a relative 1e-10, always returning an ε
    that is rejected (so never above the supremum).

    **Assumptions**, all the theorem's: each canary was included independently with probability
    exactly 1/2; the guesses were computed from the trained model only (plus randomness
    independent of the coins), with the number of non-abstentions ``r`` fixed in advance; and the
    DP guarantee is with respect to adding or removing one example. ``r`` must not be chosen by
    looking at how many guesses would be correct: to try several, use :func:`one_run_audit`,
    which corrects for the tries.

    ``max_epsilon`` is the bound for ``correct == guesses``. Raises :class:`MetricsInputError`
    unless ``0 <= correct <= guesses <= canaries`` are integers with ``canaries >= 1``,
    ``confidence`` is in (0.5, 1) and ``delta`` in [0, 1).
    """
    delta, confidence = _check_settings(delta, confidence)
    canaries = check_count(canaries, "canaries")
    guesses = check_count(
        guesses, "guesses", minimum=0, maximum=canaries, why=" (at most `canaries`)"
    )
    correct = check_count(
        correct, "correct", minimum=0, maximum=guesses, why=" (at most `guesses`)"
    )
    level = 1 - confidence
    return OneRunBound(
        epsilon=_epsilon(int(canaries), guesses, correct, delta, level),
        confidence=confidence,
        delta=delta,
        guesses=guesses,
        correct=correct,
        canaries=int(canaries),
        max_epsilon=_epsilon(int(canaries), guesses, guesses, delta, level),
    )


# --- the audit from scores ------------------------------------------------------------------


def _check_canaries(scores: ArrayLike, included: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(scores as float64, included as bool)``; one entry per canary, at least one canary.

    Unlike an attack's scores, all canaries IN (or all OUT) is allowed: it is a possible
    outcome of the coins, and the bound stays valid.
    """
    return check_scores(scores, included, labels_name="included", require_both_classes=False)


def _guess_grid(canaries: int) -> list[tuple[int, int]]:
    """The (k_positive, k_negative) candidates of :data:`GUESS_FRACTIONS`, duplicates removed."""
    grid: list[tuple[int, int]] = []
    for fraction in GUESS_FRACTIONS:
        guesses = min(max(round(fraction * canaries), 1), canaries)
        # Balanced: half IN at the top, half OUT at the bottom.
        candidates = [((guesses + 1) // 2, guesses // 2)]
        # IN only (the paper's usual k_- = 0), unless it would guess IN on more than half.
        if 2 * guesses <= canaries:
            candidates.append((guesses, 0))
        grid.extend(pair for pair in candidates if pair not in grid)
    return grid


def guess_counts_to_try(
    canaries: int, k_positive: int | None, k_negative: int | None
) -> list[tuple[int, int]]:
    """The (k_positive, k_negative) pairs an audit tries: the given ones, or the fixed grid
    when both are None (then each is tested at a Bonferroni-corrected level by the caller)."""
    if k_positive is None and k_negative is None:
        return _guess_grid(canaries)
    positive, negative = (
        0 if value is None else check_count(value, name, minimum=0, maximum=canaries)
        for value, name in ((k_positive, "k_positive"), (k_negative, "k_negative"))
    )
    if not 1 <= positive + negative <= canaries:
        raise MetricsInputError(
            f"`k_positive + k_negative` must be in [1, {canaries}] (the number of canaries), "
            f"got {positive + negative}."
        )
    return [(positive, negative)]


def one_run_audit(
    scores: ArrayLike,
    included: ArrayLike,
    *,
    k_positive: int | None = None,
    k_negative: int | None = None,
    delta: float = 0.0,
    confidence: float = 0.95,
    seed: int = 0,
) -> OneRunBound:
    """The one-run audit: guess IN for the highest scores, OUT for the lowest, bound ε.

    ``scores[i]`` is the auditor's score of canary ``i`` (higher = more likely IN), computed from
    the trained model only; ``included[i]`` is canary ``i``'s recorded coin. The canaries are
    ranked by score, ties broken uniformly at random by ``numpy.random.default_rng(seed)`` (a
    rule such as "first index first" would leak the coins whenever the arrays are ordered by
    them, e.g. members first). The top ``k_positive`` are guessed IN, the bottom ``k_negative``
    OUT, the rest abstained on, and the correct guesses go to
    :func:`one_run_epsilon_lower_bound` (see it, and the module docstring, for the theorem).

    **Choice of the guesses** (the bound is only valid if it is not "the best of many tries"):

    - ``k_positive`` and/or ``k_negative`` given (a missing one counts as 0): that one choice, at
      the full ``confidence``. Fix them before looking at the scores.
    - both ``None`` (default): a grid fixed by the number of canaries ``m`` alone. For each
      fraction ``f`` of :data:`GUESS_FRACTIONS` (1 %, 2 %, 5 %, 10 %, 20 %, 50 %, 100 %) with
      ``r = max(1, round(f m))`` guesses, two candidates: balanced (``ceil(r/2)`` IN,
      ``floor(r/2)`` OUT) and, when ``r <= m/2``, IN only (``k_negative = 0``, as in most of the
      paper's experiments). Each of the ``G`` distinct candidates (at most 13, fewer where rounding
      merges two; ``candidates`` in the result) is bounded at
      level ``(1 - confidence) / G`` and the largest bound is returned; by the union bound all
      ``G`` hold together with probability at least ``confidence`` (Bonferroni). The grid covers
      a leaky model, where few confident guesses are best, and a nearly private one, where the
      bound comes from many slightly-better-than-chance guesses.

    ``max_epsilon`` is what this procedure could show at best: for a fixed choice, every guess
    correct; for the grid, the largest such value over the candidates at the corrected level.

    **Assumptions:** those of the theorem: each canary included independently with probability
    1/2 (the coins in ``included`` were drawn so, and nothing else about the canaries depends on
    them); the scores were computed from the trained model without the coins; ``seed`` and the
    guess counts were chosen without looking at the coins.

    Raises :class:`MetricsInputError` for bad inputs: ``scores`` a non-empty 1-D array of finite
    numbers, ``included`` booleans or 0/1 of the same length, ``k_positive`` and ``k_negative``
    non-negative integers with ``1 <= k_positive + k_negative <= m``, ``delta`` in [0, 1),
    ``confidence`` in (0.5, 1), ``seed`` a non-negative integer.
    """
    delta, confidence = _check_settings(delta, confidence)
    _check_seed(seed)
    score_array, included_array = _check_canaries(scores, included)
    canaries = len(score_array)

    grid = guess_counts_to_try(canaries, k_positive, k_negative)

    # Ascending by score; the random key only orders equal scores.
    tie_breaker = np.random.default_rng(seed).random(canaries)
    ranked_included = included_array[np.lexsort((tie_breaker, score_array))]
    # in_from_top[k]: IN canaries among the k highest; in_from_bottom[k]: among the k lowest.
    in_from_top = np.concatenate([[0], np.cumsum(ranked_included[::-1])])
    in_from_bottom = np.concatenate([[0], np.cumsum(ranked_included)])

    level = (1 - confidence) / len(grid)
    bounds = []
    for positive, negative in grid:
        guesses = positive + negative
        correct = int(in_from_top[positive]) + negative - int(in_from_bottom[negative])
        bounds.append(
            (
                _epsilon(canaries, guesses, correct, delta, level),
                _epsilon(canaries, guesses, guesses, delta, level),
                correct,
            )
        )
    # argmax takes the first maximum: ties go to the grid's order, not to a data-dependent rule.
    chosen = int(np.argmax([epsilon for epsilon, _, _ in bounds]))
    epsilon, _, correct = bounds[chosen]
    positive, negative = grid[chosen]
    return OneRunBound(
        epsilon=epsilon,
        confidence=confidence,
        delta=delta,
        guesses=positive + negative,
        correct=correct,
        canaries=canaries,
        max_epsilon=max(ceiling for _, ceiling, _ in bounds),
        k_positive=positive,
        k_negative=negative,
        candidates=len(grid),
    )
