"""Membership scores of gradient canaries under the white-box threat models.

A gradient canary is a fixed gradient ``C·u`` (``‖u‖ = 1``, C the clipping norm) that DP-SGD adds
to its clipped sum, before the noise, whenever the canary is included and Poisson-sampled.

**All iterates** (the DP-SGD threat model: every noisy sum is released). Training records
``o_t = ⟨noisy sum_t, u⟩`` for each canary and step. In units of C, ``z_t = o_t / C`` is
``N(0, σ²)`` plus interference from the real examples when the canary is absent, and
``N(1, σ²)`` plus the same interference when it was sampled (probability q, if included). Without
interference the likelihood ratio of one step is that of the Poisson-subsampled Gaussian,

    L(z) = (1 − q) + q · exp((z − 1/2) / σ²),

and, the steps' noises being independent, the Neyman–Pearson optimal test of IN against OUT
thresholds ``Σ_t log L(z_t)`` (Nasr et al. 2023 use this statistic for their gradient canaries).
Any score keeps the audit valid (the one-run theorems hold for every function of the released
transcript that does not look at the coins); this one makes it tight against the mechanism the
accountant analyses.

**σ is read off the transcript, not taken from the claim.** A DP-SGD that adds less noise than it
claims is exactly what the audit must catch, and the likelihood ratio at the *claimed* σ is a poor
test against it: with σ too large it weighs every step almost alike, so the many steps where the
canary was not sampled drown the few where it was (measured: a run with half the noise, q = 0.05,
100 steps: 92 % of the top 100 guesses right with the claimed σ, 100 % with the estimated one).
The adversary sees the noisy sums, so it estimates the noise they carry:
:func:`estimate_noise_multiplier`, the median absolute deviation of all observations (in units
of C) scaled to a normal's standard deviation. Most observations are pure noise (a canary is
absent or not sampled), so the estimate is robust; interference from the real examples counts as
noise, as it should for this test.

**Last iterate** (only the final weights). The canary's gradient pushes the weights along −u, so
``⟨θ_0 − θ_T, u⟩`` is larger when the canary was trained on (θ_0 is known to the auditor: it is
drawn from the run's seed).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics import MetricsInputError

# A normal's standard deviation is its median absolute deviation times this.
_MAD_TO_STD = 1.4826


def estimate_noise_multiplier(observations: ArrayLike, *, clip: float) -> float:
    """The noise multiplier the noisy sums carry: ``1.4826 · MAD(o / C)`` over every
    observation (robust to the few steps in which a canary was sampled)."""
    values = _check_observations(observations)
    if not (np.isfinite(clip) and clip > 0):
        raise MetricsInputError(f"clip must be in (0, inf], got {clip!r}")
    z = values / clip
    return float(_MAD_TO_STD * np.median(np.abs(z - np.median(z))))


def _check_observations(observations: ArrayLike) -> np.ndarray:
    values = np.asarray(observations, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] == 0:
        raise MetricsInputError(
            f"observations must be (steps, canaries) with at least one canary, got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise MetricsInputError("observations hold NaN or infinite values")
    return values


def all_iterates_scores(
    observations: ArrayLike, *, noise_multiplier: float, sample_rate: float, clip: float
) -> np.ndarray:
    """``Σ_t log L(o_t / C)`` per canary, from ``observations`` of shape (steps, canaries),
    with ``L`` at ``noise_multiplier`` (pass :func:`estimate_noise_multiplier`'s value to test
    the noise the run actually added)."""
    values = _check_observations(observations)
    for name, value, low, high in (
        ("noise_multiplier", noise_multiplier, 0.0, np.inf),
        ("sample_rate", sample_rate, 0.0, 1.0),
        ("clip", clip, 0.0, np.inf),
    ):
        if not (low < value <= high) or not np.isfinite(value):
            raise MetricsInputError(f"{name} must be in ({low}, {high}], got {value!r}")
    z = values / clip
    exponent = (z - 0.5) / noise_multiplier**2
    if sample_rate == 1.0:
        return exponent.sum(axis=0)
    # log((1 − q) + q·e^a), stable for large |a|.
    per_step = np.logaddexp(np.log1p(-sample_rate), np.log(sample_rate) + exponent)
    return per_step.sum(axis=0)


def last_iterate_scores(initial: ArrayLike, final: ArrayLike) -> np.ndarray:
    """``⟨θ_0 − θ_T, u⟩`` per canary, from each canary's projection of the initial and final
    weights (higher = more likely trained on)."""
    start, end = np.asarray(initial, dtype=np.float64), np.asarray(final, dtype=np.float64)
    if start.shape != end.shape or start.ndim != 1 or len(start) == 0:
        raise MetricsInputError(
            f"initial and final projections must be equal-length vectors, got {start.shape} "
            f"and {end.shape}"
        )
    if not (np.isfinite(start).all() and np.isfinite(end).all()):
        raise MetricsInputError("projections hold NaN or infinite values")
    return start - end
