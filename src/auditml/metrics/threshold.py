"""Turning scores into yes/no membership guesses with an explicit threshold-selection policy.

A threshold chosen on the same examples it is then scored on is the best of many tries: its
balanced accuracy is ``(1 + advantage) / 2``, which exceeds 0.5 by O(1/sqrt(n)) even for an attack
whose scores carry no signal. The policy here never does that: the threshold is chosen on one half
of the examples (calibration) and its accuracy is measured on the other half (evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError, _roc_counts, _scaled_gaps, check_scores

# Each half of the split needs a member and a non-member for its TPR and TNR to exist.
MIN_PER_CLASS = 2


@dataclass(frozen=True)
class CalibratedAccuracy:
    """A threshold chosen on the calibration half and its balanced accuracy on the evaluation half.

    ``threshold`` is always finite; "member" is predicted when ``score >= threshold``.
    """

    threshold: float
    accuracy: float
    calibration_size: int
    evaluation_size: int


def _best_threshold(scores: np.ndarray, is_member: np.ndarray) -> float:
    counts = _roc_counts(scores, is_member)
    # Skip point 0 (threshold +inf, nobody a member): its balanced accuracy, 0.5, is matched by
    # the last point (everybody a member), so dropping it never lowers the maximum and keeps the
    # threshold finite (and JSON-safe).
    # argmax takes the first maximum: among equally good thresholds, the highest one.
    best = 1 + int(np.argmax(_scaled_gaps(counts)[1:]))
    return float(counts.thresholds[best])


def best_threshold(scores: ArrayLike, is_member: ArrayLike) -> float:
    """The threshold maximising balanced accuracy on the given examples.

        balanced accuracy(t) = (TPR(t) + TNR(t)) / 2 = (1 + TPR(t) - FPR(t)) / 2

    with "member" predicted when ``score >= t``. Candidates are the distinct scores (the finite
    thresholds of :func:`auditml.metrics.roc.roc_curve`); among equally good ones the highest is
    returned, so the result is one of the scores and always finite.

    This is an in-sample choice: measure its accuracy on other examples
    (:func:`calibrated_accuracy`), never on these.
    """
    return _best_threshold(*check_scores(scores, is_member))


def _balanced_accuracy(scores: np.ndarray, is_member: np.ndarray, threshold: float) -> float:
    predicted_member = scores >= threshold
    true_positive_rate = predicted_member[is_member].mean()
    true_negative_rate = (~predicted_member[~is_member]).mean()
    return float((true_positive_rate + true_negative_rate) / 2)


def _stratified_halves(is_member: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (calibration, evaluation) indices; depends on ``is_member`` and ``seed`` only."""
    rng = np.random.default_rng(seed)
    calibration, evaluation = [], []
    for group in (np.flatnonzero(is_member), np.flatnonzero(~is_member)):
        shuffled = rng.permutation(group)
        # With an odd count the calibration half gets the extra example.
        cut = (len(shuffled) + 1) // 2
        calibration.append(shuffled[:cut])
        evaluation.append(shuffled[cut:])
    return np.sort(np.concatenate(calibration)), np.sort(np.concatenate(evaluation))


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MetricsInputError(f"`seed` must be a non-negative integer, got {seed!r}.")


def _check_splittable(is_member: np.ndarray) -> None:
    """Raise unless both classes can be split into two non-empty halves."""
    members = int(is_member.sum())
    nonmembers = len(is_member) - members
    if members < MIN_PER_CLASS or nonmembers < MIN_PER_CLASS:
        raise MetricsInputError(
            f"`is_member` must contain at least {MIN_PER_CLASS} members and {MIN_PER_CLASS} "
            f"non-members to split into calibration and evaluation halves, got {members} members "
            f"and {nonmembers} non-members."
        )


def _calibrated_accuracy(
    scores: np.ndarray, is_member: np.ndarray, seed: int
) -> CalibratedAccuracy:
    _check_seed(seed)
    _check_splittable(is_member)
    calibration, evaluation = _stratified_halves(is_member, seed)
    threshold = _best_threshold(scores[calibration], is_member[calibration])
    return CalibratedAccuracy(
        threshold=threshold,
        accuracy=_balanced_accuracy(scores[evaluation], is_member[evaluation], threshold),
        calibration_size=len(calibration),
        evaluation_size=len(evaluation),
    )


def calibrated_accuracy(
    scores: ArrayLike, is_member: ArrayLike, *, seed: int
) -> CalibratedAccuracy:
    """Balanced accuracy of a threshold chosen on held-out examples (a split-halves policy).

    The policy, in full:

    1. Split the examples into two halves, separately within members and within non-members
       (stratified), by a permutation drawn from ``numpy.random.default_rng(seed)``. The split
       depends on ``is_member`` and ``seed`` only, never on the scores. With an odd count in a
       class, the calibration half gets the extra example.
    2. On the calibration half, choose the threshold maximising balanced accuracy
       (:func:`best_threshold`: the highest of the best distinct scores).
    3. On the evaluation half, report that threshold's balanced accuracy,
       ``(TPR + TNR) / 2`` with "member" predicted when ``score >= threshold``.

    Balanced accuracy weighs members and non-members equally, so 0.5 is chance whatever the class
    ratio. Because the evaluation half plays no part in the choice, the result is an unbiased
    estimate of the chosen threshold's accuracy, unlike the in-sample ``(1 + advantage) / 2``.
    The price is noise: half the examples choose, half measure. Needs at least 2 members and 2
    non-members, so that each half has one of each.
    """
    return _calibrated_accuracy(*check_scores(scores, is_member), seed)
