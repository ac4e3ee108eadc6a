"""Gaussian differential privacy (μ-GDP) from membership scores: a lower bound and an estimate.

**The model.** A mechanism is μ-GDP (Dong, Roth and Su 2019, "Gaussian Differential Privacy",
JRSS-B 2022) when telling member from non-member is no easier than telling N(0, 1) from
N(μ, 1): every test, with false positive rate FPR and false negative rate FNR, has

    FNR >= Φ(Φ⁻¹(1 - FPR) - μ),   i.e.   μ >= Φ⁻¹(1 - FPR) - Φ⁻¹(FNR)        (their Eq. 6).

The Gaussian mechanism with sensitivity 1 and noise σ is exactly (1/σ)-GDP, and DP-SGD is
approximately μ-GDP by their central limit theorem. μ-GDP is (ε, δ)-DP exactly for the ε solving
(their Corollary 2.13; the same curve as the analytic Gaussian mechanism of Balle and Wang 2018)

    δ = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2),

which :func:`gdp_epsilon` solves; ε = 0 when μ <= 0 or δ(0) = 2Φ(μ/2) - 1 <= δ.

Two numbers come from scores, and they answer different questions:

* :func:`gdp_lower_bound`: a μ (hence ε) the mechanism provably exceeds with probability at least
  ``1 - alpha``, from Clopper-Pearson upper bounds on FPR and FNR (the method of Nasr et al. 2023,
  "Tight Auditing of Differentially Private Machine Learning", and of jax_privacy's
  ``epsilon_from_gdp``). The μ bound needs no assumption; the ε it implies needs one: that the
  mechanism's trade-off curve *is* Gaussian.
* :func:`gdp_epsilon_estimate`: a point estimate of μ from the whole ROC curve (through the AUC),
  for comparison with the accountant. Not a bound.

Pure numpy/scipy on (scores, is_member).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from auditml.metrics.dp.trials_epsilon import (
    _check_number,
    _clopper_pearson_upper,
    _gaussian_mu,
    resolve_alpha,
)
from auditml.metrics.roc import MetricsInputError, _auc, _roc_counts, check_count, check_scores

# The threshold search evaluates Clopper-Pearson bounds on a table of counts: every count up to
# _EXACT_COUNTS, then counts growing by _GRID_GROWTH. A count between two table entries takes the
# larger entry's bound (bounds increase with the count), which can only lower μ there; the chosen
# threshold's bound is then recomputed exactly. Validity never depends on these constants.
_EXACT_COUNTS = 1000
_GRID_GROWTH = 1.001

_ESTIMATE_NOTE = (
    "An estimate, not a bound: assumes the attack's trade-off curve is Gaussian (mu-GDP, Dong, "
    "Roth and Su 2019), where AUC = Phi(mu / sqrt 2), and reads mu off the AUC of all scores. "
    "It can exceed the true epsilon, and is above 0 for about half of the audits of a model "
    "that leaks nothing; use the lower bounds for a claim that holds with known probability."
)
_BOUND_NOTE = (
    "A lower bound on mu holding with probability at least 1 - alpha; the epsilon beside it is "
    "a lower bound only if the mechanism's trade-off curve is Gaussian (mu-GDP)."
)


@dataclass(frozen=True)
class GaussianDPEstimate:
    """A Gaussian-DP point estimate: μ read off the AUC, and the ε it implies at δ.

    Not a bound; ``note`` says so in words, for whoever reads the record without this docstring.
    ``mu <= 0`` (members do not outscore non-members) gives ``epsilon == 0``. ``method`` names
    how μ was estimated (``"auc"``); records written before it existed measured μ at one
    threshold and hold a ``threshold`` key instead.
    """

    mu: float
    epsilon: float
    delta: float
    auc: float
    method: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every value is a finite number or a string)."""
        return asdict(self)


@dataclass(frozen=True)
class GaussianDPLowerBound:
    """A μ lower bound (probability ``>= 1 - alpha``) and the ε it implies for a Gaussian curve.

    ``threshold`` is the rule "member when score >= threshold" whose counts gave the bound:
    ``false_positives`` of ``negatives`` non-members flagged, ``false_negatives`` of ``positives``
    members missed. ``mu == 0`` and ``epsilon == 0`` mean no evidence at this confidence.
    """

    mu: float
    epsilon: float
    delta: float
    alpha: float
    threshold: float
    false_positives: int
    negatives: int
    false_negatives: int
    positives: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every value is a finite number or a string)."""
        return asdict(self)


# --- μ-GDP as (ε, δ)-DP ---------------------------------------------------------------------


def _gdp_delta(epsilon: float, mu: float) -> float:
    # δ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2); the second term in logs so e^ε cannot overflow.
    # That term is at most Φ(-ε/μ + μ/2) <= 1, so its log is <= 0; at μ ~ 1e30 rounding in the
    # sum of two ~1e59 terms made it positive enough to overflow, hence the min.
    return float(
        special.ndtr(-epsilon / mu + mu / 2)
        - math.exp(min(epsilon + special.log_ndtr(-epsilon / mu - mu / 2), 0.0))
    )


def gdp_epsilon(mu: float, delta: float) -> float:
    """The ε at which μ-GDP is (ε, δ)-DP: the root of δ(ε) = δ, 0 when μ <= 0 or δ(0) <= δ.

    Found by bisection to 1e-12 relative (plain bisection, not scipy.optimize: importing that
    costs every audit ~0.5 s). ``mu`` must be a finite number, ``delta`` in (0, 1).
    """
    delta = _check_delta(delta)
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.integer, np.floating)) or (
        not math.isfinite(mu)
    ):
        raise MetricsInputError(f"`mu` must be a finite number, got {mu!r}.")
    mu = float(mu)
    if mu <= 0 or _gdp_delta(0.0, mu) <= delta:
        return 0.0
    # δ(ε) decreases to 0, so doubling finds a bracket.
    low, high = 0.0, 1.0
    while _gdp_delta(high, mu) > delta:
        low, high = high, high * 2
    while high - low > 1e-12 * max(1.0, high):
        middle = (low + high) / 2
        if _gdp_delta(middle, mu) > delta:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _check_delta(delta: object) -> float:
    return _check_number(
        delta,
        "delta",
        0.0,
        1.0,
        low_closed=False,
        why=" (at δ = 0 a Gaussian curve with μ > 0 has ε = ∞)",
    )


# --- the lower bound ------------------------------------------------------------------------


def _tabulated_upper_bounds(count: np.ndarray, trials: int, level: float) -> np.ndarray:
    """Clopper-Pearson upper bounds at ``count``, each rounded up to a table entry (>= exact)."""
    dense = np.arange(min(trials, _EXACT_COUNTS) + 1, dtype=np.int64)
    steps = max(math.ceil(math.log(max(trials, 1) / _EXACT_COUNTS) / math.log(_GRID_GROWTH)), 0)
    sparse = np.ceil(_EXACT_COUNTS * _GRID_GROWTH ** np.arange(1, steps + 2)).astype(np.int64)
    grid = np.unique(np.concatenate([dense, np.minimum(sparse, trials), [trials]]))
    return _clopper_pearson_upper(grid, trials, level)[np.searchsorted(grid, count)]


def gdp_lower_bound(
    scores: ArrayLike, is_member: ArrayLike, *, delta: float, confidence: float | None = None,
    alpha: float | None = None,
) -> GaussianDPLowerBound:
    """A μ-GDP lower bound at ``confidence`` (default 0.95; ``alpha = 1 - confidence``, also
    accepted under its old name with a DeprecationWarning), and the ε(δ) it implies if Gaussian.

    **Theorem.** Let the rule "member when score >= t" have true rates FPR(t), FNR(t), and
    ``u_F(t)``, ``u_N(t)`` be one-sided Clopper-Pearson upper bounds on them. If, for every t at
    once, FPR(t) <= u_F(t) and FNR(t) <= u_N(t), then any mechanism that is μ-GDP has, for every t,

        μ >= Φ⁻¹(1 - u_F(t)) - Φ⁻¹(u_N(t))

    (Eq. 6 of Dong, Roth and Su, with the rates replaced by larger ones: the right-hand side
    decreases in both). The bound reported is the largest right-hand side over all distinct
    scores t, floored at 0.

    **Why every threshold may be tried (no split).** The bounds hold simultaneously over all
    thresholds: with n non-members, the threshold with k < n false positives lies above the
    (k+1)-th largest non-member score, whose survival probability is (for continuous scores;
    ties only make it smaller) the (k+1)-th smallest of n uniforms, a Beta(k + 1, n - k) variable;
    the Clopper-Pearson bound for k of n at level ``a`` is exactly that Beta's ``1 - a`` quantile.
    So each of the n count values fails with probability ``a``, and a union bound over them (and
    likewise over the members' counts) gives simultaneous validity at ``a = alpha / (2n)`` for the
    FPR (n non-members) and ``alpha / (2m)`` for the FNR (m members). This is Bonferroni over the
    possible counts, not over a data-chosen candidate set; jax_privacy's ``epsilon_from_gdp``
    corrects over the number of thresholds instead, which is at least as many.

    **What it claims.** With probability at least ``1 - alpha`` over the audited examples, the
    mechanism is not μ'-GDP for any μ' < ``mu`` (no assumption beyond independent examples).
    ``epsilon`` is :func:`gdp_epsilon` of ``mu``; it is a lower bound on the mechanism's ε at
    ``delta`` **only under the assumption that its trade-off curve is Gaussian** (it is μ*-GDP
    and no better, for some μ* >= ``mu``). A curve that is not Gaussian (most real attacks' are
    not) can have a smaller ε at this δ; :func:`auditml.metrics.epsilon_lower_bound` needs no
    such assumption. ``mu <= 0`` gives 0 (no evidence), as in jax_privacy since July 2026.

    **Computation.** The counts at every threshold come from one sort; the bounds are looked up
    in a table of counts (exact up to 1000, then every 0.1 %), each count rounded up, which can
    only lower a threshold's μ; the chosen threshold's μ is then recomputed exactly.
    """
    delta = _check_delta(delta)
    alpha = resolve_alpha(confidence, alpha)
    checked_scores, checked_members = check_scores(scores, is_member)
    counts = _roc_counts(checked_scores, checked_members)
    # Finite thresholds only: +inf (nobody a member) proves nothing.
    thresholds = counts.thresholds[1:]
    false_positives = counts.false_positives[1:]
    false_negatives = counts.members - counts.true_positives[1:]
    fpr_level = alpha / (2 * counts.nonmembers)
    fnr_level = alpha / (2 * counts.members)
    with np.errstate(invalid="ignore"):
        tabulated = _gaussian_mu(
            _tabulated_upper_bounds(false_positives, counts.nonmembers, fpr_level),
            _tabulated_upper_bounds(false_negatives, counts.members, fnr_level),
        )
    best = int(np.argmax(tabulated))
    exact_mu = float(
        _gaussian_mu(
            _clopper_pearson_upper(false_positives[best : best + 1], counts.nonmembers, fpr_level),
            _clopper_pearson_upper(false_negatives[best : best + 1], counts.members, fnr_level),
        )[0]
    )
    mu = max(exact_mu, 0.0) if math.isfinite(exact_mu) else 0.0
    return GaussianDPLowerBound(
        mu=mu,
        epsilon=gdp_epsilon(mu, delta),
        delta=delta,
        alpha=alpha,
        threshold=float(thresholds[best]),
        false_positives=int(false_positives[best]),
        negatives=counts.nonmembers,
        false_negatives=int(false_negatives[best]),
        positives=counts.members,
        note=_BOUND_NOTE,
    )


# --- the estimate ---------------------------------------------------------------------------


def gdp_mu_from_auc(auc: float | np.ndarray, members: int, nonmembers: int) -> np.ndarray:
    """μ = √2 Φ⁻¹(AUC), the AUC first clipped to ``[1/(2mn), 1 - 1/(2mn)]`` (m, n the counts).

    Under μ-GDP with a tight curve the ROC is TPR = Φ(Φ⁻¹(FPR) + μ), the equal-variance
    binormal curve, whose area is Φ(μ/√2). The clip (half a member/non-member pair) keeps μ
    finite at perfect separation. Monotone in the AUC, so it maps an AUC interval to a μ interval.
    """
    pairs = 2.0 * members * nonmembers
    clipped = np.clip(np.asarray(auc, dtype=np.float64), 1 / pairs, 1 - 1 / pairs)
    return math.sqrt(2) * special.ndtri(clipped)


def gdp_epsilon_estimate(
    scores: ArrayLike, is_member: ArrayLike, *, delta: float
) -> GaussianDPEstimate:
    """An ESTIMATE of ε at ``delta``, assuming the privacy curve is Gaussian. Not a bound.

    **Procedure.** μ̂ = √2 Φ⁻¹(AUC) (:func:`gdp_mu_from_auc`), with the AUC of all the scores
    (the Mann-Whitney statistic, an unbiased estimate of the true AUC), and ε̂ =
    :func:`gdp_epsilon` (μ̂, δ). Every member/non-member pair contributes, so no threshold is
    chosen: an estimate measured at one threshold far in a tail rests on a handful of counts,
    where Φ⁻¹ of a rate is both noisy and biased.

    **Why only an estimate.** Real attacks' trade-off curves are not Gaussian: a curve with a
    heavy tail (a few members exposed, most not) has a larger ε than its AUC suggests, and the
    lower bounds (:func:`gdp_lower_bound`, :func:`auditml.metrics.epsilon_lower_bound`) can then
    exceed this estimate; that itself says the curve is not Gaussian. On a model that leaks
    nothing the AUC is above 0.5 about half of the time, and so is ε̂ above 0.

    ``delta`` must be in (0, 1): at δ = 0, μ-GDP with μ > 0 is not (ε, 0)-DP for any finite ε,
    so asking for it raises :class:`MetricsInputError` rather than returning an infinite ε.
    """
    delta = _check_delta(delta)
    counts = _roc_counts(*check_scores(scores, is_member))
    auc = _auc(counts)
    mu = float(gdp_mu_from_auc(auc, counts.members, counts.nonmembers))
    return GaussianDPEstimate(
        mu=mu,
        epsilon=gdp_epsilon(mu, delta),
        delta=delta,
        auc=auc,
        method="auc",
        note=_ESTIMATE_NOTE,
    )


def gdp_estimate_interval(
    auc_interval: tuple[float, float], members: int, nonmembers: int, *, delta: float
) -> tuple[float, float]:
    """The interval of :func:`gdp_epsilon_estimate` that a bootstrap interval of the AUC implies.

    ε̂ = :func:`gdp_epsilon` (√2 Φ⁻¹(AUC), δ) is a non-decreasing function of the AUC (0 while
    μ ≤ 0), and the BCa interval respects monotone transformations (Efron 1987, "Better
    bootstrap confidence intervals", §4): the BCa interval of g(AUC) is g applied to the AUC's
    BCa interval (:func:`auditml.metrics.membership_intervals`). So this is the estimate's
    sampling noise at the AUC interval's confidence, under the same Gaussian-curve assumption as
    the estimate itself — an interval around an estimate, not a bound on ε.
    """
    try:
        low, high = (float(value) for value in auc_interval)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0.0 <= low <= high <= 1.0:
        raise MetricsInputError(
            f"`auc_interval` must be (low, high) with 0 <= low <= high <= 1, got {auc_interval!r}."
        )
    members, nonmembers = check_count(members, "members"), check_count(nonmembers, "nonmembers")
    delta = _check_delta(delta)
    mus = gdp_mu_from_auc(np.array([low, high]), members, nonmembers)
    return gdp_epsilon(float(mus[0]), delta), gdp_epsilon(float(mus[1]), delta)


__all__ = [
    "GaussianDPEstimate",
    "GaussianDPLowerBound",
    "gdp_epsilon",
    "gdp_epsilon_estimate",
    "gdp_estimate_interval",
    "gdp_lower_bound",
    "gdp_mu_from_auc",
]
