"""How much noise DP-SGD really added, read off the noisy sums: an upper confidence bound.

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

What it is for: DP-SGD's privacy is a function of σ (with the sampling rate, the steps and the
clipping norm), so a run whose noise is *shown* to be below the accountant's σ is not the
mechanism the accountant analysed. Turning σ_U into an ε needs the family assumption of
:mod:`auditml.metrics.fdp_family` (the run is DP-SGD with its sampling rates, steps and clipping
norm at *some* noise level): then its ε at δ is at least the true ε of DP-SGD at σ_U, for which
:func:`auditml.metrics.accounting.prv_epsilon_lower` gives a certified lower bound.
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
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not (
        0.5 < confidence < 1
    ):
        raise MetricsInputError(f"`confidence` must be in (0.5, 1), got {confidence!r}.")
    total = float(np.square(values).sum())
    quantile = float(stats.chi2.ppf(1 - confidence, df=values.size))
    return NoiseBound(
        estimate=float(np.sqrt(total / values.size)),
        upper=float(np.sqrt(total / quantile)),
        observations=int(values.size),
        confidence=float(confidence),
    )
