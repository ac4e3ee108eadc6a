"""Did the training loop really sample like Poisson? A test on the batch sizes DP-SGD used.

Every DP-SGD accountant (Opacus' RDP and PRV ones among them) assumes **Poisson sampling**: at
each step each of the N examples joins the batch independently with probability q. Then the
batch sizes ``B_1, …, B_T`` of the T steps are

    H0:  B_1, …, B_T  independent, each Binomial(N, q).

Real loops often break it while keeping the mean: shuffled fixed-size batches
(``DataLoader(shuffle=True)``, Opacus' ``poisson_sampling=False``), ``drop_last=True``, a
weighted sampler with a fixed batch size, the same batch reused for two optimiser steps. The
accountant's ε is then not the ε of the mechanism that ran. The test sees only the sizes, so it
finds the schemes whose sizes betray them; a scheme with Binomial sizes but dependent *members*
is invisible to it. It tests three forms of the departure; each gives a p-value under H0:

**fixed_size** (exact, conservative). The most frequent size occurs ``k`` times among the T.
Under H0 the count of a value v is Binomial(T, p_v) with ``p_v = P(Binomial(N, q) = v)``, so by
the union bound

    P(some value occurs >= k times)  <=  Σ_v P(Binomial(T, p_v) >= k),

computed in log space (a tail that underflows is bounded above by a geometric series) for the
values within 40 standard deviations of N·q; the others together add at most
``C(T, k) · P(B outside)^k`` (``P(Binomial(T, p) >= k) <= C(T, k) p^k``, and
``Σ p_v^k <= (Σ p_v)^k``). Nothing here is approximate. It sees *how often* the commonest size
occurs, not *which* size it is, so a mean far from N·q does not move it (a wider spread only
lowers the modal count).

**dispersion** (asymptotic, two-sided). The index of dispersion

    S = Σ_t (B_t − B̄)² / (B̄ (1 − q))

is the sample variance over the variance Poisson sampling gives *at the observed mean*, so a
wrong rate alone barely moves it (only through 1 − q). As T grows S → χ²_{T−1}, but for finite
N its variance is ``2 (T − 1) c`` with ``c = 1 + (3q − 2) / (2 N (1 − q))`` (delta method on
the Binomial's moments; c ≈ 1 unless N(1 − q), the examples a step leaves out, is small: at
N = 10, q = 0.9 the plain law rejects 9 % of the time at a nominal 5 %), so S is compared with
``c · χ²_{(T − 1)/c}``. ``Σ B_t²`` moves in steps of 2 given the total, so each tail is taken
half a step beyond S (a continuity correction: without it three equal sizes give p = 0), and
``p = min(1, 2 · min(lower tail, upper tail))``; ``p = 1`` when every batch is empty.

**dependence** (asymptotic, two-sided). The lag-1 autocorrelation
``r = Σ_t (B_t − B̄)(B_{t+1} − B̄) / Σ_t (B_t − B̄)²``. Under H0 the sizes are exchangeable, so
given their values in any order r has mean exactly −1/T and an exact permutation variance
(from ``Σ (B_t − B̄)²`` and ``Σ (B_t − B̄)⁴``; it tends to 1/T), and
``z = (r + 1/T) / sd`` is ≈ N(0, 1) (continuity-corrected by half a step of ``Σ B_t B_{t+1}``).
With the plain ``√T (r + 1/T)`` the form is over-cautious at small T. When all sizes are equal r
is undefined and ``p = 1`` (the other forms reject then).

None of the forms tests the rate itself: a loop that samples like Poisson at a rate other than
the accountant's passes, and :func:`auditml.metrics.dp.mechanism_check.sample_rate_lower_bound`
is the check that sees it.

**The test.** Its p-value is the smallest of the three times 3 (Bonferroni), capped at 1, and
it rejects when that is below 1 − confidence. Were the three p-values exact, the union bound
would keep its false rejections under H0 at most 1 − confidence for any dependence between the
forms; the fixed_size one is, the other two are asymptotic (below).

**How accurate the asymptotic forms are** (``tests/metrics/test_sampling.py`` checks the level
by simulation). With the corrections above, at mean sizes of 1 or more and T from 10 to 10⁵
their false rejections were within simulation noise of nominal or below it at per-form levels
from 0.05 down to 0.001 (at most 1.35× nominal at 0.001 in 40 000 runs); at small T (≲ 10) both
are conservative (the dependence form rejects almost never below T = 10: a lag-1 correlation of
a handful of values cannot be significant at these levels). In sparse runs (mean size below
about 1/2, most batches empty) the dispersion statistic is a count of examples that share a
batch, nearly Poisson and more skewed than χ², and the lag-1 one is a count of adjacent
non-empty batches: their p-values below 1e-3 are up to about 2× too small (dispersion 1.8×,
dependence 1.1× at mean 0.1, T = 1000, 40 000 runs); at the per-form level the default
confidence uses (0.99 / 3 = 0.0033) the error was within about 10 %. DP-SGD does not run there;
the exact fixed_size form is unaffected.

**N.** When ``dataset_size`` is not given it is estimated as ``max(max B, round(B̄ / q), 1)`` and
the test is approximate (its fixed_size form then also adapts to the observed mean, which makes
it cautious: a run with many empty batches also has a small B̄, so a small estimated N).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from auditml.metrics.dp.trials_epsilon import _check_number, _shown
from auditml.metrics.roc import MetricsInputError

FORMS = ("fixed_size", "dispersion", "dependence")

# Beyond this many standard deviations from N·q the Binomial(N, q) mass is far below anything
# that could matter next to the values near the mode; those values are bounded together.
_WINDOW_DEVIATIONS = 40.0
# The smallest p-value `describe` writes as a number (a float reaches 5e-324, a sentence needs
# no more).
_SMALLEST_SHOWN = 1e-300


@dataclass(frozen=True)
class BatchSizeTest:
    """The Poisson-sampling test of the module docstring on one run's batch sizes.

    ``rejected`` is ``p_value < 1 − confidence``; ``p_value`` is the smallest of the ``forms``'
    p-values times their number (Bonferroni), capped at 1; ``failed_form`` names the smallest
    when rejected. ``dataset_size`` is the N used (``dataset_size_estimated`` when it was not
    given), ``sample_rate`` the q tested; ``variance`` is the sizes' sample variance (ddof = 1),
    ``expected_variance`` the variance Poisson sampling gives at their ``mean``, ``B̄ (1 − q)``;
    the most frequent size ``modal_size`` occurs in ``modal_count`` steps; ``lag1_correlation``
    is None when the sizes do not vary.
    """

    rejected: bool
    p_value: float
    forms: dict[str, float]
    failed_form: str | None
    confidence: float
    batches: int
    dataset_size: int
    dataset_size_estimated: bool
    sample_rate: float
    mean: float
    variance: float
    expected_variance: float
    modal_size: int
    modal_count: int
    lag1_correlation: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def describe(self) -> str:
        """One sentence for a report: what failed, in numbers, or that nothing did. The p shown is
        the test's (Bonferroni-corrected) p-value."""
        setting = (
            f"N={self.dataset_size}{' (estimated)' if self.dataset_size_estimated else ''}, "
            f"q={self.sample_rate:.3g}"
        )
        shown = _shown_p_value(self.p_value)
        if self.failed_form == "fixed_size":
            population, rate = self.dataset_size, self.sample_rate
            most_likely = float(stats.binom.pmf(_binomial_mode(population, rate), population, rate))
            return (
                f"fixed-size batches: {self.modal_count} of {self.batches} steps had exactly "
                f"{self.modal_size} examples, where Poisson sampling ({setting}) gives any one "
                f"size at most {100 * most_likely:.2g}% of the time ({shown})"
            )
        if self.failed_form == "dispersion":
            how = "too little" if self.variance < self.expected_variance else "too much"
            return (
                f"batch sizes vary {how}: their variance over {self.batches} steps is "
                f"{self.variance:.4g}, where Poisson sampling ({setting}) gives "
                f"{self.expected_variance:.4g} at their mean of {self.mean:.4g} ({shown})"
            )
        if self.failed_form == "dependence":
            return (
                f"consecutive batch sizes are correlated: their lag-1 correlation over "
                f"{self.batches} steps is {self.lag1_correlation:.3g}, where independent "
                f"Poisson-sampled batches ({setting}) give about {-1 / self.batches:.2g} "
                f"± {1 / math.sqrt(self.batches):.2g} ({shown})"
            )
        return (
            f"batch sizes consistent with Poisson sampling ({setting}) at "
            f"{100 * self.confidence:g}% confidence: over {self.batches} steps their mean is "
            f"{self.mean:.4g}, their variance {self.variance:.4g} (Poisson: "
            f"{self.expected_variance:.4g}), the most frequent size {self.modal_size} in "
            f"{self.modal_count} steps ({shown})"
        )


def poisson_batch_test(
    batch_sizes: ArrayLike,
    *,
    sample_rate: float,
    dataset_size: int | None = None,
    confidence: float = 0.99,
) -> BatchSizeTest:
    """Test whether ``batch_sizes`` (one per step, in order) are those of Poisson sampling at
    ``sample_rate`` from ``dataset_size`` examples (estimated from the mean when None): the
    module docstring's three forms, Bonferroni-combined.

    Raises :class:`MetricsInputError` for fewer than 2 sizes, non-integer or negative sizes,
    sizes above ``dataset_size``, a rate outside (0, 1), a confidence outside (0.5, 1) or a
    dataset size that is not a positive integer.
    """
    rate = _check_number(sample_rate, "sample_rate", 0.0, 1.0, low_closed=False)
    _check_number(confidence, "confidence", 0.5, 1.0, low_closed=False)
    sizes = _check_sizes(batch_sizes, dataset_size)
    batches = int(sizes.size)
    mean = float(sizes.mean())
    if dataset_size is None:
        population = max(int(sizes.max()), round(mean / rate), 1)
    else:
        population = int(dataset_size)
    deviations = sizes - mean
    squares = float(np.dot(deviations, deviations))
    values, counts = np.unique(sizes, return_counts=True)  # not bincount: sizes may be huge
    commonest = int(np.argmax(counts))  # the smallest of equally frequent sizes
    modal_size, modal_count = int(values[commonest]), int(counts[commonest])
    correlation = (
        None if squares == 0 else float(np.dot(deviations[:-1], deviations[1:]) / squares)
    )
    forms = {
        "fixed_size": _fixed_size_p_value(modal_count, batches, population, rate),
        "dispersion": _dispersion_p_value(squares, mean, batches, population, rate),
        "dependence": _dependence_p_value(correlation, deviations, squares),
    }
    smallest = min(FORMS, key=lambda name: forms[name])
    # Bonferroni over all the forms, whether or not the data could move a form's p-value.
    p_value = min(1.0, len(FORMS) * forms[smallest])
    rejected = p_value < 1 - confidence
    return BatchSizeTest(
        rejected=bool(rejected),
        p_value=p_value,
        forms=forms,
        failed_form=smallest if rejected else None,
        confidence=float(confidence),
        batches=batches,
        dataset_size=population,
        dataset_size_estimated=dataset_size is None,
        sample_rate=rate,
        mean=mean,
        variance=squares / (batches - 1),
        expected_variance=mean * (1 - rate),
        modal_size=modal_size,
        modal_count=modal_count,
        lag1_correlation=correlation,
    )


def _check_sizes(batch_sizes: ArrayLike, dataset_size: object) -> np.ndarray:
    if dataset_size is not None and (
        isinstance(dataset_size, bool)
        or not isinstance(dataset_size, (int, np.integer))
        or dataset_size < 1
    ):
        raise MetricsInputError(
            f"`dataset_size` must be a positive integer or None, got {_shown(dataset_size)}."
        )
    sizes = np.asarray(batch_sizes)
    if sizes.ndim != 1 or sizes.size < 2 or not np.issubdtype(sizes.dtype, np.integer):
        raise MetricsInputError(
            "`batch_sizes` must be a vector of at least 2 integers (one size per step), got "
            f"shape {sizes.shape} of {sizes.dtype}."
        )
    if sizes.min() < 0:
        raise MetricsInputError(f"`batch_sizes` must be >= 0, got {_shown(sizes.min())}.")
    if dataset_size is not None and sizes.max() > dataset_size:
        raise MetricsInputError(
            f"`batch_sizes` must be at most `dataset_size` ({dataset_size}), got "
            f"{_shown(sizes.max())}."
        )
    return sizes.astype(np.int64)


def _binomial_mode(trials: int, probability: float) -> int:
    return min(trials, math.floor((trials + 1) * probability))


def _log_binomial_tail(at_least: int, trials: int, probability: np.ndarray) -> np.ndarray:
    """log P(Binomial(trials, p) >= at_least) for each p, finite where scipy's underflows.

    Above the mean the pmf ratio f(j + 1) / f(j) = (n − j) p / ((j + 1)(1 − p)) falls with j, so
    f(k) <= P(X >= k) <= f(k) / (1 − r_k), r_k the first ratio: an upper bound, as tight as the
    tail is small, used only where scipy's log-tail is -inf.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = stats.binom.logsf(at_least - 1, trials, probability)
        ratio = (trials - at_least) / (at_least + 1) * probability / (1 - probability)
        bound = stats.binom.logpmf(at_least, trials, probability) - np.log1p(-ratio)
    return np.where(np.isfinite(exact) | ~(ratio < 1), exact, bound)


def _fixed_size_p_value(modal_count: int, batches: int, population: int, rate: float) -> float:
    centre = population * rate
    spread = math.sqrt(centre * (1 - rate))
    low = max(0, math.floor(centre - _WINDOW_DEVIATIONS * spread) - 10)
    high = min(population, math.ceil(centre + _WINDOW_DEVIATIONS * spread) + 10)
    values = np.arange(low, high + 1)
    log_terms = _log_binomial_tail(
        modal_count, batches, stats.binom.pmf(values, population, rate)
    )
    # Outside the window: P(count_v >= k) <= C(T, k) p_v^k, and Σ p_v^k <= (Σ p_v)^k, so those
    # values add at most C(T, k) P(B outside)^k (T·P(B outside) at k = 1: the union of their
    # first appearances). Tiny, but not always next to the p-values of a fixed-size loop.
    with np.errstate(divide="ignore"):
        below = stats.binom.logcdf(low - 1, population, rate) if low > 0 else -np.inf
        outside = np.logaddexp(below, stats.binom.logsf(high, population, rate))
    log_choose = (
        special.gammaln(batches + 1)
        - special.gammaln(modal_count + 1)
        - special.gammaln(batches - modal_count + 1)
    )
    total = special.logsumexp(np.append(log_terms, log_choose + modal_count * outside))
    return float(min(1.0, math.exp(total)))


def _dispersion_p_value(
    squares: float, mean: float, batches: int, population: int, rate: float
) -> float:
    if mean == 0:
        return 1.0
    statistic = squares / (mean * (1 - rate))
    inflation = 1 + (3 * rate - 2) / (2 * population * (1 - rate))  # > 0 for every N >= 1
    law = stats.chi2((batches - 1) / inflation, scale=inflation)
    half_step = 1 / (mean * (1 - rate))
    lower = float(law.cdf(statistic + half_step))
    upper = float(law.sf(max(statistic - half_step, 0.0)))
    return min(1.0, 2 * min(lower, upper))


def _dependence_p_value(
    correlation: float | None, deviations: np.ndarray, squares: float
) -> float:
    if correlation is None:
        return 1.0
    batches = deviations.size
    variance = _lag1_permutation_variance(batches, float(np.sum(deviations**4)) / squares**2)
    if variance <= 0:  # T = 2: r is −1/2 whatever the sizes
        return 1.0
    distance = max(abs(correlation + 1 / batches) - 0.5 / squares, 0.0)
    return float(min(1.0, 2 * stats.norm.sf(distance / math.sqrt(variance))))


def _lag1_permutation_variance(batches: int, fourth: float) -> float:
    """Variance of r over the T! orders of fixed centred values d, with ``fourth`` = Σd⁴ / (Σd²)².

    r·Σd² sums T − 1 products of neighbours. A product's square averages (1 − fourth) / (T(T−1))
    (in units of (Σd²)²); two products sharing a value, (2·fourth − 1) / (T(T−1)(T−2)); two
    disjoint ones, (3 − 6·fourth) / (T(T−1)(T−2)(T−3)) (power sums with Σd = 0); the mean of r
    is −1/T.
    """
    t, m = batches, batches - 1
    second = m * (1 - fourth) / (t * (t - 1))
    if t >= 3:
        second += 2 * (m - 1) * (2 * fourth - 1) / (t * (t - 1) * (t - 2))
    if t >= 4:
        second += (m - 1) * (m - 2) * (3 - 6 * fourth) / (t * (t - 1) * (t - 2) * (t - 3))
    return second - 1 / t**2


def _shown_p_value(p_value: float) -> str:
    if p_value < _SMALLEST_SHOWN:
        return f"p < {_SMALLEST_SHOWN:.0e}"
    if p_value < 1e-3:
        return f"p = {p_value:.1e}"
    return f"p = {p_value:.2g}"
