"""The ROC curve of a membership-inference attack and the numbers read off it.

An attack gives every audited example a membership score ``s_i`` (higher means "more likely a
member"); ``y_i`` says whether the example really was a member. Let ``P`` be the members and ``N``
the non-members. A threshold ``t`` predicts "member" exactly when ``s_i >= t``, so

    TPR(t) = |{i in P : s_i >= t}| / |P|,        FPR(t) = |{i in N : s_i >= t}| / |N|.

The candidate thresholds are ``+inf`` (nobody is predicted a member: the point (0, 0)) and every
distinct score. Examples with equal scores always fall on the same side of a threshold, so a group
of tied scores is one step of the curve, never split (no randomised tie-breaking).

Everything here is pure numpy: inputs are checked once by :func:`check_scores`, the curve is
computed once by a sort and cumulative sums, O(n log n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from auditml.errors import AuditMLError


class MetricsInputError(AuditMLError, ValueError):
    """Scores, membership labels or a metric's setting are unusable (shape, values, range)."""


@dataclass(frozen=True)
class RocCurve:
    """The full ROC curve, from (0, 0) at threshold ``+inf`` to (1, 1) at the lowest score.

    ``thresholds`` is strictly decreasing; point ``k`` is ``(fpr[k], tpr[k])`` for the rule
    "member when score >= thresholds[k]". Both ``fpr`` and ``tpr`` are non-decreasing.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class _RocCounts:
    # Counts, not rates, so that areas and comparisons can be done in exact integer arithmetic.
    false_positives: np.ndarray
    true_positives: np.ndarray
    thresholds: np.ndarray
    members: int
    nonmembers: int


def _array(values: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except ValueError as error:  # ragged nested lists
        raise MetricsInputError(f"`{name}` must be a 1-D array: {error}") from None


def _shown(value: object) -> str:
    """A value as an error message shows it: numbers plainly, anything else by ``repr``."""
    # str() of a numpy float is "0.7" where repr() is "np.float64(0.7)".
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(value)
    return repr(value)


def check_count(
    value: object,
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    why: str = "",
) -> int:
    """``value`` as an int, or :class:`MetricsInputError` unless it is an integer in
    ``[minimum, maximum]`` (no upper end when ``maximum`` is None).

    The one validator of every count in :mod:`auditml.metrics` (members, canaries, guesses,
    steps...). Booleans are refused although Python counts them as integers, and so are floats
    even when whole (``10.0``): a count is never a rounded number. The message names the
    argument: ``name`` in backticks (as given when it holds its own backticks, e.g.
    ``"`history[0]`'s steps"``), then "must be a positive integer" (``minimum=1``, no
    ``maximum``), "an integer >= m" or "an integer in [m, M]", then ``why`` (e.g.
    ``" (at most `guesses`)"``) and the value it got.
    """
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, np.integer))
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        if maximum is not None:
            wanted = f"an integer in [{minimum}, {maximum}]"
        elif minimum == 1:
            wanted = "a positive integer"
        else:
            wanted = f"an integer >= {minimum}"
        shown_name = name if "`" in name else f"`{name}`"
        raise MetricsInputError(f"{shown_name} must be {wanted}{why}, got {_shown(value)}.")
    return int(value)


def check_confidence(confidence: object) -> float:
    """``confidence`` as a float, or :class:`MetricsInputError` unless it is a number (Python's
    or numpy's, not a boolean) in (0, 1): the level of an interval or a bound."""
    if (
        isinstance(confidence, (bool, np.bool_))
        or not isinstance(confidence, (int, float, np.integer, np.floating))
        or not 0 < confidence < 1  # NaN fails too
    ):
        raise MetricsInputError(f"`confidence` must be in (0, 1), got {_shown(confidence)}.")
    return float(confidence)


def check_scores(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    labels_name: str = "is_member",
    require_both_classes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an attack's output and return ``(scores as float64, is_member as bool)``.

    ``scores`` must be a 1-D array of finite real numbers; ``is_member`` a 1-D array of the same
    length holding booleans or 0/1; there must be at least one member and one non-member (unless
    ``require_both_classes`` is False: then only at least one example). ``labels_name`` is the
    name errors use for ``is_member`` (the one-run audit calls it ``included``).
    Raises :class:`MetricsInputError` naming the offending argument.
    """
    score_array, member_array = _array(scores, "scores"), _array(is_member, labels_name)
    for name, array in (("scores", score_array), (labels_name, member_array)):
        if array.ndim != 1:
            raise MetricsInputError(
                f"`{name}` must be 1-D (one entry per example), got shape {array.shape}."
            )
    if len(score_array) != len(member_array):
        raise MetricsInputError(
            f"`scores` and `{labels_name}` must have the same length, got {len(score_array)} "
            f"and {len(member_array)}."
        )
    if score_array.dtype.kind not in "biuf":
        raise MetricsInputError(f"`scores` must be real numbers, got dtype {score_array.dtype}.")
    score_array = score_array.astype(np.float64)
    nan_count = int(np.isnan(score_array).sum())
    if nan_count:
        raise MetricsInputError(f"`scores` must be finite, got {nan_count} NaN values.")
    infinite_count = int(np.isinf(score_array).sum())
    if infinite_count:
        raise MetricsInputError(f"`scores` must be finite, got {infinite_count} infinite values.")

    if member_array.dtype.kind not in "biuf":
        raise MetricsInputError(
            f"`{labels_name}` must hold booleans or 0/1, got dtype {member_array.dtype}."
        )
    if member_array.dtype.kind != "b":
        # NaN is neither 0 nor 1, so it is caught here too.
        invalid = ~np.isin(member_array, (0, 1))
        if invalid.any():
            shown = ", ".join(str(value) for value in np.unique(member_array[invalid])[:5])
            raise MetricsInputError(
                f"`{labels_name}` must hold booleans or 0/1, got {int(invalid.sum())} other values "
                f"({shown})."
            )
    member_array = member_array.astype(bool)
    if not require_both_classes and len(member_array) == 0:
        raise MetricsInputError(f"`{labels_name}` must hold at least one example, got none.")
    members = int(member_array.sum())
    if require_both_classes and (members == 0 or members == len(member_array)):
        raise MetricsInputError(
            "`is_member` must contain at least one member and one non-member, got "
            f"{members} members and {len(member_array) - members} non-members."
        )
    return score_array, member_array


def _roc_counts(scores: np.ndarray, is_member: np.ndarray) -> _RocCounts:
    """The ROC curve as cumulative counts, for inputs already passed through check_scores."""
    # Sort once, descending. The order inside a tie does not matter because ties are collapsed,
    # so the unstable sort serves, and it is ~3x faster than a stable one at 10^6 scores.
    order = np.argsort(scores)[::-1]
    sorted_scores = scores[order]
    sorted_members = is_member[order]
    # The last position of every run of equal scores: lowering the threshold to that score
    # admits the whole run at once.
    run_ends = np.flatnonzero(np.diff(sorted_scores))
    run_ends = np.append(run_ends, len(sorted_scores) - 1)
    true_positives = np.cumsum(sorted_members, dtype=np.int64)[run_ends]
    false_positives = run_ends + 1 - true_positives
    zero = np.zeros(1, dtype=np.int64)
    return _RocCounts(
        false_positives=np.concatenate([zero, false_positives]),
        true_positives=np.concatenate([zero, true_positives]),
        thresholds=np.concatenate([[np.inf], sorted_scores[run_ends]]),
        members=int(true_positives[-1]),
        nonmembers=int(false_positives[-1]),
    )


def roc_curve(scores: ArrayLike, is_member: ArrayLike) -> RocCurve:
    """The full ROC curve: one point per distinct score, plus (0, 0) at threshold ``+inf``.

    Point ``k`` is ``(FPR(t_k), TPR(t_k))`` for the rule "member when score >= t_k", with the
    definitions in the module docstring. No point is dropped, so the curve has
    ``1 + (number of distinct scores)`` points and ends at (1, 1). Its points coincide with
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
    """
    counts = _roc_counts(*check_scores(scores, is_member))
    return RocCurve(
        fpr=counts.false_positives / counts.nonmembers,
        tpr=counts.true_positives / counts.members,
        thresholds=counts.thresholds,
    )


def _auc(counts: _RocCounts) -> float:
    # Trapezoids between consecutive points, in integer counts (exact up to 2^63): a tied run
    # contributes its diagonal, i.e. half credit for every tied member/non-member pair.
    width = np.diff(counts.false_positives)
    twice_height = counts.true_positives[1:] + counts.true_positives[:-1]
    twice_area = int(np.dot(width, twice_height))
    return twice_area / (2 * counts.members * counts.nonmembers)


def roc_auc(scores: ArrayLike, is_member: ArrayLike) -> float:
    """Area under the ROC curve, with ties counting one half.

        AUC = 1 / (|P| |N|) * sum over i in P, j in N of ( [s_i > s_j] + 1/2 [s_i = s_j] )

    where ``[.]`` is 1 when the condition holds and 0 otherwise. This is the probability that a
    random member outscores a random non-member (ties split evenly), i.e.
    the Mann-Whitney U statistic divided by ``|P| |N|``; 0.5 is chance. It equals the
    trapezoidal area under :func:`roc_curve`, which is how it is computed (O(n log n)).
    """
    return _auc(_roc_counts(*check_scores(scores, is_member)))


def _check_fprs(fprs: ArrayLike, name: str, ndim: int) -> np.ndarray:
    what = "a number" if ndim == 0 else "a 1-D sequence of numbers"
    try:
        array = np.asarray(fprs, dtype=np.float64)
    except (TypeError, ValueError):
        raise MetricsInputError(f"`{name}` must be {what}, got {fprs!r}.") from None
    if array.ndim != ndim:
        raise MetricsInputError(f"`{name}` must be {what}, got shape {array.shape}.")
    bad = array[~((array >= 0) & (array <= 1))]  # NaN fails both comparisons
    if bad.size:
        raise MetricsInputError(f"`{name}` must be in [0, 1], got {bad.flat[0]}.")
    return array


def _last_allowed(counts: _RocCounts, fprs: np.ndarray) -> np.ndarray:
    """Per target in ``fprs``, the index of the last point of the curve whose FPR is at most it.

    FPR and TPR are both non-decreasing along the curve, so that point has the largest TPR with
    FPR <= target; point 0 has FPR 0, so one always exists.
    """
    fpr = counts.false_positives / counts.nonmembers
    return np.searchsorted(fpr, fprs, side="right") - 1


def _tpr_at_fprs(counts: _RocCounts, fprs: np.ndarray) -> np.ndarray:
    return counts.true_positives[_last_allowed(counts, fprs)] / counts.members


def tpr_at_fprs(scores: ArrayLike, is_member: ArrayLike, fprs: Sequence[float]) -> np.ndarray:
    """:func:`tpr_at_fpr` for several FPR targets at once, computing the curve once.

    Returns a float array with one TPR per entry of ``fprs``, in the same order.
    """
    targets = _check_fprs(fprs, "fprs", ndim=1)
    return _tpr_at_fprs(_roc_counts(*check_scores(scores, is_member)), targets)


def tpr_at_fpr(scores: ArrayLike, is_member: ArrayLike, fpr: float) -> float:
    """The largest TPR among the ROC points whose FPR is at most ``fpr``.

        TPR@FPR(alpha) = max { TPR(t) : FPR(t) <= alpha }

    over the thresholds of :func:`roc_curve`, without interpolating between points: the
    convention of Carlini et al. 2022, "Membership Inference Attacks From First Principles"
    (IEEE S&P), who argue that an attack should be judged by how many members it identifies
    confidently, at low FPR, rather than by AUC.

    A tied group of scores is admitted or excluded as a whole. When ``fpr < 1 / |N|`` no
    non-member may be admitted at all, so only thresholds above every non-member count: the result
    is the fraction of members scoring strictly above the highest non-member score (often 0).
    Such a target is below what ``|N|`` non-members can resolve; report it with that caveat.
    """
    target = _check_fprs(fpr, "fpr", ndim=0)
    counts = _roc_counts(*check_scores(scores, is_member))
    return float(_tpr_at_fprs(counts, target.reshape(1))[0])


def _scaled_gaps(counts: _RocCounts) -> np.ndarray:
    """(TPR - FPR) * |P| * |N| at every point, as exact integers.

    Comparing the integers instead of float differences keeps exact ties tied (1/3 - 1/6 and
    2/3 - 1/2 can round differently), so "the first maximum" is well defined.
    """
    return counts.true_positives * counts.nonmembers - counts.false_positives * counts.members


def _advantage(counts: _RocCounts) -> float:
    # The (0, 0) point makes the maximum at least 0.
    return int(_scaled_gaps(counts).max()) / (counts.members * counts.nonmembers)


def advantage(scores: ArrayLike, is_member: ArrayLike) -> float:
    """The membership advantage: the best TPR − FPR over all thresholds, in [0, 1].

        Adv = max over t of TPR(t) - FPR(t)

    Yeom et al. 2018, "Privacy Risk in Machine Learning: Analyzing the Connection to Overfitting"
    (IEEE CSF), define the advantage of a membership adversary as TPR − FPR; this is its best
    value over the thresholds of :func:`roc_curve`. It equals the one-sided Kolmogorov-Smirnov
    distance between the non-member and member score distributions, and ``(1 + Adv) / 2`` is the
    best balanced accuracy on these same examples.

    Because the threshold is chosen on the data it is measured on, this is an optimistic,
    in-sample number (it exceeds 0 by O(1/sqrt(n)) even for scores that carry no signal); for an
    honest accuracy see :func:`auditml.metrics.threshold.calibrated_accuracy`.
    """
    return _advantage(_roc_counts(*check_scores(scores, is_member)))
