"""The one-run f-DP audit of Mahloujifar, Melis and Chaudhuri: test a whole claimed privacy curve.

Mahloujifar, Melis and Chaudhuri 2024, "Auditing f-Differential Privacy in One Run" (ICML 2025,
arXiv:2410.22235).

**Setting** (as in :mod:`auditml.metrics.dp.one_run_epsilon`). ``m`` canaries are each included
independently with probability 1/2; from the trained model alone the auditor guesses IN or OUT on
``k`` of them (abstaining on the rest) and ``W`` of the guesses are right. The hypothesis is that
the training algorithm is ``f``-DP for a symmetric trade-off curve ``f``
(:class:`~auditml.metrics.dp.tradeoff.TradeoffCurve`), e.g. the curve its accountant claims.

**The theorem** (their bound for the guessing game with abstention and two choices per canary;
the recursion is the one their code calls ``audit_rh_with_cap``, also in jax_privacy and Meta's
PrivacyGuard. The statement and proof sketch below are ours: the paper's full text was not at
hand to cite its numbering). Write ``f̄^{-1}(y) = f(1 - y)``. For ``τ in (0, 1]`` and ``c >= 1``
set ``r_c = τ c / m``, ``h_c = τ (k - c) / m`` and, for ``i = c - 1, ..., 0``,

    h_i = max(h_{i+1}, f̄^{-1}(r_{i+1})),      r_i = r_{i+1} + i / (k - i) · (h_i - h_{i+1}).

If the algorithm is ``f``-DP and ``r_0 + h_0 > k / m``, then ``P[W >= c] < τ``.

*Why.* Pick a canary ``j`` uniformly. With ``R_i = P[j guessed right, W >= i]`` and
``H_i = P[j guessed wrong, W >= i]``: flipping ``j``'s coin turns the event "guess on ``j`` is
IN and the other guesses have ``>= i`` right" from "right, ``W >= i + 1``" into "wrong,
``W >= i``", and ``f``-DP (in both directions, then Jensen, as ``f̄^{-1}`` is convex) gives
``H_i >= f̄^{-1}(R_{i+1})``; ``H_i >= H_{i+1}``; the outcomes with exactly ``i`` right add
right and wrong guesses in the ratio ``i : (k - i)``; and ``R_0 + H_0 = k / m``. If
``P[W >= c] >= τ``, moving the mass above ``c`` down to ``c`` keeps every constraint below
``c``, and by induction ``H_i >= h_i`` and ``R_i - r_i >= i / (k - i) (H_i - h_i) >= 0``, so
``r_0 + h_0 <= k / m``. The same induction shows ``r_0 + h_0`` is non-decreasing in ``τ``, in
``c`` and in ``f̄^{-1}``, so each test below is monotone and its rejection region well formed.

*What it costs.* The Jensen step averages over all ``m`` canaries, guessed or not, so a curve
with a curved tail (Gaussian, PRV) is tested weakly when few of many canaries are guessed on,
and weakly at small ``τ``; a linear tail (pure ε-DP) loses nothing there.

**The audit.** At level β = 1 - confidence, "the algorithm is ``f``-DP" is rejected when the
recursion at ``τ = β`` ends above ``k / m``: that happens with probability below β when the claim
holds (the rejected counts are ``{W >= c*}``, and ``P[W >= c*] < β``). The p-value is the
smallest such ``τ``. The ε lower bound at δ is the largest ε whose (ε, δ)-DP curve is rejected
(by multisection; any rejected ε is a valid bound since (ε₀, δ)-DP implies (ε, δ)-DP for
ε >= ε₀). At δ = 0 it equals Steinke et al.'s bound when every guess is right and is at most
0.02 below it otherwise; at δ > 0 it has no ``2 m δ`` term, and is larger with many canaries.

Numerics: the recursion is run on numpy vectors, one entry per hypothesis (ε, τ or count), and
stops as soon as every entry has exceeded ``k / m`` or stopped changing (then it never changes
again). The comparison with ``k / m`` keeps a relative margin of 1e-9 against rounding, in the
direction that only ever keeps a claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.dp.one_run_epsilon import (
    OneRunBound,
    _check_canaries,
    _check_settings,
    guess_counts_to_try,
)
from auditml.metrics.dp.tradeoff import TradeoffCurve
from auditml.metrics.roc import MetricsInputError, check_count
from auditml.metrics.threshold import _check_seed

Inverse = Callable[[np.ndarray], np.ndarray]

_MARGIN = 1e-9
# The ε search covers [0, _EPSILON_CEILING]; an audit of m canaries cannot show much above ln m.
_EPSILON_CEILING = 60.0
# p-values are searched in log10 τ over [_LOG_P_FLOOR, 0]; smaller ones are reported as 10^floor.
_LOG_P_FLOOR = -300.0
_SECTIONS = 32
_PASSES = 5

METHOD = "mahloujifar_melis_chaudhuri_2024"
"""The ``method`` of the :class:`OneRunBound` this module computes."""


def _rejects(
    inverse: Inverse, correct: ArrayLike, guesses: int, canaries: int, level: ArrayLike
) -> np.ndarray:
    """Whether ``f``-DP is rejected at level ``τ = level``: the theorem's recursion, vectorised.

    ``correct`` and ``level`` broadcast together; ``inverse`` maps an array of that shape
    elementwise (one hypothesis per entry).
    """
    counts, levels = np.broadcast_arrays(np.asarray(correct), np.asarray(level, dtype=float))
    r = levels * counts / canaries
    h = levels * (guesses - counts) / canaries
    bound = guesses / canaries * (1 + _MARGIN)
    lowest = int(counts.min())
    for i in range(int(counts.max()) - 1, -1, -1):
        raised = np.maximum(h, inverse(r))
        if i >= lowest:
            raised = np.where(counts > i, raised, h)  # entries with c <= i start later
        growth = raised - h
        if i < lowest and not np.any(growth > 0):
            break  # every entry at a fixed point: h and r stay as they are
        r = r + growth * (i / (guesses - i))
        h = raised
        if np.all(r + h > bound):
            break
    return np.asarray(r + h > bound)


def _approximate_dp_inverse(epsilons: np.ndarray, delta: float) -> Inverse:
    """``f_{ε,δ}(1 - y)`` with one ε per entry of ``y`` (``epsilons`` has ``y``'s shape)."""
    e_plus, e_minus = np.exp(epsilons), np.exp(-epsilons)

    def inverse(y: np.ndarray) -> np.ndarray:
        y = np.clip(y, 0.0, 1.0)
        return np.maximum(np.maximum(e_minus * (y - delta), 1 - delta - e_plus * (1 - y)), 0.0)

    return inverse


def _epsilon_bounds(
    correct: np.ndarray, guesses: int, canaries: int, delta: float, level: float
) -> np.ndarray:
    """For each count, the largest ε in [0, ceiling] (to ~1e-6) whose (ε, δ) curve is rejected."""
    low = np.zeros(len(correct))  # 0 claims nothing; every later `low` was rejected
    high = np.full(len(correct), _EPSILON_CEILING)
    fractions = np.linspace(0.0, 1.0, _SECTIONS + 1)
    for _ in range(_PASSES):
        grid = low[:, None] + (high - low)[:, None] * fractions
        rejected = _rejects(
            _approximate_dp_inverse(grid, delta), correct[:, None], guesses, canaries, level
        )
        # Rejection is monotone in ε (a larger ε gives a smaller f̄^{-1}), so it is a prefix.
        last = rejected.sum(axis=1) - 1
        rows = np.arange(len(correct))
        new_low = np.where(last >= 0, grid[rows, np.maximum(last, 0)], low)
        high = np.where(last + 1 <= _SECTIONS, grid[rows, np.minimum(last + 1, _SECTIONS)], high)
        low = new_low
    return low


def _p_value(inverse: Inverse, correct: int, guesses: int, canaries: int, level: float) -> float:
    """The smallest τ at which the claim is rejected (1.0 if none), ``level`` exactly on the grid,
    so that ``p <= level`` exactly when the claim is rejected at ``level``."""
    if not _rejects(inverse, correct, guesses, canaries, 1.0):
        return 1.0
    low, high = _LOG_P_FLOOR, 0.0
    for step in range(_PASSES):
        grid = np.linspace(low, high, _SECTIONS + 1)
        if step == 0:
            grid = np.union1d(grid, [np.log10(level)])
        rejected = _rejects(inverse, correct, guesses, canaries, 10.0**grid)
        first = int(np.argmax(rejected)) if rejected.any() else len(grid) - 1
        if first == 0:
            return float(10.0 ** grid[0])
        low, high = float(grid[first - 1]), float(grid[first])
    return float(10.0**high)


def _allowed_correct(inverse: Inverse, guesses: int, canaries: int, level: float) -> int:
    """The most correct guesses out of ``guesses`` that the curve allows at ``level``."""
    low, high = 0, guesses + 1  # `low` is never rejected (c = 0 never is), `high` always is
    while high - low > 1:
        middle = (low + high) // 2
        if _rejects(inverse, middle, guesses, canaries, level):
            high = middle
        else:
            low = middle
    return low


@dataclass(frozen=True)
class FDPClaimTest:
    """The test of "the algorithm is ``f``-DP" for a claimed curve ``claim``.

    ``violation`` is true when the claim is rejected at ``confidence``; it is wrong with
    probability at most ``1 - confidence`` (over the canaries' coins) when the claim holds.
    ``p_value`` bounds the probability of at least ``correct`` right guesses under the claim
    (Bonferroni-adjusted by ``candidates``, capped at 1); ``violation == (p_value <= 1 -
    confidence)``. ``allowed_correct`` is the most right guesses out of ``guesses`` the claim
    allows at the (corrected) level: the audit sees a violation above it.
    """

    violation: bool
    p_value: float
    confidence: float
    correct: int
    guesses: int
    canaries: int
    allowed_correct: int
    claim: str
    k_positive: int | None = None
    k_negative: int | None = None
    candidates: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (numbers, booleans, and ``None`` for an unknown IN/OUT split)."""
        return asdict(self)


def _check_counts(correct: object, guesses: object, canaries: object) -> tuple[int, int, int]:
    checked_canaries = check_count(canaries, "canaries")
    checked_guesses = check_count(
        guesses, "guesses", minimum=0, maximum=checked_canaries, why=" (at most `canaries`)"
    )
    if checked_guesses < 1:
        raise MetricsInputError("`guesses` must be at least 1, got 0.")
    checked_correct = check_count(
        correct, "correct", minimum=0, maximum=checked_guesses, why=" (at most `guesses`)"
    )
    return checked_correct, checked_guesses, checked_canaries


def _check_curve(curve: object) -> TradeoffCurve:
    if not isinstance(curve, TradeoffCurve):
        raise MetricsInputError(
            "`claim` must be a TradeoffCurve (see auditml.metrics.dp.tradeoff: claimed_tradeoff, "
            f"gaussian_tradeoff, approximate_dp_tradeoff), got {type(curve).__name__}."
        )
    return curve


def fdp_claim_test(
    claim: TradeoffCurve, correct: int, guesses: int, canaries: int, *, confidence: float = 0.95
) -> FDPClaimTest:
    """Test "the algorithm is ``claim``-DP" from counts fixed in advance (see the module
    docstring for the theorem). Raises :class:`MetricsInputError` unless ``0 <= correct <=
    guesses <= canaries`` are integers with ``guesses >= 1``, and ``confidence`` in (0.5, 1)."""
    curve = _check_curve(claim)
    _, confidence = _check_settings(0.0, confidence)
    correct, guesses, canaries = _check_counts(correct, guesses, canaries)
    level = 1 - confidence
    p_value = _p_value(curve.blow_up_inverse, correct, guesses, canaries, level)
    return FDPClaimTest(
        violation=p_value <= level,
        p_value=p_value,
        confidence=confidence,
        correct=correct,
        guesses=guesses,
        canaries=canaries,
        allowed_correct=_allowed_correct(curve.blow_up_inverse, guesses, canaries, level),
        claim=curve.source,
    )


def fdp_epsilon_lower_bound(
    correct: int, guesses: int, canaries: int, *, delta: float = 0.0, confidence: float = 0.95
) -> OneRunBound:
    """The f-DP one-run ε lower bound at ``delta`` from counts fixed in advance: the largest ε
    whose (ε, δ)-DP curve the test rejects, to about 1e-6. With probability at least
    ``confidence`` the algorithm is not (ε', δ)-DP for any ε' below it. Same checks as
    :func:`fdp_claim_test`, and ``delta`` in [0, 1)."""
    delta, confidence = _check_settings(delta, confidence)
    correct, guesses, canaries = _check_counts(correct, guesses, canaries)
    bounds = _epsilon_bounds(np.array([correct, guesses]), guesses, canaries, delta, 1 - confidence)
    return OneRunBound(
        epsilon=float(bounds[0]),
        confidence=confidence,
        delta=delta,
        guesses=guesses,
        correct=correct,
        canaries=canaries,
        max_epsilon=float(bounds[1]),
        method=METHOD,
    )


@dataclass(frozen=True)
class FDPAudit:
    """The one-run f-DP audit of a claimed curve from canary scores: the claim's test and the
    ε lower bound at ``epsilon_bound.delta``, each valid at its own ``confidence`` (not jointly;
    both together hold with probability at least ``1 - 2 (1 - confidence)``)."""

    claim_test: FDPClaimTest
    epsilon_bound: OneRunBound

    @property
    def violation(self) -> bool:
        """Whether the claimed curve was rejected."""
        return self.claim_test.violation

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"claim_test": {...}, "epsilon_bound": {...}}``."""
        return asdict(self)


def _guess_counts(
    scores: np.ndarray, included: np.ndarray, grid: list[tuple[int, int]], seed: int
) -> list[int]:
    """Correct guesses of each (k_positive, k_negative): IN on the top, OUT on the bottom."""
    tie_breaker = np.random.default_rng(seed).random(len(scores))
    ranked = included[np.lexsort((tie_breaker, scores))]
    in_from_top = np.concatenate([[0], np.cumsum(ranked[::-1])])
    in_from_bottom = np.concatenate([[0], np.cumsum(ranked)])
    return [
        int(in_from_top[positive]) + negative - int(in_from_bottom[negative])
        for positive, negative in grid
    ]


def fdp_audit(
    scores: ArrayLike,
    included: ArrayLike,
    claim: TradeoffCurve,
    *,
    delta: float,
    k_positive: int | None = None,
    k_negative: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> FDPAudit:
    """Audit a claimed trade-off curve in one run: IN on the highest scores, OUT on the lowest.

    ``scores``, ``included``, ``k_positive``, ``k_negative`` and ``seed`` mean what they mean in
    :func:`.one_run_epsilon.one_run_audit` (ties broken by ``seed``; higher = IN), and so
    does the choice of guesses: the given counts at the full ``confidence``, or, when both are
    ``None``, every candidate of its fixed grid (at most 13, fewer where rounding merges two;
    ``candidates`` in the result). **Bonferroni over the grid:**
    each of the ``G`` candidates is tested at level ``(1 - confidence) / G``; the claim is a
    violation if any candidate rejects it (the reported p-value is ``G`` times the smallest,
    from that candidate), and the ε bound at ``delta`` is the largest over the candidates. The
    grid matters: the theorem averages over canaries, so guessing on few of many canaries
    tests curves with a curved tail (Gaussian, PRV) only weakly; the 50 % and 100 % candidates
    carry most of the power there.

    Raises :class:`MetricsInputError` for bad inputs (as ``one_run_audit``; ``claim`` a
    :class:`TradeoffCurve`).
    """
    curve = _check_curve(claim)
    delta, confidence = _check_settings(delta, confidence)
    _check_seed(seed)
    score_array, included_array = _check_canaries(scores, included)
    canaries = len(score_array)
    grid = guess_counts_to_try(canaries, k_positive, k_negative)
    counts = _guess_counts(score_array, included_array, grid, seed)
    level = (1 - confidence) / len(grid)

    p_values = [
        _p_value(curve.blow_up_inverse, correct, positive + negative, canaries, level)
        for (positive, negative), correct in zip(grid, counts, strict=True)
    ]
    # argmin takes the first extreme: ties go to the grid's order, not to the data.
    tested = int(np.argmin(p_values))
    tested_guesses = sum(grid[tested])
    claim_test = FDPClaimTest(
        violation=p_values[tested] <= level,
        p_value=min(1.0, p_values[tested] * len(grid)),
        confidence=confidence,
        correct=counts[tested],
        guesses=tested_guesses,
        canaries=canaries,
        allowed_correct=_allowed_correct(curve.blow_up_inverse, tested_guesses, canaries, level),
        claim=curve.source,
        k_positive=grid[tested][0],
        k_negative=grid[tested][1],
        candidates=len(grid),
    )
    epsilon_bound = _best_epsilon_bound(grid, counts, canaries, delta, confidence)
    return FDPAudit(claim_test=claim_test, epsilon_bound=epsilon_bound)


def _best_epsilon_bound(
    grid: list[tuple[int, int]], counts: list[int], canaries: int, delta: float,
    confidence: float,
) -> OneRunBound:
    """The largest (ε, δ) bound over the candidates, each at level ``(1 - confidence) / G``."""
    level = (1 - confidence) / len(grid)
    epsilons, ceilings = [], []
    for (positive, negative), correct in zip(grid, counts, strict=True):
        bound, ceiling = _epsilon_bounds(
            np.array([correct, positive + negative]), positive + negative, canaries, delta, level
        )
        epsilons.append(float(bound))
        ceilings.append(float(ceiling))
    # argmax takes the first maximum: ties go to the grid's order, not to the data.
    bounded = int(np.argmax(epsilons))
    return OneRunBound(
        epsilon=epsilons[bounded],
        confidence=confidence,
        delta=delta,
        guesses=sum(grid[bounded]),
        correct=counts[bounded],
        canaries=canaries,
        max_epsilon=max(ceilings),
        k_positive=grid[bounded][0],
        k_negative=grid[bounded][1],
        candidates=len(grid),
        method=METHOD,
    )


def fdp_epsilon_audit(
    scores: ArrayLike,
    included: ArrayLike,
    *,
    delta: float = 0.0,
    k_positive: int | None = None,
    k_negative: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> OneRunBound:
    """The f-DP test's ε lower bound at ``delta`` from canary scores, with no claimed curve.

    The drop-in counterpart of :func:`.one_run_epsilon.one_run_audit` (same arguments,
    same guesses, same fixed grid with Bonferroni when both counts are ``None``): each
    candidate's bound is the largest ε whose (ε, δ)-DP curve the recursion of the module
    docstring rejects, and the largest over the candidates is returned. It holds for every
    (ε, δ)-DP algorithm (no assumption on the curve's family). Against Steinke et al.'s bound:
    at most 0.02 lower at δ = 0, and higher when ``2 m δ`` is not small, since it has no
    ``2 m δ`` term (on the ideal Gaussian at δ = 1e-4: 0.29 × the true ε instead of 0.16 × at
    m = 1000, 0.41 × instead of 0.16 × at m = 10⁴; ``benchmarks/one_run_ceiling.py``).

    Raises :class:`MetricsInputError` for bad inputs, as ``one_run_audit``.
    """
    delta, confidence = _check_settings(delta, confidence)
    _check_seed(seed)
    score_array, included_array = _check_canaries(scores, included)
    grid = guess_counts_to_try(len(score_array), k_positive, k_negative)
    counts = _guess_counts(score_array, included_array, grid, seed)
    return _best_epsilon_bound(grid, counts, len(score_array), delta, confidence)
