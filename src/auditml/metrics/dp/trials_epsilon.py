"""Empirical ε from membership scores: a statistically valid lower bound.

The Gaussian-DP lower bound and estimate are in :mod:`auditml.metrics.dp.gdp`.

**The theorem.** Let ``M`` be an (ε, δ)-differentially private training algorithm and consider any
test that, from the trained model, guesses whether one example was in the training set. Write
FPR for the probability that it says "member" about a non-member and FNR for the probability that
it says "non-member" about a member. Then (Kairouz, Oh and Viswanath 2015, "The Composition
Theorem for Differential Privacy", ICML; the hypothesis-testing view of DP)

    1 - FNR <= e^ε · FPR + δ        and        1 - FPR <= e^ε · FNR + δ,

so every test gives ``ε >= max( ln((1 - δ - FNR) / FPR), ln((1 - δ - FPR) / FNR) )``. The rule
"member when score >= t" is such a test for every threshold ``t``. Jagielski, Ullman and Oprea
2020, "Auditing Differentially Private Machine Learning: How Private is Private SGD?" (NeurIPS)
and Nasr et al. 2021, "Adversary Instantiation: Lower Bounds for Differentially Private Machine
Learning" (IEEE S&P) turn this into an audit: replace FPR and FNR by one-sided Clopper-Pearson
upper confidence bounds computed from the observed counts, and the right-hand side is, with
probability at least ``1 - alpha``, at most the true ε.

**The threshold is chosen by a named strategy** (:mod:`auditml.metrics.dp.thresholds`). Taking the
best threshold on the same examples the bound is computed from, without correction, would make
the bound invalid: it is the best of many tries. :class:`~auditml.metrics.dp.thresholds.Split`
chooses on one part and bounds on the other; the Bonferroni strategies bound every candidate at
a level divided by their number, the corners of the ROC convex hull
(:class:`~auditml.metrics.dp.thresholds.BonferroniHull`, the default) or every distinct score.

Everything is numpy/scipy on (scores, is_member); the counts at every threshold come from one
sort (:func:`auditml.metrics.roc._roc_counts`), the Clopper-Pearson bounds from vectorised
``scipy.special.betainccinv`` (what ``scipy.stats.beta.isf`` computes, without importing
``scipy.stats``, a large part of an audit's start-up time).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from auditml.metrics.dp.thresholds import (
    DEFAULT_STRATEGY,
    ThresholdStrategy,
    as_threshold_strategy,
    choose_threshold,
    hull_corners,
)
from auditml.metrics.roc import MetricsInputError, _roc_counts, _shown, check_scores
from auditml.metrics.threshold import _check_seed

ThresholdPolicy = Literal["split", "bonferroni"]
"""The old names of threshold strategies (``policy=``), kept as aliases for one release:
``"split"`` is ``Split(seed=seed)``, ``"bonferroni"`` is ``BonferroniAllScores()``."""

_POLICIES: tuple[str, ...] = get_args(ThresholdPolicy)

BoundTail = Literal["member", "nonmember"]
"""Which test gave an ε lower bound: "member when the score is high" (the member tail) or
"non-member when the score is low" (the non-member tail); see :class:`EpsilonLowerBound`."""

# Pruning constants of _best_threshold (exactness does not depend on them, only speed): counts up
# to _EXACT_COUNTS get their exact Clopper-Pearson bound in a table; above it the table holds
# counts growing by a factor _GRID_GROWTH, and monotonicity brackets the counts in between.
_EXACT_COUNTS = 1000
_GRID_GROWTH = 1.002


@dataclass(frozen=True)
class EpsilonLowerBound:
    """An ε lower bound and the counts it was computed from.

    With probability at least ``1 - alpha`` (the confidence; over the audited examples, and the
    split under the split strategies) the training algorithm is not (ε', δ)-DP for any
    ε' < ``epsilon``. ``threshold_policy`` names the threshold strategy
    (:mod:`.thresholds`) and ``threshold_strategy`` holds its settings (``None`` in
    records written before strategies were types). ``threshold`` is the rule "member when score
    >= threshold" whose counts gave the bound: ``false_positives`` of ``negatives`` non-members
    predicted members and ``false_negatives`` of ``positives`` members predicted non-members.
    Under the split strategies these are counts on the evaluation part only (for
    ``"multi_split"``, of the split whose bound was reported); otherwise on all examples.
    ``candidates`` is the number of thresholds the level was divided among under the Bonferroni
    strategies (``None`` otherwise).
    ``epsilon == 0`` means the scores show no evidence against (0, δ)-DP at this confidence.

    ``tail`` says which of the two inequalities of the theorem gave the bound (:data:`BoundTail`):
    ``"member"`` when high scores flag members (``ln((1 - δ - FNR) / FPR)``, few non-members above
    the threshold), ``"nonmember"`` when low scores flag non-members (``ln((1 - δ - FPR) / FNR)``,
    few members below it: the reverse test); ``None`` when ``epsilon == 0`` (neither shows
    anything). A bound from the non-member tail is as valid as one from the member tail, and can
    exist while the ROC curve hugs the diagonal: a few non-members stand out, most members do not.
    """

    epsilon: float
    alpha: float
    delta: float
    method: str
    threshold_policy: str
    threshold: float
    false_positives: int
    negatives: int
    false_negatives: int
    positives: int
    tail: BoundTail | None = None
    threshold_strategy: dict[str, Any] | None = None
    candidates: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (finite numbers, strings, ``None``, and the strategy's settings)."""
        return asdict(self)


# --- settings -------------------------------------------------------------------------------


def _check_number(
    value: object, name: str, low: float, high: float, *, low_closed: bool, why: str = ""
) -> float:
    """``value`` as a float, or :class:`MetricsInputError` if it is not a number in the interval."""
    interval = f"{'[' if low_closed else '('}{low:g}, {high:g})"
    message = f"`{name}` must be in {interval}{why}, got {_shown(value)}."
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise MetricsInputError(message)
    number = float(value)
    inside_low = number >= low if low_closed else number > low
    if not (inside_low and number < high):  # NaN fails both comparisons
        raise MetricsInputError(message)
    return number


def _check_policy(policy: object) -> None:
    if policy not in _POLICIES:
        allowed = ", ".join(repr(name) for name in _POLICIES)
        raise MetricsInputError(f"`policy` must be one of {allowed}, got {_shown(policy)}.")


# --- Clopper-Pearson and the ε of one test ----------------------------------------------------


def _clopper_pearson_upper(count: np.ndarray, trials: int, level: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on a binomial rate, failing with probability <= level.

        u(k) = Beta quantile at 1 - level of Beta(k + 1, n - k)  for k < n,   u(n) = 1,

    the largest p with P(Binomial(n, p) <= k) >= level. Strictly increasing in k, and > 0.
    """
    count = np.asarray(count, dtype=np.int64)
    bound = np.ones(count.shape, dtype=np.float64)
    below = count < trials
    # isf(level) is ppf(1 - level) without rounding 1 - level when level is tiny (Bonferroni).
    bound[below] = special.betainccinv(count[below] + 1, trials - count[below], level)
    return bound


def _raw_epsilon(
    false_positive_rate: np.ndarray, false_negative_rate: np.ndarray, delta: float
) -> np.ndarray:
    """max(ln((1 - δ - FNR) / FPR), ln((1 - δ - FPR) / FNR)), -inf where both arguments are <= 0.

    Rates must be > 0 (Clopper-Pearson upper bounds always are). Not floored at 0: the pruning in
    :func:`_best_threshold` compares raw values.
    """
    with np.errstate(divide="ignore"):
        forward = np.log(np.maximum(1 - delta - false_negative_rate, 0)) - np.log(
            false_positive_rate
        )
        backward = np.log(np.maximum(1 - delta - false_positive_rate, 0)) - np.log(
            false_negative_rate
        )
    return np.maximum(forward, backward)


def _count_grid(trials: int, exact_counts: int, growth: float) -> np.ndarray:
    """0, 1, ..., exact_counts, then counts growing geometrically by ``growth``, then ``trials``."""
    dense = np.arange(min(trials, exact_counts) + 1, dtype=np.int64)
    if trials <= exact_counts:
        return dense
    steps = math.ceil(math.log(trials / exact_counts) / math.log(growth)) + 1
    sparse = np.ceil(exact_counts * growth ** np.arange(1, steps + 1)).astype(np.int64)
    return np.unique(np.concatenate([dense, np.minimum(sparse, trials), [trials]]))


def _bracketed_upper_bounds(
    count: np.ndarray, trials: int, level: float, exact_counts: int, growth: float
) -> tuple[np.ndarray, np.ndarray]:
    """Numbers ``low <= u(count) <= high`` from a table of u on a grid of counts (u increasing)."""
    grid = _count_grid(trials, exact_counts, growth)
    table = _clopper_pearson_upper(grid, trials, level)
    low = table[np.searchsorted(grid, count, side="right") - 1]
    high = table[np.searchsorted(grid, count, side="left")]
    return low, high


def _best_threshold(
    scores: np.ndarray,
    is_member: np.ndarray,
    level: float,
    objective: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    floor: float,
    hull_only: bool = False,
    exact_counts: int = _EXACT_COUNTS,
    growth: float = _GRID_GROWTH,
) -> tuple[float, float]:
    """(threshold, value) maximising ``max(objective(FPR_ub, FNR_ub), floor)`` over the scores
    (over the corners of the ROC curve's convex hull when ``hull_only``).

    ``FPR_ub`` and ``FNR_ub`` are the one-sided Clopper-Pearson upper bounds at ``level`` each,
    for the rule "member when score >= t" at every distinct score ``t``; ``objective`` must be
    non-increasing in both. Among equally good thresholds the highest is returned, and when no
    threshold beats ``floor`` that is the highest score, so the threshold is always finite.

    The result equals evaluating every threshold (the naive loop of the tests); only fewer
    ``beta.isf`` calls are made, which matters at 10^6 scores. The Clopper-Pearson bounds are
    increasing in the counts, so bracketing each count between two tabulated counts brackets each
    threshold's value between ``lower`` and ``upper``. A threshold whose ``upper`` is below the
    best ``lower`` cannot be the maximum; the rest (few) are computed exactly.
    """
    counts = _roc_counts(scores, is_member)
    # Finite thresholds only: +inf (nobody a member) proves nothing, like the lowest score.
    points = hull_corners(counts)[1:] if hull_only else np.arange(1, len(counts.thresholds))
    thresholds = counts.thresholds[points]
    false_positives = counts.false_positives[points]
    false_negatives = counts.members - counts.true_positives[points]
    fpr_low, fpr_high = _bracketed_upper_bounds(
        false_positives, counts.nonmembers, level, exact_counts, growth
    )
    fnr_low, fnr_high = _bracketed_upper_bounds(
        false_negatives, counts.members, level, exact_counts, growth
    )
    upper = objective(fpr_low, fnr_low)
    lower = objective(fpr_high, fnr_high)
    # Every maximiser above the floor has upper >= its value >= max(lower), and upper > floor.
    candidates = np.flatnonzero((upper >= lower.max()) & (upper > floor))
    exact = objective(
        _clopper_pearson_upper(false_positives[candidates], counts.nonmembers, level),
        _clopper_pearson_upper(false_negatives[candidates], counts.members, level),
    )
    if not candidates.size or exact.max() <= floor:
        return float(thresholds[0]), floor
    # Candidates are in order of decreasing threshold; argmax takes the first maximum.
    best = int(np.argmax(exact))
    return float(thresholds[candidates[best]]), float(exact[best])


def _gaussian_mu(false_positive_rate: np.ndarray, false_negative_rate: np.ndarray) -> np.ndarray:
    """Φ⁻¹(1 - FPR) - Φ⁻¹(FNR): the μ of the Gaussian curve through (FPR, FNR).

    ``special.ndtri`` is Φ⁻¹ itself (what ``stats.norm.ppf`` calls), without the argument
    handling of the ``stats`` calls; Φ⁻¹(1 - p) = -Φ⁻¹(p) avoids rounding 1 - p.
    """
    return -special.ndtri(false_positive_rate) - special.ndtri(false_negative_rate)


@dataclass(frozen=True)
class _OutcomeCounts:
    false_positives: int
    negatives: int
    false_negatives: int
    positives: int


def _counts_at(scores: np.ndarray, is_member: np.ndarray, threshold: float) -> _OutcomeCounts:
    predicted_member = scores >= threshold
    return _OutcomeCounts(
        false_positives=int(predicted_member[~is_member].sum()),
        negatives=int((~is_member).sum()),
        false_negatives=int((~predicted_member[is_member]).sum()),
        positives=int(is_member.sum()),
    )


def _bound_at(counts: _OutcomeCounts, delta: float, level: float) -> float:
    raw = _raw_epsilon(
        _clopper_pearson_upper(np.array([counts.false_positives]), counts.negatives, level),
        _clopper_pearson_upper(np.array([counts.false_negatives]), counts.positives, level),
        delta,
    )
    return max(float(raw[0]), 0.0)


def _tail_at(counts: _OutcomeCounts, delta: float, level: float) -> BoundTail | None:
    """Which of the two terms of :func:`_raw_epsilon` is the bound at these counts (None: 0)."""
    fpr = _clopper_pearson_upper(np.array([counts.false_positives]), counts.negatives, level)
    fnr = _clopper_pearson_upper(np.array([counts.false_negatives]), counts.positives, level)
    with np.errstate(divide="ignore"):
        forward = float((np.log(np.maximum(1 - delta - fnr, 0)) - np.log(fpr))[0])
        backward = float((np.log(np.maximum(1 - delta - fpr, 0)) - np.log(fnr))[0])
    if max(forward, backward) <= 0:
        return None
    return "member" if forward >= backward else "nonmember"


def epsilon_bound_tail(bound: Mapping[str, Any]) -> BoundTail | None:
    """The tail of a recorded bound (:meth:`EpsilonLowerBound.to_dict`), also for records written
    before the tail was recorded.

    Older records hold the counts, ``alpha``, ``delta`` and the policy; under ``"split"`` the level
    of each rate was ``alpha / 2``, so the tail follows from them as :func:`epsilon_lower_bound`
    found it. Under ``"bonferroni"`` the level depended on the number of distinct scores, which
    the record lacks: None, as for a bound of 0 or a record that is malformed.
    """
    recorded = bound.get("tail")
    if recorded in get_args(BoundTail):
        return recorded  # type: ignore[no-any-return]
    if "tail" in bound or bound.get("threshold_policy") != "split":
        return None
    try:
        counts = _OutcomeCounts(*(int(bound[key]) for key in (
            "false_positives", "negatives", "false_negatives", "positives")))
        alpha, delta = float(bound["alpha"]), float(bound["delta"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < alpha < 1 and 0 <= delta < 1 and counts.negatives > 0 and counts.positives > 0
            and 0 <= counts.false_positives <= counts.negatives
            and 0 <= counts.false_negatives <= counts.positives):
        return None
    return _tail_at(counts, delta, alpha / 2)


# --- the lower bound ------------------------------------------------------------------------


def resolve_alpha(confidence: float | None, alpha: float | None, *, stacklevel: int = 3
                  ) -> float:
    """``1 - confidence`` (default 0.95), or the deprecated ``alpha`` itself with a
    :class:`DeprecationWarning`: the one knob of every bound is ``confidence``."""
    if alpha is not None:
        if confidence is not None:
            raise MetricsInputError("Pass `confidence` or its old name `alpha` (= 1 - confidence), "
                                    "not both.")
        warnings.warn("`alpha` is deprecated: pass `confidence=1 - alpha`.", DeprecationWarning,
                      stacklevel=stacklevel)
        return _check_number(alpha, "alpha", 0.0, 0.5, low_closed=False)
    confidence = 0.95 if confidence is None else confidence
    confidence = _check_number(confidence, "confidence", 0.5, 1.0, low_closed=False)
    # 1 - 0.95 is 0.050000000000000044 in floats; records and reports show alpha as given.
    return round(1 - confidence, 15)


def _resolve_settings(
    confidence: float | None, alpha: float | None, threshold: object, policy: object,
    seed: int | None,
) -> tuple[float, ThresholdStrategy]:
    """(alpha, strategy) from the settings and their deprecated aliases ``alpha`` and ``policy``."""
    alpha = resolve_alpha(confidence, alpha, stacklevel=4)
    if policy is not None:
        if threshold is not None:
            raise MetricsInputError("Pass `threshold` or its old name `policy`, not both.")
        warnings.warn("`policy` is deprecated: pass `threshold=Split(seed=...)` or another "
                      "strategy of auditml.metrics.dp.thresholds.", DeprecationWarning,
                      stacklevel=3)
        _check_policy(policy)
        threshold = policy
    if seed is not None:
        _check_seed(seed)
    if threshold is None:
        return alpha, DEFAULT_STRATEGY
    return alpha, as_threshold_strategy(threshold, seed=0 if seed is None else seed)


def epsilon_lower_bound(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    delta: float = 0.0,
    confidence: float | None = None,
    threshold: ThresholdStrategy | str | None = None,
    seed: int | None = None,
    alpha: float | None = None,
    policy: ThresholdPolicy | None = None,
) -> EpsilonLowerBound:
    """A lower bound on ε, valid with probability at least ``confidence``, from membership scores.

    **Bound at one threshold.** Write ``alpha = 1 - confidence``. For the rule "member when
    score >= t", let FP of the N non-members be predicted members and FN of the P members
    predicted non-members. The one-sided Clopper-Pearson upper bounds, each failing with
    probability at most ``alpha / 2``,

        FPR_ub = Beta(FP + 1, N - FP) quantile at 1 - alpha/2   (1 when FP = N),
        FNR_ub = Beta(FN + 1, P - FN) quantile at 1 - alpha/2   (1 when FN = P),

    hold together with probability at least ``1 - alpha`` (Clopper and Pearson 1934). If the
    training algorithm is (ε, δ)-DP, every test satisfies ``1 - FNR <= e^ε FPR + δ`` and
    ``1 - FPR <= e^ε FNR + δ`` (Kairouz et al. 2015), hence on that event

        ε >= ε_lb = max( ln((1 - δ - FNR_ub) / FPR_ub),  ln((1 - δ - FPR_ub) / FNR_ub),  0 ),

    where a logarithm of a non-positive number counts as no evidence (0). This is the audit of
    Jagielski et al. 2020 (NeurIPS) and Nasr et al. 2021 (IEEE S&P).

    **Assumptions.** Each member's and each non-member's test outcome is an independent draw with
    the same FPR (resp. FNR), i.e. the audited examples are i.i.d. canaries whose membership does
    not depend on the scores, and ``delta`` is the δ of the claim being audited. The
    bound is about the training algorithm on these canaries, not about any particular dataset.
    Higher scores must mean "member": only the rules "member when score >= t" are tried, so an
    attack whose members score lower shows ε = 0 until its scores are negated.

    **Threshold strategy** (``threshold``, a :class:`~auditml.metrics.dp.thresholds.
    ThresholdStrategy`; each type's docstring says why its bound is valid):

    - ``BonferroniHull()`` (default): all examples; the corners of the ROC convex hull are the
      candidates, each at level ``alpha / m`` for ``m`` corners (less the two ends, which prove
      nothing); the largest ``ε_lb`` is returned. Justified asymptotically and by simulation,
      not by a union bound over a fixed set (see the class).
    - ``BonferroniAllScores()``: the same over every distinct score (m - 1 of them).
    - ``Split(fraction, seed)``: choose on ``fraction`` of the examples (stratified), bound at
      that one threshold on the rest at level ``alpha``.
    - ``MultiSplit(splits, fraction, seed)``: the upper median of ``splits`` split bounds at
      ``alpha / 2`` each.
    - ``Explicit(threshold)``: the bound at a threshold fixed in advance, on all examples.

    Among equally good thresholds the highest is chosen; a threshold with too few counts has a
    loose ε_lb and is not chosen, where a point estimate would be infinite. Never "the best
    threshold on the same data without correction".

    **Old names**, accepted for one release: ``alpha`` (= 1 - ``confidence``) and ``policy``
    (``"split"`` = ``Split(seed=seed)``, ``"bonferroni"`` = ``BonferroniAllScores()``); both
    warn. ``threshold`` also accepts a strategy's name (:func:`~auditml.metrics.dp.thresholds.
    available`), with ``seed`` for the split strategies.

    Raises :class:`MetricsInputError` for bad inputs: ``confidence`` must be in (0.5, 1)
    (``alpha`` in (0, 0.5)), ``delta`` in [0, 1), ``threshold`` a strategy or its name,
    ``seed`` a non-negative integer; the split strategies need 2 members and 2 non-members on
    each side.
    """
    alpha, strategy = _resolve_settings(confidence, alpha, threshold, policy, seed)
    delta = _check_number(delta, "delta", 0.0, 1.0, low_closed=True)
    checked_scores, checked_members = check_scores(scores, is_member)
    objective = partial(_raw_epsilon, delta=delta)

    def find_best(
        some_scores: np.ndarray, some_members: np.ndarray, level: float, hull_only: bool
    ) -> tuple[float, float]:
        return _best_threshold(some_scores, some_members, level / 2, objective, floor=0.0,
                               hull_only=hull_only)

    def bound_at(
        some_scores: np.ndarray, some_members: np.ndarray, at: float, level: float
    ) -> float:
        return _bound_at(_counts_at(some_scores, some_members, at), delta, level / 2)

    choice = choose_threshold(
        strategy, checked_scores, checked_members, alpha, find_best=find_best, bound_at=bound_at
    )
    counts = _counts_at(checked_scores[choice.evaluated], checked_members[choice.evaluated],
                        choice.threshold)
    tail = _tail_at(counts, delta, choice.level / 2) if choice.value > 0 else None
    return EpsilonLowerBound(
        epsilon=choice.value,
        alpha=alpha,
        delta=delta,
        method="clopper_pearson",
        threshold_policy=strategy.name,
        threshold=choice.threshold,
        false_positives=counts.false_positives,
        negatives=counts.negatives,
        false_negatives=counts.false_negatives,
        positives=counts.positives,
        tail=tail,
        threshold_strategy=strategy.to_dict(),
        candidates=choice.candidates,
    )
