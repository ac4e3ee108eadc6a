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
on the observations it is tested on without paying for it: a threshold strategy
(:mod:`auditml.metrics.dp.thresholds`) says how, as for :func:`auditml.metrics.epsilon_lower_bound`.
The candidates maximise the margin ``f(FPR_u) − FNR_u``. Under the Bonferroni strategies the best
candidate is a corner of the ROC curve's convex hull, for observed rates: ``f`` is convex, so
along a hull segment ``f(FPR) + TPR`` is convex and largest at an end, and points below the hull
have a smaller TPR at the same FPR. :class:`~auditml.metrics.dp.thresholds.MultiSplit` rejects when
at least half of its splits reject at α/2 (the upper median of their margins is positive).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.dp.thresholds import (
    ThresholdStrategy,
    choose_threshold,
    hull_corners,
)
from auditml.metrics.dp.trials_epsilon import _clopper_pearson_upper, _resolve_settings
from auditml.metrics.roc import MetricsInputError, _roc_counts, check_scores

Tradeoff = Callable[[np.ndarray], np.ndarray]
"""A claimed trade-off function ``f``: FPR values in, the smallest FNR the claim allows out."""


@dataclass(frozen=True)
class ClaimTest:
    """The outcome of :func:`tradeoff_claim_test`.

    ``violation`` is True when, with confidence ``confidence``, the observations contradict the
    claimed curve. ``false_positive_upper`` and ``false_negative_upper`` are the Clopper-Pearson
    bounds at ``threshold`` on the examples the strategy tested on (the evaluation part under
    the split strategies), ``allowed_false_negative`` is ``f(false_positive_upper)``: the claim
    is rejected when the FNR bound is below it. ``threshold_strategy`` names the strategy and its
    settings (``None`` in records written before strategies were types).
    """

    violation: bool
    confidence: float
    threshold: float
    false_positive_upper: float
    false_negative_upper: float
    allowed_false_negative: float
    threshold_strategy: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tradeoff_claim_test(
    scores: ArrayLike,
    is_member: ArrayLike,
    tradeoff: Tradeoff,
    *,
    confidence: float | None = None,
    threshold: ThresholdStrategy | str | None = None,
    seed: int | None = None,
    alpha: float | None = None,
) -> ClaimTest:
    """Test the claim "the mechanism is ``tradeoff``-DP" with independent (score, in/out) pairs,
    at ``confidence`` (default 0.95), the threshold chosen by ``threshold`` (default
    :data:`~auditml.metrics.dp.thresholds.DEFAULT_STRATEGY`; a strategy's name takes ``seed``);
    see the module docstring for the theorem. ``alpha`` (= 1 - confidence) is the old name,
    accepted with a warning for one release."""
    alpha, strategy = _resolve_settings(confidence, alpha, threshold, None, seed)
    values, membership = check_scores(scores, is_member)
    checked_tradeoff = _checked_tradeoff(tradeoff)

    def upper_bounds(
        some_scores: np.ndarray, some_members: np.ndarray, at: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        predicted = some_scores[:, None] >= at[None, :]
        false_positives = predicted[~some_members].sum(axis=0)
        false_negatives = (~predicted[some_members]).sum(axis=0)
        return (_clopper_pearson_upper(false_positives, int((~some_members).sum()), level / 2),
                _clopper_pearson_upper(false_negatives, int(some_members.sum()), level / 2))

    def margin(fpr_upper: np.ndarray, fnr_upper: np.ndarray) -> np.ndarray:
        return checked_tradeoff(fpr_upper) - fnr_upper

    def find_best(
        some_scores: np.ndarray, some_members: np.ndarray, level: float, hull_only: bool
    ) -> tuple[float, float]:
        counts = _roc_counts(some_scores, some_members)
        points = hull_corners(counts)[1:] if hull_only else np.arange(1, len(counts.thresholds))
        fpr_upper = _clopper_pearson_upper(counts.false_positives[points], counts.nonmembers,
                                           level / 2)
        fnr_upper = _clopper_pearson_upper(counts.members - counts.true_positives[points],
                                           counts.members, level / 2)
        gaps = margin(fpr_upper, fnr_upper)
        best = int(np.argmax(gaps))  # the first maximum: the highest threshold among ties
        return float(counts.thresholds[points[best]]), float(gaps[best])

    def bound_at(
        some_scores: np.ndarray, some_members: np.ndarray, at: float, level: float
    ) -> float:
        return float(margin(*upper_bounds(some_scores, some_members, np.array([at]), level))[0])

    choice = choose_threshold(strategy, values, membership, alpha, find_best=find_best,
                              bound_at=bound_at)
    tested = choice.evaluated
    fpr_upper, fnr_upper = upper_bounds(values[tested], membership[tested],
                                        np.array([choice.threshold]), choice.level)
    allowed = float(checked_tradeoff(fpr_upper)[0])
    return ClaimTest(
        violation=bool(choice.value > 0),
        confidence=1 - alpha,
        threshold=choice.threshold,
        false_positive_upper=float(fpr_upper[0]),
        false_negative_upper=float(fnr_upper[0]),
        allowed_false_negative=allowed,
        threshold_strategy=strategy.to_dict(),
    )


def _checked_tradeoff(tradeoff: object) -> Tradeoff:
    """``tradeoff``, refusing (naming the argument) what is not a callable, and every call whose
    result is not one finite FNR in [0, 1] per FPR given: a NaN would pass as "no violation"."""
    if not callable(tradeoff):
        raise MetricsInputError(
            f"`tradeoff` must be a function from FPR values to the smallest FNR the claim "
            f"allows (e.g. auditml.metrics.claimed_tradeoff(...)), got "
            f"{type(tradeoff).__name__}."
        )

    def checked(rates: np.ndarray) -> np.ndarray:
        try:
            allowed = np.asarray(tradeoff(rates), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise MetricsInputError(
                f"`tradeoff` must return numbers, one per FPR given; it raised {error}"
            ) from error
        if allowed.shape != np.shape(rates) or not (
            np.all(np.isfinite(allowed)) and np.all((allowed >= 0) & (allowed <= 1))
        ):
            raise MetricsInputError(
                f"`tradeoff` must return one finite FNR in [0, 1] per FPR given (shape "
                f"{np.shape(rates)}), got shape {allowed.shape} with values from "
                f"{np.nanmin(allowed) if allowed.size else 'none'} to "
                f"{np.nanmax(allowed) if allowed.size else 'none'}."
            )
        return allowed

    return checked
