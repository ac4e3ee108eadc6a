"""Is a recorded TPR at a low FPR a measurement or noise? Tests on the counts an audit records.

A report may call an attack's highest-scoring members "exposed", or name the run that "leaks
most", only if the figure behind the claim is beyond sampling noise. These functions decide that
from what ``audit/<attack>.json`` already holds: the TPR at an FPR target, and the numbers of
members and non-members audited. Nothing is recomputed from scores.

**The rate at the threshold.** :func:`~auditml.metrics.roc.tpr_at_fpr` takes the lowest threshold
``t`` at which at most ``k = ⌊fpr · N⌋`` of the ``N`` non-members score ``>= t``: ``t`` depends on
the non-members' scores only (just above the ``(k + 1)``-th largest). With continuous scores (no
ties at ``t``), the true FPR of that rule, ``q = P(non-member score >= t)``, is the mass above
the ``(k + 1)``-th largest of ``N`` draws: ``q ~ Beta(k + 1, N − k)``. The one-sided
Clopper-Pearson upper bound of ``k`` out of ``N`` at ``level`` is the ``1 − level`` quantile of
exactly that Beta, so ``q`` exceeds it with probability ``level`` (Clopper and Pearson 1934;
the order-statistic form: David and Nagaraja 2003, §2.2). Given ``t``, the ``P`` members' count
above it is Binomial(P, TPR(t)), and its one-sided Clopper-Pearson bounds cover ``TPR(t)`` with
probability ``1 − level``.

**Chance.** An attack at chance (scores independent of membership) has ``TPR(t) = q``; with
``level = alpha / 2`` for each side, "members' lower bound > non-members' upper bound" happens
with probability at most ``alpha`` under chance (:func:`tpr_above_chance`).

**Two runs.** Each run's TPR was measured at its own threshold, whose true FPR ``q`` is random
(above); without an assumption on the ROC curves no test can compare them (a curve that jumps
near the target makes the measured TPR anything from 0 to 1). :func:`tpr_exceeds` assumes the
ROC curves ``R`` are concave (as a likelihood-ratio attack's are; Neyman-Pearson), so that
``R(f) / f`` does not increase: then ``R(fpr) >= R(q) · min(1, fpr / q)`` and
``R(fpr) <= R(q) · max(1, fpr / q)``. With ``q`` bracketed by the quantiles of its Beta law and
``R(q)`` by Clopper-Pearson, four events at ``alpha / 4`` each give bounds on both runs'
``R(fpr)``; "the first's lower bound > the second's upper bound" is then wrong with probability
at most ``alpha``. This is conservative: with a few hundred non-members, TPR at 1% FPR ranks
runs only when they differ a lot.

Naming one run as the leakiest among several is an intersection-union test (Berger 1982): it
must beat chance and exceed every other run, each test at ``alpha``, and the claim is then wrong
with probability at most ``alpha`` (:func:`leakiest_beyond_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from auditml.metrics.dp.trials_epsilon import _check_number, _clopper_pearson_upper
from auditml.metrics.roc import MetricsInputError, check_count

NOISE_CONFIDENCE = 0.95
"""The confidence of every test here unless told otherwise (``alpha = 1 − confidence`` below): a
claim is wrong at most 5 % of the time. ``confidence`` is the knob's name in every metric."""


def _successes(rate: object, trials: int, name: str) -> int:
    """The count behind a recorded rate (``rate · trials`` is an integer up to rounding)."""
    checked = _check_number(rate, name, 0.0, 1.0 + 1e-12, low_closed=True)
    return min(round(checked * trials), trials)


def clopper_pearson_lower(count: int, trials: int, level: float) -> float:
    """One-sided Clopper-Pearson lower bound on a binomial rate, failing with probability <= level.

        l(k) = Beta quantile at ``level`` of Beta(k, n − k + 1)  for k > 0,   l(0) = 0,

    the smallest p with P(Binomial(n, p) >= k) >= level.
    """
    if count <= 0:
        return 0.0
    return float(special.betaincinv(count, trials - count + 1, level))


def clopper_pearson_upper(count: int, trials: int, level: float) -> float:
    """One-sided Clopper-Pearson upper bound (1 when ``count == trials``); see
    :func:`clopper_pearson_lower`."""
    return float(_clopper_pearson_upper(np.array([count]), trials, level)[0])


def _level(confidence: float) -> float:
    """``alpha / 2`` for ``alpha = 1 − confidence``."""
    return (1 - _check_number(confidence, "confidence", 0.5, 1.0, low_closed=False)) / 2


def tpr_above_chance(
    tpr: float, fpr: float, members: int, nonmembers: int, *, confidence: float = NOISE_CONFIDENCE
) -> bool:
    """Whether a recorded TPR at the FPR target ``fpr`` is beyond what an attack at chance shows.

    True when the one-sided Clopper-Pearson lower bound on the TPR (``round(tpr · members)`` of
    ``members``) exceeds the upper bound on the threshold's true FPR (``⌊fpr · nonmembers⌋`` of
    ``nonmembers``), each at ``alpha / 2``: under chance, True with probability at most
    ``alpha = 1 − confidence``
    (module docstring). False says "within noise", not "no leakage".
    """
    members = check_count(members, "members")
    nonmembers = check_count(nonmembers, "nonmembers")
    target = _check_number(fpr, "fpr", 0.0, 1.0, low_closed=False)
    level = _level(confidence)
    false_positives = math.floor(target * nonmembers + 1e-9)
    return clopper_pearson_lower(_successes(tpr, members, "tpr"), members, level) > (
        clopper_pearson_upper(false_positives, nonmembers, level)
    )


def _threshold_fpr_quantile(false_positives: int, nonmembers: int, level: float) -> float:
    """The ``level`` quantile of the threshold's true FPR, ``Beta(k + 1, N − k)`` (docstring)."""
    return float(special.betaincinv(false_positives + 1, nonmembers - false_positives, level))


def _tpr_at_target_bounds(
    tpr: float, fpr: float, members: int, nonmembers: int, level: float, name: str
) -> tuple[float, float]:
    """Bounds on a concave ROC curve at ``fpr`` from the TPR measured at the threshold of
    :func:`~auditml.metrics.roc.tpr_at_fpr`; each side fails with probability <= 2 · level."""
    members = check_count(members, f"{name}members")
    nonmembers = check_count(nonmembers, f"{name}nonmembers")
    false_positives = math.floor(fpr * nonmembers + 1e-9)
    true_positives = _successes(tpr, members, f"{name}tpr")
    fpr_high = _threshold_fpr_quantile(false_positives, nonmembers, 1 - level)
    fpr_low = _threshold_fpr_quantile(false_positives, nonmembers, level)
    lower = clopper_pearson_lower(true_positives, members, level) * min(1.0, fpr / fpr_high)
    upper = clopper_pearson_upper(true_positives, members, level) * max(1.0, fpr / fpr_low)
    return lower, min(upper, 1.0)


def tpr_exceeds(
    tpr: float, members: int, nonmembers: int,
    other_tpr: float, other_members: int, other_nonmembers: int, *,
    fpr: float, confidence: float = NOISE_CONFIDENCE,
) -> bool:
    """Whether one audit's TPR at the FPR target ``fpr`` is beyond noise above another's
    (independent audits, concave ROC curves; module docstring).

    True when the lower bound on the first curve at ``fpr`` exceeds the upper bound on the
    second's: when the first's true TPR at ``fpr`` is at most the second's, True with probability
    at most ``1 − confidence``.
    """
    target = _check_number(fpr, "fpr", 0.0, 1.0, low_closed=False)
    level = _level(confidence) / 2
    lower, _ = _tpr_at_target_bounds(tpr, target, members, nonmembers, level, "")
    _, upper = _tpr_at_target_bounds(other_tpr, target, other_members, other_nonmembers, level,
                                     "other_")
    return lower > upper


def leakiest_beyond_noise(
    tprs: Sequence[float], fpr: float, members: Sequence[int], nonmembers: Sequence[int], *,
    confidence: float = NOISE_CONFIDENCE,
) -> int | None:
    """The index of the audit whose TPR at ``fpr`` is beyond noise above chance *and* above every
    other's, or None when no audit is (then none may be called the leakiest).

    An intersection-union test (module docstring): the index returned is wrong — its TPR is at
    chance or not above some other's — with probability at most ``1 − confidence``.
    """
    if not len(tprs) == len(members) == len(nonmembers):
        raise MetricsInputError(
            f"`tprs`, `members` and `nonmembers` must have one entry per audit, got "
            f"{len(tprs)}, {len(members)} and {len(nonmembers)}."
        )
    if not tprs:
        return None
    top = max(range(len(tprs)), key=lambda index: tprs[index])
    if not tpr_above_chance(tprs[top], fpr, members[top], nonmembers[top], confidence=confidence):
        return None
    if all(tpr_exceeds(tprs[top], members[top], nonmembers[top], tprs[other], members[other],
                       nonmembers[other], fpr=fpr, confidence=confidence)
           for other in range(len(tprs)) if other != top):
        return top
    return None
