"""Testing a claimed privacy curve with many independent observations (many-runs audits).

**The theorem.** A mechanism is f-DP (Dong, Roth and Su 2019, "Gaussian Differential Privacy")
when every test of "the example was in" against "it was out" has false-negative rate
``FNR >= f(FPR)``, where ``f`` is the claimed trade-off function (convex, continuous,
non-increasing, ``f(α) <= 1 − α``). Given independent observations — e.g. K training runs, each
with one canary included by a fair coin, scored after training (Nasr et al. 2023, "Tight Auditing of
Differentially Private Machine Learning") — fix the rule "IN when score >= t". With one-sided
Clopper-Pearson upper bounds ``FPR_u`` and ``FNR_u`` that each fail with probability at most α/2,
with probability at least 1 − α both hold, and then a claim that is true satisfies

    FNR_u >= FNR >= f(FPR) >= f(FPR_u)            (f non-increasing).

So ``FNR_u < f(FPR_u)`` rejects the claim at confidence 1 − α. The threshold must not be chosen
on the observations it is tested on: it is chosen on a stratified half (as
:func:`auditml.metrics.epsilon_lower_bound` does with ``threshold=Split()``) to maximise
``f(FPR) − FNR``, and tested on the other half.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.epsilon import _clopper_pearson_upper
from auditml.metrics.roc import MetricsInputError, _roc_counts, check_scores
from auditml.metrics.threshold import _check_seed, _check_splittable, _stratified_halves

Tradeoff = Callable[[np.ndarray], np.ndarray]
"""A claimed trade-off function ``f``: FPR values in, the smallest FNR the claim allows out."""


@dataclass(frozen=True)
class ClaimTest:
    """The outcome of :func:`tradeoff_claim_test`.

    ``violation`` is True when, with confidence ``confidence``, the observations contradict the
    claimed curve. ``false_positive_upper`` and ``false_negative_upper`` are the Clopper-Pearson
    bounds at ``threshold`` on the evaluation half, ``allowed_false_negative`` is
    ``f(false_positive_upper)``: the claim is rejected when the FNR bound is below it.
    """

    violation: bool
    confidence: float
    threshold: float
    false_positive_upper: float
    false_negative_upper: float
    allowed_false_negative: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tradeoff_claim_test(
    scores: ArrayLike,
    is_member: ArrayLike,
    tradeoff: Tradeoff,
    *,
    alpha: float = 0.05,
    seed: int = 0,
) -> ClaimTest:
    """Test the claim "the mechanism is ``tradeoff``-DP" with independent (score, in/out) pairs;
    see the module docstring for the theorem."""
    values, membership = check_scores(scores, is_member)
    _check_seed(seed)
    _check_splittable(membership)
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise MetricsInputError(f"`alpha` must be in (0, 1), got {alpha!r}.")
    calibration, evaluation = _stratified_halves(membership, seed)
    threshold = _best_threshold(values[calibration], membership[calibration], tradeoff)
    test_scores, test_members = values[evaluation], membership[evaluation]
    positives, negatives = int(test_members.sum()), int((~test_members).sum())
    false_positives = int((test_scores[~test_members] >= threshold).sum())
    false_negatives = int((test_scores[test_members] < threshold).sum())
    fpr_upper = float(_clopper_pearson_upper(np.array([false_positives]), negatives, alpha / 2)[0])
    fnr_upper = float(_clopper_pearson_upper(np.array([false_negatives]), positives, alpha / 2)[0])
    allowed = float(np.asarray(tradeoff(np.array([fpr_upper])), dtype=np.float64)[0])
    return ClaimTest(
        violation=fnr_upper < allowed,
        confidence=1 - alpha,
        threshold=threshold,
        false_positive_upper=fpr_upper,
        false_negative_upper=fnr_upper,
        allowed_false_negative=allowed,
    )


def _best_threshold(scores: np.ndarray, is_member: np.ndarray, tradeoff: Tradeoff) -> float:
    """The threshold whose (FPR, FNR) lies furthest below the claimed curve on these scores."""
    counts = _roc_counts(scores, is_member)
    fpr = counts.false_positives / counts.nonmembers
    fnr = 1.0 - counts.true_positives / counts.members
    gap = np.asarray(tradeoff(fpr), dtype=np.float64) - fnr
    return float(counts.thresholds[int(np.argmax(gap))])
