"""How a bound that searches for a threshold chooses it: threshold strategies as types.

A bound computed at one fixed threshold ``t`` (the rule "member when score >= t") fails with
probability at most its level. A bound at the threshold that looks best on the same examples is
the best of many tries, and fails more often. Every bound that searches a threshold therefore
takes a :class:`ThresholdStrategy`, which says how the search is paid for:

- :class:`BonferroniHull` (the default): all examples, the corners of the ROC curve's convex hull
  as candidates, the level divided by their number (Jagielski et al. 2020 search the thresholds
  with a Bonferroni correction; the restriction to the hull's corners is the choice of Google's
  ``jax_privacy`` auditing module). Not a union bound over a fixed set; see its docstring.
- :class:`BonferroniAllScores`: every distinct score a candidate, the level divided by their
  number (what ``policy="bonferroni"`` meant). Valid by an argument over counts; weak at large n.
- :class:`Split`: choose on one part of the examples, bound on the rest.
- :class:`MultiSplit`: the median of :class:`Split` bounds over many random splits, each at half
  the level (Meinshausen, Meier and Bühlmann 2009).
- :class:`Explicit`: a threshold the user fixed before seeing the scores.

Strategies are frozen dataclasses: settings only, no state. :func:`as_threshold_strategy` maps the
old policy names (``"split"``, ``"bonferroni"``) onto them. The search itself is
:func:`choose_threshold`, shared by the bounds: each bound supplies how to find its best threshold
on some examples at a level, and how to bound at one threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

from auditml.metrics.roc import MetricsInputError, _roc_counts, _RocCounts, check_count
from auditml.metrics.threshold import _check_seed, _check_splittable

# The vectorised hull pass removes every locally non-convex point at once; a handful of passes
# shrinks 10^6 ROC points to a few hundred, which the exact linear-time scan then finishes.
_VECTORISED_HULL_PASSES = 12


class ThresholdStrategy:
    """Base class of the threshold strategies; subclasses are frozen dataclasses with a ``name``.

    ``name`` is what a record stores (``threshold_policy``); :meth:`to_dict` adds the settings.
    """

    name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"name": ..., **settings}``."""
        return {"name": self.name, **asdict(self)}  # type: ignore[call-overload]


@dataclass(frozen=True)
class BonferroniHull(ThresholdStrategy):
    """All examples; candidates are the corners of the ROC curve's convex hull; level / corners.

    **Why the hull.** Every ε bound searched here is increasing in the true-positive count and
    decreasing in the false-positive count of a rule, and of the form "how steeply the ROC curve
    rises from a fixed point": ``ln((TPR - δ) / FPR)`` is the slope of the line from (0, δ) to the
    point (FPR, TPR), and the non-member tail is the same picture rotated by 180 degrees, which
    maps the upper-left hull onto itself. The steepest line from a point outside the hull touches
    it at a corner, so for the observed rates the best threshold is always a corner; corners are
    few (a handful, against one candidate per distinct score), so each gets a much larger share
    of the level than under :class:`BonferroniAllScores`.

    **What is, and is not, proved.** The corners are chosen by looking at the labels, so this is
    not the union bound over a set fixed in advance, and their number ``m`` is random: the
    guarantee "fails with probability at most ``level``" is not a theorem here. The argument is
    asymptotic: the bound can only fail where the empirical ROC curve sticks out above the true
    one, the hull's corners are exactly where it sticks out most, and the number of corners of a
    random walk's concave majorant grows like ``log n``, like the ``sqrt(2 log log n)`` standard
    deviations by which an empirical process exceeds its mean somewhere (Darling and Erdős
    1956). Splitting the level over both rates (``level / (2 m)`` each) adds a margin. Google's
    ``jax_privacy`` auditing module uses it as its default without a proof. Assumptions: those of
    the bound (i.i.d. canaries), and enough examples of each class for the normal approximation
    (hundreds); the simulations in ``tests/metrics/test_reference_auditing.py`` find at most
    ``level`` failures on Gaussian mechanisms with a known curve, including ε = 0. The margin is
    smallest when one class is much larger than the other (there the two-rate split adds little):
    with ε = 0 and 50 members against 10,000 non-members, 3.9 % of 1,000 draws failed at level
    5 % (0.1 % with 1,000 of each). Use :class:`MultiSplit` or :class:`Split` when a proof is
    required.
    """

    name: ClassVar[str] = "bonferroni_hull"


@dataclass(frozen=True)
class BonferroniAllScores(ThresholdStrategy):
    """All examples; every distinct score is a candidate; level / (distinct scores - 1).

    Valid without an asymptotic argument in two cases: scores whose possible values are fixed in
    advance and all appear (e.g. 0/1 answers: a union bound over a fixed set), and scores without
    ties: then a rate bound with a given count fails at *some* threshold with probability at most
    its level (by the order statistics of the scores, the worst threshold with count ``k`` is
    just above an order statistic, whose rate is Beta-distributed exactly as Clopper-Pearson
    assumes), and the ``n`` possible counts of the two rates give a total of at most
    ``n level / (2 (n - 1)) <= level``. Since this covers every threshold at once, any choice
    among them is valid; the price is a level divided by ``n``.
    """

    name: ClassVar[str] = "bonferroni"


@dataclass(frozen=True)
class Split(ThresholdStrategy):
    """Choose the threshold on ``fraction`` of the examples, bound on the rest, at the full level.

    The split is stratified by membership and depends on ``is_member`` and ``seed`` only, so the
    evaluation part is independent of the choice and the one-threshold bound holds as it is
    (exactly valid). ``fraction`` in (0, 1); each part needs 2 members and 2 non-members. With
    ``fraction = 0.5`` the split is the one of
    :func:`~auditml.metrics.threshold.calibrated_accuracy`.
    """

    name: ClassVar[str] = "split"
    fraction: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class MultiSplit(ThresholdStrategy):
    """The median of :class:`Split` bounds over ``splits`` random splits, each at level / 2.

    **Why it is valid** (Meinshausen, Meier and Bühlmann 2009, "p-Values for High-Dimensional
    Regression", JASA, Theorem 3.1 with γ = 1/2). Each split's bound exceeds the true ε with
    probability at most ``level / 2``, so the expected fraction of splits whose bound exceeds it
    is at most ``level / 2``, and by Markov's inequality the probability that at least half of
    them do is at most ``level``. The reported value is the ``ceil(splits / 2)``-th largest split
    bound (the upper median), which exceeds the true ε only when at least half the splits do.
    Less variable than one split, and uses every example for both roles across splits; costs
    ``splits`` searches.
    """

    name: ClassVar[str] = "multi_split"
    splits: int = 100
    fraction: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class Explicit(ThresholdStrategy):
    """One threshold, fixed before the scores were seen: the bound at it, on all examples.

    Valid as the one-threshold bound is, provided ``threshold`` really did not depend on these
    scores (e.g. chosen on other runs, or a constant of the attack).
    """

    name: ClassVar[str] = "explicit"
    threshold: float = 0.0


STRATEGIES: tuple[type[ThresholdStrategy], ...] = (
    BonferroniHull,
    BonferroniAllScores,
    Split,
    MultiSplit,
    Explicit,
)
"""Every strategy type; their ``name`` values are what records store."""

DEFAULT_STRATEGY: ThresholdStrategy = BonferroniHull()


def available() -> tuple[str, ...]:
    """The names of the strategies, as records store them and :func:`as_threshold_strategy`
    accepts them."""
    return tuple(kind.name for kind in STRATEGIES)


def as_threshold_strategy(value: object, *, seed: int = 0) -> ThresholdStrategy:
    """``value`` as a strategy: a :class:`ThresholdStrategy` is returned (checked) as it is; a
    name (``"split"``, ``"bonferroni"``, ... see :func:`available`) gives that strategy with its
    default settings and ``seed`` where it has one (the old ``policy=`` names and their seed)."""
    if isinstance(value, ThresholdStrategy):
        _check_strategy(value)
        return value
    for kind in STRATEGIES:
        if value == kind.name:
            names = {field.name for field in fields(kind)}  # type: ignore[arg-type]
            strategy = kind(seed=seed) if "seed" in names else kind()  # type: ignore[call-arg]
            _check_strategy(strategy)
            return strategy
    allowed = ", ".join(repr(name) for name in available())
    raise MetricsInputError(
        f"`threshold` must be a ThresholdStrategy (BonferroniHull(), Split(...), ...) or one of "
        f"{allowed}, got {value!r}."
    )


def _check_strategy(strategy: ThresholdStrategy) -> None:
    if isinstance(strategy, (Split, MultiSplit)):
        fraction = strategy.fraction
        if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                or not 0 < fraction < 1):
            raise MetricsInputError(
                f"`{type(strategy).__name__}.fraction` must be in (0, 1), got {fraction!r}.")
        _check_seed(strategy.seed)
    if isinstance(strategy, MultiSplit):
        check_count(strategy.splits, "MultiSplit.splits")
    if isinstance(strategy, Explicit):
        threshold = strategy.threshold
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number))
                or not math.isfinite(float(threshold))):
            raise MetricsInputError(
                f"`Explicit.threshold` must be a finite number, got {threshold!r}.")


# --- the ROC convex hull --------------------------------------------------------------------


def _turns(x: np.ndarray, y: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Cross products at the inner kept points; < 0 is a strict right turn (a corner)."""
    dx, dy = np.diff(x[keep]), np.diff(y[keep])
    # Exact in int64 while the counts stay below 2^31 (each product < 2^62).
    return dx[:-1] * dy[1:] - dy[:-1] * dx[1:]


def hull_corners(counts: _RocCounts) -> np.ndarray:
    """Indices (increasing) of the ROC points that are strict corners of the curve's upper hull.

    The points ``(false_positives[k], true_positives[k])`` of :func:`~auditml.metrics.roc.
    _roc_counts` run from (0, 0) to (N, P), both coordinates non-decreasing. A point is kept when
    it lies strictly above the segment joining its neighbours on the hull; collinear points are
    dropped, and the two end points are always kept.
    """
    x, y = counts.false_positives, counts.true_positives
    keep = np.arange(len(x))
    for _ in range(_VECTORISED_HULL_PASSES):
        if len(keep) <= 2:
            return keep
        corner = _turns(x, y, keep) < 0
        if corner.all():
            return keep
        keep = keep[np.concatenate([[True], corner, [True]])]
    # A linear scan (Andrew's monotone chain) over what is left, exact whatever the shape.
    hull: list[int] = []
    for index in keep.tolist():
        while len(hull) >= 2:
            first, middle = hull[-2], hull[-1]
            cross = (int(x[middle]) - int(x[first])) * (int(y[index]) - int(y[middle])) - (
                int(y[middle]) - int(y[first])) * (int(x[index]) - int(x[middle]))
            if cross < 0:
                break
            hull.pop()
        hull.append(index)
    return np.array(hull, dtype=np.int64)


def candidate_count(scores: np.ndarray, is_member: np.ndarray, hull_only: bool) -> int:
    """Thresholds that can give a bound: the hull's corners or the distinct scores, less those
    at +inf and at the lowest score (everyone one class: FPR or FNR is 1, which proves nothing)."""
    if hull_only:
        return len(hull_corners(_roc_counts(scores, is_member))) - 2
    return len(np.unique(scores)) - 1


# --- splits and the shared search -----------------------------------------------------------


def stratified_split(
    is_member: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (choice, evaluation) indices, ``fraction`` of each class (rounded up) for choosing.

    Depends on ``is_member``, ``fraction`` and ``seed`` only; ``fraction = 0.5`` gives the halves
    of :func:`auditml.metrics.threshold._stratified_halves` for the same seed.
    """
    rng = np.random.default_rng(seed)
    choice, evaluation = [], []
    for group in (np.flatnonzero(is_member), np.flatnonzero(~is_member)):
        shuffled = rng.permutation(group)
        cut = min(max(math.ceil(len(shuffled) * fraction), 1), len(shuffled) - 1)
        choice.append(shuffled[:cut])
        evaluation.append(shuffled[cut:])
    return np.sort(np.concatenate(choice)), np.sort(np.concatenate(evaluation))


def _check_split_sizes(is_member: np.ndarray, fraction: float) -> None:
    """Raise unless each side of the split gets a member and a non-member."""
    _check_splittable(is_member)
    for count, label in ((int(is_member.sum()), "members"),
                         (int((~is_member).sum()), "non-members")):
        if math.ceil(count * fraction) >= count:
            raise MetricsInputError(
                f"`fraction` {fraction:g} leaves no {label} to evaluate on ({count} {label}); "
                "use a smaller fraction or more examples."
            )


@dataclass(frozen=True)
class ThresholdChoice:
    """What :func:`choose_threshold` found: the threshold, the bound's value, the level it was
    computed at, the indices of the examples it was computed on, and the number of candidates
    the level was divided among (``None`` when it was not divided)."""

    threshold: float
    value: float
    level: float
    evaluated: np.ndarray
    candidates: int | None


FindBest = Callable[[np.ndarray, np.ndarray, float, bool], tuple[float, float]]
"""(scores, is_member, level, hull_only) -> (threshold, value): the best threshold at ``level``
among all distinct scores, or among the hull's corners when ``hull_only``."""

BoundAt = Callable[[np.ndarray, np.ndarray, float, float], float]
"""(scores, is_member, threshold, level) -> the bound at one threshold."""


def choose_threshold(
    strategy: ThresholdStrategy,
    scores: np.ndarray,
    is_member: np.ndarray,
    level: float,
    *,
    find_best: FindBest,
    bound_at: BoundAt,
) -> ThresholdChoice:
    """Apply ``strategy`` to a bound: the threshold, and the bound's value at total ``level``.

    Inputs are already checked (:func:`~auditml.metrics.roc.check_scores`) and ``strategy`` too
    (:func:`as_threshold_strategy`).
    """
    everyone = np.arange(len(scores))
    if isinstance(strategy, Explicit):
        threshold = float(strategy.threshold)
        return ThresholdChoice(threshold, bound_at(scores, is_member, threshold, level), level,
                               everyone, None)
    if isinstance(strategy, (BonferroniHull, BonferroniAllScores)):
        hull_only = isinstance(strategy, BonferroniHull)
        candidates = max(candidate_count(scores, is_member, hull_only), 1)
        threshold, value = find_best(scores, is_member, level / candidates, hull_only)
        return ThresholdChoice(threshold, value, level / candidates, everyone, candidates)
    if isinstance(strategy, (Split, MultiSplit)):
        _check_split_sizes(is_member, strategy.fraction)

        def one_split(seed: int, split_level: float) -> ThresholdChoice:
            choice, evaluation = stratified_split(is_member, strategy.fraction, seed)
            threshold, _ = find_best(scores[choice], is_member[choice], split_level, False)
            value = bound_at(scores[evaluation], is_member[evaluation], threshold, split_level)
            return ThresholdChoice(threshold, value, split_level, evaluation, None)

        if isinstance(strategy, Split):
            return one_split(strategy.seed, level)
        seeds = np.random.default_rng(strategy.seed).integers(
            0, np.iinfo(np.int64).max, size=strategy.splits)
        results = [one_split(int(seed), level / 2) for seed in seeds]
        # Stable sort by value, descending: the ceil(S/2)-th largest (the upper median).
        order = sorted(range(len(results)), key=lambda i: -results[i].value)
        return results[order[math.ceil(len(results) / 2) - 1]]
    raise MetricsInputError(f"`threshold` must be a ThresholdStrategy, got {strategy!r}.")
