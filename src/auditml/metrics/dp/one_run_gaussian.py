"""A one-run ε lower bound **under a stated assumption**: the canaries' scores are Gaussian.

In the spirit of Agrawal et al. 2026 ("Let's Ask Gauss"), who model the IN and OUT canary
signals of a one-run audit as Gaussians. Written from the statistics below, not from their code.

**Why an assumption at all.** Every assumption-free one-run audit (:mod:`.one_run_epsilon`,
Steinke, Nasr and Jagielski 2023; :func:`auditml.metrics.fdp_epsilon_audit`, Mahloujifar et al.
2024) is provably capped: :mod:`auditml.metrics.dp.one_run_limits` shows none can reach 0.8 × the
true ε with 1000 canaries on the ideal Gaussian mechanism unless μ is above about 2. A family
assumption lifts the cap, and this module makes it explicit, checks it, and labels the result.

**The assumption (G).** Given which canaries were included (each with probability 1/2, as in
any one-run audit), the scores of the included canaries are i.i.d. N(a + d, s²), those of the
excluded canaries i.i.d. N(a, s²), all independent, with unknown a, d and s > 0.

**Theorem.** Under (G), for each canary the score is the output of a channel that maps "canary
in" to N(a + d, s²) and "canary out" to N(a, s²); its trade-off curve is exactly G_{d/s}, the
(d/s)-GDP curve of Dong, Roth and Su (2019, JRSS-B 2022). The channel is training followed by
scoring, and mixing over the other canaries' coins (the same mixture on both sides) keeps any
convex trade-off bound (Jensen), so if training is (ε, δ)-DP with respect to adding or removing
one example, so is the channel, and then

    ε >= ε_GDP(d/s, δ),    ε_GDP(μ, δ) = the ε at which μ-GDP is (ε, δ)-DP

(:func:`auditml.metrics.gdp_epsilon`, which is non-decreasing in μ); if training is μ*-GDP,
μ* >= d/s. Let n₁, n₀ be the numbers of included and excluded canaries, x̄₁, x̄₀ their mean
scores, s_p the pooled standard deviation with ν = n₁ + n₀ - 2 degrees of freedom, and

    T = (x̄₁ - x̄₀) / (s_p √(1/n₁ + 1/n₀)).

Given the coins, T has the noncentral t distribution with ν degrees of freedom and noncentrality
λ = (d/s) / √(1/n₁ + 1/n₀) (Student's two-sample statistic; e.g. Lehmann and Romano, Testing
Statistical Hypotheses, §5.3). Its survival function at any t increases in λ, so with
β = 1 - ``confidence`` the λ_lb solving P_λ(T >= t_obs) = β is a lower confidence bound:
P[λ_lb > λ] = P[T > the 1 - β quantile under λ] = β. Hence, with probability at least
``confidence`` (conditionally on the coins, so also over them),

    μ_lb = max(0, λ_lb √(1/n₁ + 1/n₀)) <= d/s    and    ε_lb = ε_GDP(μ_lb, δ) <= ε,

for every (ε, δ)-DP guarantee of the training algorithm. Unlike the assumption-free audits, the
bound grows without a ceiling as the canaries separate.

**What is checked, and what is not.** (G) is not something one audit can prove; the result
reports tests of it so a reader can see when it is doubtful: the normality of each group's
residuals (Shapiro-Wilk up to 5000 scores, D'Agostino-Pearson above, where Shapiro-Wilk's
p-value is not computed reliably) and the equality of the two variances (Brown-Forsythe's
median-centred Levene test). Small p-values are evidence against (G); large ones are not proof
of it. Independence across canaries and a common shift d for every canary are assumed, not
tested. Real canary scores (a loss, a gradient's projection) are often skewed: trust the bound
only as far as the checks and the threat model allow, and quote the assumption-free bounds for a
claim that needs none.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.dp.gdp import _check_delta, gdp_epsilon
from auditml.metrics.dp.trials_epsilon import _check_number
from auditml.metrics.roc import MetricsInputError, check_scores

KIND = "bound under the Gaussian assumption"
"""The label every :class:`GaussianOneRunBound` carries, so no reader mistakes it for a bound
that needs no assumption."""

# Shapiro-Wilk's p-value is only computed reliably up to this many scores (scipy's own limit).
_SHAPIRO_MAX = 5000
# scipy's noncentral t is accurate up to here (checked to |t| = 1e4 at 4 to 20000 degrees of
# freedom); a larger observed t is treated as this one, which only lowers the bound.
_T_MAX = 1e4
# Each group needs this many canaries: a variance, and a normality test, need three points.
_MIN_PER_GROUP = 3


@dataclass(frozen=True)
class GaussianOneRunBound:
    """A one-run ε lower bound that holds if the canaries' scores are Gaussian (see the module).

    With probability at least ``confidence`` over the canaries' scores, **under the Gaussian
    assumption** the training algorithm is not (ε', ``delta``)-DP for any ε' < ``epsilon``, and
    not μ'-GDP for any μ' < ``mu``. ``mu_estimate`` is the point estimate (x̄₁ - x̄₀) / s_p, not
    a bound. ``t_statistic`` is the two-sample t with ``included + excluded - 2`` degrees of
    freedom. The checks of the assumption, as p-values (small = evidence against it):
    ``normality_p_included`` and ``normality_p_excluded`` (``normality_test`` names the test),
    ``equal_variance_p`` (Brown-Forsythe). ``kind`` says, in words, that this is a bound under
    an assumption.
    """

    epsilon: float
    mu: float
    mu_estimate: float
    confidence: float
    delta: float
    canaries: int
    included: int
    excluded: int
    t_statistic: float
    normality_p_included: float
    normality_p_excluded: float
    normality_test: str
    equal_variance_p: float
    kind: str = KIND

    @property
    def normality_p(self) -> float:
        """The smaller of the two groups' normality p-values (the one worth quoting)."""
        return min(self.normality_p_included, self.normality_p_excluded)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (every value is a finite number or a string)."""
        return asdict(self)


def _normality_p(residuals: np.ndarray, test: str) -> float:
    """The p-value of ``test`` (normality) on one group's residuals."""
    from scipy import stats  # here, not at the top: importing scipy.stats costs every audit

    if float(np.ptp(residuals)) == 0.0:
        return 0.0  # all equal: no normal law with s > 0 gives that, so (G) is refuted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's warnings on tiny samples; the p-value stands
        if test == "shapiro_wilk":
            return float(stats.shapiro(residuals).pvalue)
        return float(stats.normaltest(residuals).pvalue)


def _noncentrality_lower(t_observed: float, freedom: int, level: float) -> float:
    """λ_lb with P_λ(T >= t_observed) = level for T ~ noncentral t(freedom, λ).

    The survival function increases in λ and is about 1/2 at λ = t_observed, so λ_lb is below
    t_observed; the bracket widens by the statistic's spread until it holds the root.
    """
    from scipy import optimize, stats

    def excess(noncentrality: float) -> float:
        return float(stats.nct.sf(t_observed, freedom, noncentrality)) - level

    spread = math.sqrt(1.0 + t_observed**2 / (2.0 * freedom))
    high = t_observed
    while excess(high) <= 0:  # only by rounding far out in a tail
        high += spread
    step = spread
    low = t_observed - step
    while excess(low) > 0:
        step *= 2
        low = t_observed - step
    return float(optimize.brentq(excess, low, high, xtol=1e-12, rtol=1e-12))


def gaussian_one_run_audit(
    scores: ArrayLike,
    included: ArrayLike,
    *,
    delta: float = 1e-5,
    confidence: float = 0.95,
) -> GaussianOneRunBound:
    """The one-run ε lower bound under the Gaussian assumption: a noncentral-t bound on d/s.

    ``scores[i]`` is canary ``i``'s score (higher = more likely IN), from the trained model
    only; ``included[i]`` its recorded coin. Computes the two-sample t statistic of the included
    against the excluded scores, inverts the noncentral t distribution for a ``confidence``
    lower bound ``mu`` on d/s, and returns ``epsilon = gdp_epsilon(mu, delta)`` together with
    tests of the assumption (see the module docstring for the theorem and the assumption,
    which is **not** implied by differential privacy: a bound that needs no assumption is
    :func:`auditml.metrics.one_run_audit`).

    Raises :class:`MetricsInputError` naming the argument: ``scores`` a 1-D array of finite
    numbers, ``included`` booleans or 0/1 of the same length with at least 3 included and 3
    excluded canaries, scores not all equal within both groups, ``delta`` in (0, 1) and
    ``confidence`` in (0.5, 1).
    """
    delta = _check_delta(delta)
    confidence = _check_number(confidence, "confidence", 0.5, 1.0, low_closed=False)
    score_array, included_array = check_scores(
        scores, included, labels_name="included", require_both_classes=False
    )
    inside, outside = score_array[included_array], score_array[~included_array]
    if min(len(inside), len(outside)) < _MIN_PER_GROUP:
        raise MetricsInputError(
            f"`included` must mark at least {_MIN_PER_GROUP} canaries included and "
            f"{_MIN_PER_GROUP} excluded (a variance needs them), got {len(inside)} and "
            f"{len(outside)}."
        )
    # T is invariant to shifting and scaling the scores: scaled to [-1, 1] first (no overflow
    # at 1e308, no underflow at 1e-300), then centred, so a large common offset cannot cost
    # precision in the variances.
    largest_score = float(np.max(np.abs(score_array)))
    if largest_score > 0:
        inside, outside = inside / largest_score, outside / largest_score
    centre = float(np.median(np.concatenate([inside, outside])))
    inside, outside = inside - centre, outside - centre
    freedom = len(inside) + len(outside) - 2
    residuals_in, residuals_out = inside - inside.mean(), outside - outside.mean()
    pooled_variance = (residuals_in @ residuals_in + residuals_out @ residuals_out) / freedom
    difference = float(inside.mean() - outside.mean())
    if not pooled_variance > 1e-300 * max(1.0, difference**2):
        raise MetricsInputError(
            "`scores` must vary within the included or the excluded canaries (both groups are "
            "constant, so the Gaussian model's s is 0 and no bound follows); use "
            "auditml.metrics.one_run_audit, which needs no model."
        )
    scale = math.sqrt(1 / len(inside) + 1 / len(outside))
    pooled_sd = math.sqrt(float(pooled_variance))
    t_observed = difference / (pooled_sd * scale)

    if t_observed <= -_T_MAX:
        mu = 0.0  # the included canaries score far lower: no evidence of leakage
    else:
        # Beyond _T_MAX scipy's noncentral t loses accuracy; the root λ_lb increases with the
        # observed t, so inverting at the smaller _T_MAX gives a smaller bound, still valid.
        lower = _noncentrality_lower(min(t_observed, _T_MAX), freedom, 1 - confidence)
        mu = max(lower * scale, 0.0)

    from scipy import stats

    # D'Agostino-Pearson needs 8 scores, Shapiro-Wilk's p-value is unreliable above 5000.
    largest = max(len(inside), len(outside))
    test = "shapiro_wilk" if largest <= _SHAPIRO_MAX else "dagostino_pearson"
    normality_in = _normality_p(residuals_in, test)
    normality_out = _normality_p(residuals_out, test)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        equal_variance = float(stats.levene(inside, outside, center="median").pvalue)
    if not math.isfinite(equal_variance):
        equal_variance = 0.0  # one group constant, the other not: unequal variances
    return GaussianOneRunBound(
        epsilon=gdp_epsilon(mu, delta),
        mu=mu,
        mu_estimate=difference / pooled_sd,
        confidence=confidence,
        delta=delta,
        canaries=len(score_array),
        included=len(inside),
        excluded=len(outside),
        t_statistic=t_observed,
        normality_p_included=normality_in,
        normality_p_excluded=normality_out,
        normality_test=test,
        equal_variance_p=equal_variance,
    )


__all__ = ["KIND", "GaussianOneRunBound", "gaussian_one_run_audit"]
