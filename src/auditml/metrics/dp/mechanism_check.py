"""What DP-SGD really did, measured: its noise (from above) and its sampling rate (from below).

**Noise.**
The all-iterates threat model releases every noisy sum. For a gradient canary ``j`` that training
never added (its coin came up OUT) with Dirac direction ``e_k``, the recorded observation is the
sum's coordinate ``k``, in units of the clipping norm C:

    z_t = g_t + σ' ξ_t,     ξ_t ~ N(0, 1) independent of everything before step t,

where ``g_t`` is the real examples' clipped sum (and any included canary on the same coordinate)
at step t, fixed by the history and the batch, and σ' the noise multiplier the mechanism really
used. **Theorem.** Let ``S = Σ z²`` over N observations on distinct coordinates (their noises
are independent) and ``χ²_N(β)`` the β-quantile of the chi-squared law with N degrees of freedom.
Then

    σ_U = sqrt(S / χ²_N(1 − confidence))   satisfies   P(σ' > σ_U) ≤ 1 − confidence.

*Proof.* Given the past, ``z_t² / σ'²`` is non-central χ²₁ with non-centrality ``(g_t/σ')² ≥ 0``,
which stochastically dominates a central χ²₁; coupling the steps one after another (each
conditional law dominates a fresh χ²₁), ``S / σ'²`` dominates χ²_N. So
``P(σ' > σ_U) = P(S / σ'² < χ²_N(β)) ≤ P(χ²_N < χ²_N(β)) = β`` with β = 1 − confidence. ∎

Interference from the real examples only *raises* S, so the bound stays valid however large it
is; it just loosens. Nothing is assumed about the model, the data or the clipping. The point
estimate ``sqrt(S / N)`` is an *estimate* (biased upwards by the interference), not a bound.

**Sampling rate.** Poisson sampling puts each of the N examples in a step's batch with
probability q, independently, so the real batch sizes ``B_t`` of T steps sum to
``Binomial(N·T, q)``, and the one-sided Clopper–Pearson bound ``q_L`` (the (1 − confidence)
quantile of ``Beta(S, N·T − S + 1)``, S = Σ B_t) has ``P(q < q_L) ≤ 1 − confidence`` (exact).
It sees a rate different from the accountant's (the loader's rate against the one the accountant
was told), not a sampling *scheme* that differs with the same mean (shuffled fixed-size batches
in place of Poisson ones).

**Sensitivity.** An included canary j, when sampled at step t (``s_t = 1``, drawn by the
auditor's own generator with probability q, independently of everything the step computes),
adds ``Δ·C`` along its direction: Δ = 1 when per-example clipping to C works, and more when the
canary's gradient (of pre-clipping norm above C) escapes it (a parameter left unclipped). With
``o_t = g_t + n_t + Δ s_t`` (units of C), ``w_t = s_t − q`` is independent of ``g_t + n_t`` given
the past, so ``M(Δ) = Σ w_t (o_t − Δ s_t)`` is a martingale with mean zero at the true Δ, and
self-normalised by ``sqrt(Σ w_t² (o_t − Δ s_t)²)`` it is asymptotically N(0, 1) (the martingale
central limit theorem; asymptotic, not exact: thousands of (step, canary) pairs make it
accurate, and ``tests/metrics/test_mechanism_check.py`` checks its level by simulation with
adaptive interference). The estimate is ``Δ̂ = Σ w o / Σ w s``; its one-sided (Wald) lower
bound ``Δ_L`` and the p-value of "Δ ≤ 1" (a Δ below 1 only lowers the statistic) follow. Few
sampled pairs (a handful of canaries in a small tensor) make the normal quantile too small —
about 11 % misses at 95 % with 5 sampled pairs — so the quantile is Student's t with (sampled
pairs − 1) degrees of freedom, which the same simulation puts at its level (≈ 5 % at 95 %,
≈ 0.03 % at 99.9 %) and which tends to the normal one as the pairs grow.

What they are for: DP-SGD's privacy is a function of σ and q (with the steps and the clipping
norm), and the true ε grows as σ falls and as q grows. A run whose noise is *shown* to be below
the accountant's σ, or whose rate is shown to be above its q, is not the mechanism the
accountant analysed. Turning (σ_U, q_L) into an ε needs a family assumption (the run is DP-SGD
with Poisson sampling, its steps and clipping norm, at *some* noise and rate): then its ε at δ
is at least the true ε of DP-SGD at (σ_U, q_L), for which
:func:`auditml.metrics.dp.accounting.prv_epsilon_lower` gives a certified lower bound
(:func:`auditml.metrics.dp.one_run_fdp_family.mechanism_epsilon_lower_bound`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError


@dataclass(frozen=True)
class NoiseBound:
    """``upper`` bounds the noise multiplier the observations carry, with probability at least
    ``confidence``; ``estimate`` is ``sqrt(mean z²)`` (an estimate, not a bound)."""

    estimate: float
    upper: float
    observations: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def noise_upper_bound(observations: ArrayLike, *, confidence: float = 0.99) -> NoiseBound:
    """The upper confidence bound of the module docstring from ``observations`` (any shape: one
    value per (step, coordinate), in units of C, each coordinate's noise independent of the
    others').

    Raises :class:`MetricsInputError` for an empty or non-finite input or a confidence outside
    (0.5, 1).
    """
    from scipy import stats  # here: an audit without gradient canaries never needs it

    values = np.asarray(observations, dtype=np.float64).ravel()
    if values.size == 0:
        raise MetricsInputError("`observations` is empty: there is no noise to measure.")
    if not np.isfinite(values).all():
        raise MetricsInputError("`observations` holds NaN or infinite values.")
    _check_confidence(confidence)
    total = float(np.square(values).sum())
    quantile = float(stats.chi2.ppf(1 - confidence, df=values.size))
    return NoiseBound(
        estimate=float(np.sqrt(total / values.size)),
        upper=float(np.sqrt(total / quantile)),
        observations=int(values.size),
        confidence=float(confidence),
    )


@dataclass(frozen=True)
class RateBound:
    """``lower`` bounds the Poisson sampling rate from below with probability at least
    ``confidence``; ``estimate`` is ``S / (N·T)`` (an estimate)."""

    estimate: float
    lower: float
    batches: int
    dataset_size: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def sample_rate_lower_bound(
    batch_sizes: ArrayLike, *, dataset_size: int, confidence: float = 0.99
) -> RateBound:
    """The Clopper–Pearson lower bound of the module docstring from the real ``batch_sizes`` of
    the steps (each drawn from ``dataset_size`` examples).

    Raises :class:`MetricsInputError` for no batches, sizes outside [0, dataset_size], a
    dataset size below 1 or a confidence outside (0.5, 1).
    """
    from scipy import stats

    sizes = np.asarray(batch_sizes)
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, (int, np.integer)) or (
        dataset_size < 1
    ):
        raise MetricsInputError(f"`dataset_size` must be a positive integer, got {dataset_size!r}.")
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise MetricsInputError("`batch_sizes` must be a non-empty vector of integers.")
    if sizes.min() < 0 or sizes.max() > dataset_size:
        raise MetricsInputError(f"`batch_sizes` must lie in [0, {dataset_size}].")
    _check_confidence(confidence)
    total, trials = int(sizes.sum()), int(dataset_size) * sizes.size
    lower = 0.0 if total == 0 else float(stats.beta.ppf(1 - confidence, total, trials - total + 1))
    return RateBound(
        estimate=total / trials, lower=lower, batches=int(sizes.size),
        dataset_size=int(dataset_size), confidence=float(confidence),
    )


def _check_confidence(confidence: object) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (
        0.5 < confidence < 1
    ):
        raise MetricsInputError(f"`confidence` must be in (0.5, 1), got {confidence!r}.")


@dataclass(frozen=True)
class SensitivityBound:
    """How far a sampled canary moves the sum, in units of C: ``estimate`` (Δ̂), its lower
    bound ``lower`` (asymptotic, at ``confidence``), and ``p_value`` of "Δ ≤ 1"; ``sampled``
    (step, canary) pairs where a canary was in the sum, of ``observations``."""

    estimate: float
    lower: float
    p_value: float
    sampled: int
    observations: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def sensitivity_lower_bound(
    observations: ArrayLike, sampled: ArrayLike, *, sample_rate: float,
    confidence: float = 0.99,
) -> SensitivityBound:
    """The sensitivity bound of the module docstring from included canaries' ``observations``
    (steps × canaries, units of C) and whether each was ``sampled`` at each step.

    Raises :class:`MetricsInputError` for mismatched or non-finite arrays, a rate outside
    (0, 1) or a confidence outside (0.5, 1).
    """
    from scipy import stats

    o = np.asarray(observations, dtype=np.float64)
    s = np.asarray(sampled)
    if o.ndim != 2 or s.shape != o.shape or s.dtype != np.bool_ or o.size == 0:
        raise MetricsInputError("`observations` and `sampled` must be non-empty (steps, canaries) "
                                "arrays of the same shape, `sampled` boolean.")
    if not np.isfinite(o).all():
        raise MetricsInputError("`observations` holds NaN or infinite values.")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not (
        0 < sample_rate < 1
    ):
        raise MetricsInputError(f"`sample_rate` must be in (0, 1), got {sample_rate!r}.")
    _check_confidence(confidence)
    weight = s - float(sample_rate)
    scale = float((weight * s).sum())
    if scale <= 0:  # never sampled: nothing to measure
        return SensitivityBound(0.0, 0.0, 1.0, 0, int(o.size), float(confidence))
    estimate = float((weight * o).sum()) / scale
    spread = float(np.sqrt((weight**2 * (o - estimate * s) ** 2).sum())) / scale
    at_one = float(np.sqrt((weight**2 * (o - s) ** 2).sum()))
    statistic = float((weight * (o - s)).sum()) / at_one if at_one > 0 else 0.0
    pairs = int(s.sum())
    law = stats.t(df=max(pairs, 2) - 1)  # small-sample calibration (module docstring)
    return SensitivityBound(
        estimate=estimate,
        lower=estimate - float(law.ppf(confidence)) * spread,
        p_value=float(law.sf(statistic)),
        sampled=pairs,
        observations=int(o.size),
        confidence=float(confidence),
    )
