"""Every ε this package computes from a DP-SGD history: the one accounting module.

A history is Opacus' list of ``(noise_multiplier, sample_rate, steps)``, one entry per phase of
Poisson-subsampled Gaussian steps. Everything that turns a history (or an RDP curve) into an ε
lives here: the ε a run spends (training, calibration, the own-loop audit), the curve a run
claims (:mod:`auditml.metrics.dp.tradeoff`), the RDP of a random-stopping tuner
(:mod:`auditml.training.tuning_privacy`) and certified *lower* bounds. Nothing else in
``auditml`` imports ``opacus.accountants`` (``tests/test_architecture.py`` checks it), and
Opacus' private API is touched in one function, :func:`_opacus_discrete_prv`, whose test
(``tests/metrics/test_accounting.py``) fails if Opacus changes it.

Opacus' RDP accountant recomputes the whole RDP vector on every ``get_epsilon``, and a run asks
for its ε every epoch: at q = 0.5 one ``compute_rdp`` costs 0.6 s (the fractional orders'
series converge slowly), 4 of the 5 s of a small audit-dp run. ``compute_rdp`` is the one-step
vector times ``steps``, so the one-step vector is kept per (q, σ) and the arithmetic is Opacus'
own, bit for bit. The PRV accountant sizes its grid from the same RDP bound (Gopi, Lee and
Wutschitz 2021, remark 5.6), computed here from the kept vectors, so a grid too large to
evaluate is refused before it is built. Opacus is imported on first use: an audit that needs
no accountant never pays for it.

:func:`shuffle_epsilon_lower_bound` (and :func:`shuffle_delta_lower_bound`) go the other way: a
certified *lower* bound on the ε of DP-SGD that shuffles the data into fixed-size batches, which
many training loops do while reporting the Poisson-subsampling ε computed above (Chua et al.,
ICML 2024 and NeurIPS 2024). Their docstrings state the theorem.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError, _shown, check_count

if TYPE_CHECKING:
    from opacus.accountants import IAccountant

History = Sequence[tuple[float, float, int]]

PRV_EPSILON_ERROR = 0.01
"""The PRV accountant's ε error: Opacus' default (``PRVAccountant.get_epsilon``)."""


def prv_delta_error(delta: float) -> float:
    """The PRV accountant's δ error for the (smallest) δ asked: Opacus' δ / 1000."""
    return delta / 1000


def rdp_orders() -> list[float]:
    """The RDP orders Opacus' ``RDPAccountant`` uses by default."""
    from opacus.accountants import RDPAccountant

    return list(RDPAccountant.DEFAULT_ALPHAS)


def _rdp_one_step_at(sample_rate: float, sigma: float, orders: Sequence[float]) -> np.ndarray:
    from opacus.accountants.analysis import rdp as rdp_analysis

    return np.asarray(rdp_analysis.compute_rdp(
        q=sample_rate, noise_multiplier=sigma, steps=1, orders=list(orders)
    ), dtype=float)


@lru_cache(maxsize=1024)
def _rdp_one_step(sample_rate: float, sigma: float) -> tuple[float, ...]:
    return tuple(_rdp_one_step_at(sample_rate, sigma, rdp_orders()))


def rdp_of_history(history: History, orders: ArrayLike | None = None) -> np.ndarray:
    """The RDP vector of ``history`` over ``orders`` (default :func:`rdp_orders`, memoised per
    (q, σ)), as ``RDPAccountant`` sums it."""
    if orders is None:
        return sum(  # type: ignore[return-value]
            np.asarray(_rdp_one_step(float(rate), float(sigma))) * steps
            for sigma, rate, steps in history
        )
    chosen = [float(order) for order in np.atleast_1d(np.asarray(orders, dtype=float))]
    return sum(  # type: ignore[return-value]
        _rdp_one_step_at(float(rate), float(sigma), chosen) * steps
        for sigma, rate, steps in history
    )


def rdp_epsilon(rdp: ArrayLike, delta: float, *, orders: ArrayLike | None = None
                ) -> tuple[float, float]:
    """(ε at ``delta``, the order that gives it) of the RDP curve ``rdp`` over ``orders``
    (default :func:`rdp_orders`): Opacus' conversion (Balle et al. 2020)."""
    from opacus.accountants.analysis import rdp as rdp_analysis

    epsilon, order = rdp_analysis.get_privacy_spent(
        orders=rdp_orders() if orders is None else orders, rdp=rdp, delta=delta
    )
    return float(epsilon), float(order)


def rdp_history_epsilon(history: History, delta: float) -> float:
    """``RDPAccountant`` with ``history`` ``.get_epsilon(delta)``, bit for bit."""
    return rdp_epsilon(rdp_of_history(history), delta)[0]


def accountant_epsilon(history: History, *, mechanism: str, delta: float) -> float:
    """The ε at ``delta`` that Opacus' ``mechanism`` accountant certifies for ``history``
    (``rdp`` through :func:`rdp_history_epsilon`, ``prv`` through :func:`prv_composition`,
    both equal to Opacus' ``get_epsilon``)."""
    if mechanism == "rdp":
        return rdp_history_epsilon(history, delta)
    if mechanism == "prv":
        composition = prv_composition(history, delta_error=prv_delta_error(delta))
        return composition.epsilon_interval(delta)[2]
    accountant = new_accountant(mechanism)
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta=delta))


def new_accountant(mechanism: str) -> IAccountant:
    """A fresh Opacus accountant (``rdp``, ``prv`` or ``gdp``) that records a history step by
    step (``accountant.step(noise_multiplier=..., sample_rate=...)``); read its ε with
    :func:`spent_epsilon`."""
    from opacus.accountants import create_accountant

    return create_accountant(mechanism=mechanism)


def spent_epsilon(accountant: IAccountant, delta: float) -> float:
    """``accountant.get_epsilon(delta)`` of an Opacus accountant (one of a ``PrivacyEngine``'s, or
    :func:`new_accountant`'s), its RDP computed once per (q, σ) (module docstring)."""
    mechanism = accountant.mechanism()
    if mechanism in ("rdp", "prv"):
        return accountant_epsilon(list(accountant.history), mechanism=mechanism, delta=delta)
    return float(accountant.get_epsilon(delta=delta))


def certified_epsilons(history: History, deltas: ArrayLike, *, mechanism: str) -> np.ndarray:
    """The ε(δ) that the ``mechanism`` (``prv`` or ``rdp``) accountant certifies for
    ``history`` at each of ``deltas``, reusing one accountant computation for the whole grid;
    ``inf`` where it certifies none (a δ outside the PRV discretisation's reach)."""
    grid = np.asarray(deltas, dtype=float)
    if mechanism == "prv":
        # One discretised, composed PRV serves every δ of the grid: its error guarantee (Gopi et
        # al. 2021, Theorem 10) is uniform in δ, and the upper end adds both error terms, exactly
        # as `PRVAccountant.get_epsilon` does for one δ. (`compute_delta_estimate` has no error
        # term, so it is not an upper bound and is not used.)
        composition = prv_composition(
            history, delta_error=prv_delta_error(float(np.min(grid)))
        )
        epsilons = np.full(len(grid), np.inf)
        for index, delta in enumerate(grid):
            try:
                epsilons[index] = composition.epsilon_interval(float(delta))[2]
            except (ValueError, RuntimeError):
                continue  # δ outside the discretisation's reach: no ε certified there
        return epsilons
    # The RDP curve is computed once; each δ is then Opacus' own conversion (Balle et al. 2020).
    rdp = rdp_of_history(history)
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha" warnings: the ε is still an upper bound.
        warnings.simplefilter("ignore")
        return np.array([rdp_epsilon(rdp, float(delta))[0] for delta in grid], dtype=float)


# --- the PRV accountant (Gopi, Lee and Wutschitz 2021) ---------------------------------------


class PRVGridTooLarge(ValueError):
    """The PRV grid a history needs has more points than the caller allows (``points``)."""

    def __init__(self, points: float) -> None:
        self.points = points
        super().__init__(f"the PRV grid would need {points:.2g} points")


def prv_grid_spacing(total_steps: int, *, delta_error: float,
                     eps_error: float = PRV_EPSILON_ERROR) -> float:
    """The PRV accountant's grid spacing (Opacus' ``PRVAccountant`` domain mesh)."""
    return float(eps_error / np.sqrt(total_steps * np.log(12 / delta_error) / 2))


def prv_half_width(history: History, *, delta_error: float,
                   eps_error: float = PRV_EPSILON_ERROR) -> float:
    """The half-width ``L`` of the PRV accountant's grid [-L, L] (Opacus'
    ``compute_safe_domain_size``: the composed RDP bound at δ_err/4 and each phase's one-step
    bound at δ_err/(8T), at least ``eps_error``, plus 3), from the memoised RDP vectors."""
    total = sum(int(steps) for _, _, steps in history)
    bound = rdp_history_epsilon(history, delta_error / 4)
    for sigma, rate, _ in history:
        bound = max(bound, rdp_history_epsilon([(sigma, rate, 1)], delta_error / (8 * total)))
    return max(bound, eps_error) + 3


@dataclass(frozen=True, eq=False)
class PRVComposition:
    """The discretised, composed privacy loss of a history (Gopi et al. 2021), to read ε from."""

    discrete_prv: Any  # Opacus' DiscretePRV
    delta_error: float
    eps_error: float

    def epsilon_interval(self, delta: float) -> tuple[float, float, float]:
        """(certified lower bound, estimate, certified upper bound) of the true ε at ``delta``;
        Opacus' ``PRVAccountant.get_epsilon`` reports the upper end. Raises ``ValueError`` or
        ``RuntimeError`` where the discretisation cannot reach ``delta``."""
        lower, estimate, upper = self.discrete_prv.compute_epsilon(
            delta, self.delta_error, self.eps_error
        )
        return float(lower), float(estimate), float(upper)


def prv_composition(history: History, *, delta_error: float,
                    eps_error: float = PRV_EPSILON_ERROR,
                    max_grid_points: float = math.inf) -> PRVComposition:
    """The PRV accountant's composition of ``history``, as Opacus' ``PRVAccountant`` builds
    it, its grid sized first: :class:`PRVGridTooLarge` when it would have more than
    ``max_grid_points`` points (the time and memory follow the grid: 2.3e6 points take ~4 s,
    σ = 1e-3 would ask for 237 GiB)."""
    half_width = prv_half_width(history, delta_error=delta_error, eps_error=eps_error)
    total = sum(int(steps) for _, _, steps in history)
    points = 2 * half_width / prv_grid_spacing(total, delta_error=delta_error,
                                               eps_error=eps_error)
    if not points <= max_grid_points:
        raise PRVGridTooLarge(points)
    discrete = _opacus_discrete_prv(history, eps_error=eps_error, delta_error=delta_error,
                                    half_width=half_width)
    return PRVComposition(discrete, delta_error, eps_error)


def _opacus_discrete_prv(history: History, *, eps_error: float, delta_error: float,
                         half_width: float) -> Any:
    """Opacus' ``PRVAccountant._get_dprv`` for ``history`` on the grid [-half_width,
    half_width] (its ``_get_domain`` given the half-width computed already, so the RDP bound is
    not computed twice): the one use of Opacus' private API in ``auditml``.
    ``test_opacus_private_prv_api_is_what_the_wrapper_expects`` fails if Opacus changes it."""
    from opacus.accountants import PRVAccountant
    from opacus.accountants.analysis.prv import Domain

    class _SizedPRVAccountant(PRVAccountant):
        def _get_domain(self, prvs: Any, num_self_compositions: Sequence[int],
                        eps_error: float, delta_error: float) -> Any:
            spacing = prv_grid_spacing(sum(num_self_compositions), delta_error=delta_error,
                                       eps_error=eps_error)
            return Domain.create_aligned(-half_width, half_width, spacing)

    accountant = _SizedPRVAccountant()
    accountant.history = [(float(s), float(q), int(t)) for s, q, t in history]
    with np.errstate(divide="ignore"):  # Opacus takes log(1 - q) = log(0) at sample rate 1
        return accountant._get_dprv(eps_error=eps_error, delta_error=delta_error)


def prv_epsilon_lower(history: History, *, delta: float,
                      eps_error: float = PRV_EPSILON_ERROR) -> float:
    """A certified *lower* bound on the true ε at ``delta`` of the Poisson-subsampled Gaussian
    composition ``history``: the ``eps_lower`` end of the interval that the PRV accountant of
    Gopi, Lee and Wutschitz (2021) proves around the truth (Opacus' ``PRVAccountant`` reports
    the upper end). Raises ``ValueError``/``RuntimeError`` where the PRV cannot be discretised.
    """
    composition = prv_composition(history, delta_error=prv_delta_error(delta),
                                  eps_error=eps_error)
    return composition.epsilon_interval(delta)[0]


# ---------------------------------------------------------------------------------------------
# Shuffled fixed-size batches: a certified lower bound on the ε of DP-SGD.
#
# Grid choices (all in units where the clipping norm is 1; "loss" is the privacy loss
# log(p/q) of one epoch's pair of slice distributions):
#
# * Each tail cell holds P-mass e^-40 (4e-18): everything between is sliced finely, and the two
#   tails are one cell each, so no P-mass is lost, only resolution in two cells nobody needs.
# * Slice width 1e-3·σ·min(1, σ) in M = max_t x_t. For T = 1 the loss is (M − 3/2)/σ² and its
#   spread is 1/σ, so one slice moves the loss by at most 1e-3·min(1, spread): merging the
#   inside of a slice costs well under 1e-3 in ε (slices 10x wider change the third decimal of
#   the single-epoch ε at most, for T up to 1000 and σ from 0.3 to 3). At most 2^18 slices (a
#   tiny σ/√E with ``reshuffle=False``), which keeps one epoch's cells to ~20 ms.
# * Composition grid h = max(W/450 000, w/2^18), W the width of the E-fold loss distribution
#   (measured by a coarse pilot composition) and w that of one epoch's. Rounding down costs at
#   most E·h in ε: at E = 100 at most 2.2e-4 of W (≤ 0.07 at σ = 0.5, where W ≈ 290 and
#   ε ≈ 280; ≤ 0.007 at σ = 1, T = 1000, where ε ≈ 10). 450 000 bins keep each squaring's FFT at
#   length 2^20, so E = 100 epochs take a few tenths of a second.
# * After every convolution the two ends holding P-mass ≤ 1e-12 each are cut: the float noise
#   of an FFT never lets a tail fall to zero, and cutting mass only lowers δ (by ≤ 1e-12 a cut).

_TAIL_LOG_MASS = -40.0
_SLICE_STEP = 1e-3
_MAX_SLICES = 2**18
_PILOT_BINS = 2**18
_TARGET_BINS = 450_000
_EPOCH_BINS = 2**18
_TRIM_MASS = 1e-12
# Float slack: the cell masses and losses come from log Φ (a few ulp) through differences of
# neighbouring log-CDFs; against 500-digit mpmath their errors (log-mass and loss) stay below
# 1.1e-10 on these grids (σ from 0.05 to 3, T from 1 to 1000), a thousandth of the slack.
# Losses are lowered by _LOSS_SLACK (plus _LOSS_SLACK_REL·|L|, for huge losses) and masses
# shrunk by _MASS_SLACK before anything else, so both errors can only lower δ.
_LOSS_SLACK = 1e-7
_LOSS_SLACK_REL = 1e-10
_MASS_SLACK = 1e-7
_UNIT_ROUNDOFF = 2.0**-53
# FFT round-off. For c = a * b computed as irfft(rfft(a)·rfft(b)) at a power-of-two length N,
# each FFT is within α‖·‖₂ of exact with α = 7·u·log2(N) (Higham, "Accuracy and Stability of
# Numerical Algorithms", 2nd ed., Thm 24.2, twiddles accurate to u); carrying that through
# two forward FFTs, the product (‖Fa‖∞ ≤ ‖a‖₁) and the inverse gives
#     ‖ĉ − c‖₂ ≤ (2α + 3u)(‖a‖₂‖b‖₁ + ‖a‖₁‖b‖₂) ≤ 17·u·log2(N)·(‖a‖₂‖b‖₁ + ‖a‖₁‖b‖₂),
# and over the n kept entries ‖·‖₁ ≤ √n‖·‖₂. _FFT_CONSTANT = 32 > 17 covers the second-order
# terms with room to spare. Clipping negatives to 0 only moves entries towards the truth.
_FFT_CONSTANT = 32.0


def _check_shuffle_args(
    noise_multiplier: object, steps_per_epoch: object, epochs: object, reshuffle: object
) -> tuple[float, int, int]:
    if (isinstance(noise_multiplier, (bool, np.bool_))
            or not isinstance(noise_multiplier, numbers.Real)
            or not math.isfinite(noise_multiplier) or noise_multiplier <= 0):
        raise MetricsInputError(
            f"`noise_multiplier` must be a positive number, got {_shown(noise_multiplier)}."
        )
    steps, count = check_count(steps_per_epoch, "steps_per_epoch"), check_count(epochs, "epochs")
    if not isinstance(reshuffle, (bool, np.bool_)):
        raise MetricsInputError(f"`reshuffle` must be True or False, got {_shown(reshuffle)}.")
    return float(noise_multiplier), steps, count


def _log_cdf_of_max(cap: np.ndarray, mean: float, sigma: float, steps: int) -> np.ndarray:
    """log P(max_t x_t ≤ cap) under MoG(mean) = log Φ((cap − mean)/σ) + (T − 1) log Φ(cap/σ)."""
    from scipy.special import log_ndtr

    return log_ndtr((cap - mean) / sigma) + (steps - 1) * log_ndtr(cap / sigma)


def _log_sf_of_max(cap: np.ndarray, mean: float, sigma: float, steps: int) -> np.ndarray:
    """log P(max_t x_t > cap) under MoG(mean), with no 1 − (1 − tiny) cancellation:
    1 − Φ(a)Φ(b)^(T−1) = Φ̄(a) + Φ(a)(1 − Φ(b)^(T−1))."""
    from scipy.special import log_ndtr

    shifted = (cap - mean) / sigma
    first = log_ndtr(-shifted)
    if steps == 1:
        return first
    with np.errstate(divide="ignore"):
        rest = log_ndtr(shifted) + np.log(-np.expm1((steps - 1) * log_ndtr(cap / sigma)))
    return np.logaddexp(first, rest)


def _log_difference(log_high: np.ndarray, log_low: np.ndarray) -> np.ndarray:
    """log(e^log_high − e^log_low); −inf where the two are (numerically) equal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return log_high + np.log(-np.expm1(log_low - log_high))


def _epoch_cells(sigma: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The privacy losses log(p_i/q_i), lowered by the float slack, and the P-masses p_i, shrunk
    by it, of the cells (−∞, ℓ], the slices of (ℓ, u], and (u, ∞) of M = max_t x_t for one
    epoch of MoG(2) versus MoG(1). Cells whose mass underflows under P or Q are left out."""
    from scipy.optimize import brentq

    def excess(log_mass: float) -> float:
        return log_mass - _TAIL_LOG_MASS

    wide = (2.0 - 60.0 * sigma, 2.0 + 60.0 * sigma)
    low = brentq(lambda c: excess(_log_cdf_of_max(np.array([c]), 2.0, sigma, steps)[0]), *wide)
    high = brentq(lambda c: excess(_log_sf_of_max(np.array([c]), 2.0, sigma, steps)[0]), *wide)
    width = _SLICE_STEP * sigma * min(1.0, sigma)
    slices = min(_MAX_SLICES, max(1, math.ceil((high - low) / width)))
    caps = np.linspace(low, high, slices + 1)
    log_masses = []
    for mean in (2.0, 1.0):
        log_cdf = _log_cdf_of_max(caps, mean, sigma, steps)
        log_sf = _log_sf_of_max(caps, mean, sigma, steps)
        # Below the median a slice is a difference of CDFs, above it one of survival functions:
        # never the difference of two numbers near 1.
        inner = np.where(
            log_cdf[1:] < math.log(0.5),
            _log_difference(log_cdf[1:], log_cdf[:-1]),
            _log_difference(log_sf[:-1], log_sf[1:]),
        )
        log_masses.append(np.concatenate([log_cdf[:1], inner, log_sf[-1:]]))
    log_p, log_q = log_masses
    kept = np.isfinite(log_p) & np.isfinite(log_q)
    losses = log_p[kept] - log_q[kept]
    losses = losses - (_LOSS_SLACK + _LOSS_SLACK_REL * np.abs(losses))
    return losses, np.exp(log_p[kept]) * (1.0 - _MASS_SLACK)


def _trimmed(weights: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
    """Cut the two ends holding at most _TRIM_MASS each (only lowers δ)."""
    start = int(np.searchsorted(np.cumsum(weights), _TRIM_MASS, side="right"))
    stop = len(weights) - int(np.searchsorted(np.cumsum(weights[::-1]), _TRIM_MASS, side="right"))
    if start >= stop:  # cannot happen for a probability vector; keep the largest bin
        start = int(np.argmax(weights))
        stop = start + 1
    return weights[start:stop], offset + start


def _on_grid(losses: np.ndarray, masses: np.ndarray, step: float) -> tuple[np.ndarray, int]:
    """The P-distribution of ⌊L/h⌋: bin k holds the mass of the losses in [k·h, (k+1)·h)."""
    bins = np.floor(losses / step).astype(np.int64)
    first = int(bins.min())
    return _trimmed(np.bincount(bins - first, weights=masses), first)


def _convolved(
    first: tuple[np.ndarray, int, float], second: tuple[np.ndarray, int, float]
) -> tuple[np.ndarray, int, float]:
    """(weights, offset, ℓ1 error bound) of the convolution of two such triples."""
    from scipy import fft

    a, a_offset, a_error = first
    b, b_offset, b_error = second
    length = len(a) + len(b) - 1
    size = 1 << max(1, (length - 1).bit_length())
    a_hat = fft.rfft(a, size)
    b_hat = a_hat if b is a else fft.rfft(b, size)  # squaring: one forward FFT
    product = fft.irfft(a_hat * b_hat, size)[:length]
    np.maximum(product, 0.0, out=product)  # clipping towards the (non-negative) truth
    a_mass, b_mass = float(a.sum()), float(b.sum())
    a_norm, b_norm = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    round_off = (_FFT_CONSTANT * _UNIT_ROUNDOFF * math.log2(size) * math.sqrt(length)
                 * (a_norm * b_mass + a_mass * b_norm))
    error = a_error * b_mass + b_error * a_mass + a_error * b_error + round_off
    weights, offset = _trimmed(product, a_offset + b_offset)
    return weights, offset, error


def _self_composed(weights: np.ndarray, offset: int, epochs: int) -> tuple[np.ndarray, int, float]:
    """The ``epochs``-fold convolution power, by repeated squaring."""
    result: tuple[np.ndarray, int, float] | None = None
    power = (weights, offset, 0.0)
    remaining = epochs
    while True:
        if remaining & 1:
            result = power if result is None else _convolved(result, power)
        remaining >>= 1
        if not remaining:
            break
        power = _convolved(power, power)
    assert result is not None
    return result


@lru_cache(maxsize=4)
def _loss_distribution(
    sigma: float, steps: int, epochs: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(sorted losses, their P-masses, ℓ1 error bound) of ``epochs`` reshuffled epochs: δ_lower(ε)
    is Σ_{L > ε} m·(1 − e^(ε − L)) minus the bound. The arrays are read-only (cached)."""
    losses, masses = _epoch_cells(sigma, steps)
    order = np.argsort(losses, kind="stable")
    losses, masses = losses[order], masses[order]
    if epochs == 1:
        sorted_losses, sorted_masses, error = losses, masses, 0.0
    else:
        # Cut the ends of one epoch first (only lowers δ): the tail cells' extreme losses would
        # otherwise stretch the grid.
        kept, start = _trimmed(masses, 0)
        losses, masses = losses[start:start + len(kept)], kept
        spread = float(losses[-1] - losses[0])
        pilot_step = max(spread, 1e-12) / max(64, _PILOT_BINS // epochs)
        pilot, _, _ = _self_composed(*_on_grid(losses, masses, pilot_step), epochs)
        width = (len(pilot) + epochs) * pilot_step  # each floor moves a loss by < one bin
        step = max(width / _TARGET_BINS, spread / _EPOCH_BINS, 1e-12)
        weights, offset, error = _self_composed(*_on_grid(losses, masses, step), epochs)
        sorted_losses = step * (offset + np.arange(len(weights), dtype=np.float64))
        sorted_masses = weights
    sorted_losses.setflags(write=False)
    sorted_masses.setflags(write=False)
    return sorted_losses, sorted_masses, error


def _delta_lower(epsilon: float, distribution: tuple[np.ndarray, np.ndarray, float]) -> float:
    losses, masses, error = distribution
    start = int(np.searchsorted(losses, epsilon, side="right"))
    terms = masses[start:] * -np.expm1(epsilon - losses[start:])
    # Non-negative terms, each within a few ulp, summed pairwise: 1e-12 covers their round-off.
    return max(0.0, float(np.sum(terms)) * (1.0 - 1e-12) - error)


def _shuffle_distribution(
    sigma: float, steps: int, epochs: int, reshuffle: bool
) -> tuple[np.ndarray, np.ndarray, float]:
    if reshuffle:
        return _loss_distribution(sigma, steps, epochs)
    return _loss_distribution(sigma / math.sqrt(epochs), steps, 1)


def shuffle_delta_lower_bound(
    epsilons: ArrayLike,
    *,
    noise_multiplier: float,
    steps_per_epoch: int,
    epochs: int,
    reshuffle: bool = True,
) -> np.ndarray:
    """A certified lower bound on δ(ε), at each of ``epsilons``, of DP-SGD that shuffles the
    data into fixed-size batches (Chua, Ghazi, Kamath, Kumar, Manurangsi, Sinha, Zhang: "How
    Private are DP-SGD Implementations?", ICML 2024, arXiv:2403.17673, and "Scalable DP-SGD:
    Shuffling vs. Poisson Subsampling", NeurIPS 2024, arXiv:2411.04205).

    **Mechanism.** Each epoch a uniformly random permutation cuts the data into T =
    ``steps_per_epoch`` batches of one size b; step t releases the sum of its batch's clipped
    gradients (clipping norm C = 1; every unit here is one C) plus N(0, σ²) noise, σ =
    ``noise_multiplier``; E = ``epochs`` epochs, a fresh permutation each (``reshuffle=True``) or
    one for all (``reshuffle=False``). Every iterate counts as released, as DP-SGD accounting
    assumes, so the noisy sums can be read off the iterates. (A mechanism that releases only the
    last model is not covered: it may be more private than this bound.)

    **The pair (zeroing-out adjacency).** A one-dimensional model with a linear loss w·x, so an
    example's gradient is its x, which clipping leaves alone. In D one example x* has x = +1 and
    all others x = −1; D' zeroes x* out (x = 0) and keeps the rest. Adding b to every released
    sum (−b is the sum of a batch of −1s, the same under D and D') leaves one epoch's T sums as
    P = MoG(2) under D and Q = MoG(1) under D', MoG(μ) = (1/T) Σ_t N(μ·e_t, σ²·I_T): x* sits in
    a uniformly random batch t. Fresh permutations make the epochs independent: P^⊗E against
    Q^⊗E. With one permutation x* is in the same batch every epoch, the sum over epochs is
    sufficient for the pair, and E epochs are one epoch at σ/√E.

    **Theorem.** For every ε ≥ 0 the value returned is at most sup_S P^⊗E(S) − e^ε Q^⊗E(S), and
    so at most the mechanism's δ(ε): where it exceeds δ, these σ, T, E are not (ε, δ)-DP.
    Proof. (1) Post-processing never raises a hockey-stick divergence. Mapping each epoch to
    the cell of M = max_t x_t in the partition (−∞, ℓ], fine slices of (ℓ, u], (u, ∞) is one,
    and M's CDF is closed-form: P(M ≤ c) = Φ((c − 2)/σ)·Φ(c/σ)^(T−1), Q(M ≤ c) =
    Φ((c − 1)/σ)·Φ(c/σ)^(T−1) (computed in log space). (2) For a discrete pair,
    δ(ε) = E_P[(1 − e^(ε−L))₊] with L = log(p/q) (L = +∞ where q = 0), and the L of a product is
    the sum of the E epochs' independent losses, drawn under P. (3) The integrand is
    non-decreasing in L, so rounding each epoch's loss DOWN onto a grid of spacing h (and
    lowering it by a float slack) can only lower it; so can leaving out P-mass (cells whose P-
    or Q-mass underflows, whose loss cannot be represented, and ends of at most 1e-12 cut
    after each convolution), as every term is non-negative. (4) The E-fold distribution of the
    rounded loss is the E-fold convolution of one epoch's, done by FFT; its negative round-off is
    clipped to 0 and a proven ℓ1 bound on the round-off is subtracted, which suffices because
    every coefficient (1 − e^(ε−L))₊ lies in [0, 1]. □

    The bound is deterministic (no sampling, so no confidence level) and concerns the
    mechanism's worst case: it holds for any data, loss and model family containing this
    one-dimensional example; a given run on given data may leak far less, and the mechanism's
    true δ may be larger, since this pair need not be the worst. Opacus reports the Poisson ε for
    add/remove adjacency; under Poisson sampling removing an example and zeroing it out give the
    same output distribution (a zero adds nothing to a sum), so the subsampled Gaussian curve
    is the same under both and the two numbers compare like with like.

    Accuracy: for T = 1 the pair is the Gaussian mechanism at σ/√E and the bound is within
    0.1 % of its exact δ(ε) over the tested range; rounding costs at most E·h in ε. The
    subtracted round-off bound (about 2e-10 at E = 100, T = 1000) dominates where δ is below
    ~1e-8: the bound stays valid there but is loose. Returns an array shaped like ``epsilons``.
    """
    sigma, steps, count = _check_shuffle_args(noise_multiplier, steps_per_epoch, epochs, reshuffle)
    values = np.asarray(epsilons)
    if (values.dtype.kind not in "iuf" or not np.all(np.isfinite(values))
            or np.any(values < 0)):
        raise MetricsInputError(
            f"`epsilons` must be finite non-negative numbers, got {_shown(epsilons)}."
        )
    distribution = _shuffle_distribution(sigma, steps, count, bool(reshuffle))
    flat = [_delta_lower(float(value), distribution) for value in values.ravel()]
    return np.asarray(flat, dtype=np.float64).reshape(values.shape)


def shuffle_epsilon_lower_bound(
    *,
    noise_multiplier: float,
    steps_per_epoch: int,
    epochs: int,
    delta: float,
    reshuffle: bool = True,
) -> float:
    """A certified lower bound on the ε at ``delta`` of DP-SGD with shuffled fixed-size batches:
    sup{ε ≥ 0 : δ_lower(ε) > ``delta``}, with δ_lower from :func:`shuffle_delta_lower_bound` (its
    docstring states the mechanism, the pair, the adjacency and the theorem). δ_lower is
    continuous and non-increasing, so for every ε below the value returned δ_lower(ε) > δ: the
    mechanism is not (ε, δ)-DP under zeroing-out adjacency, for any data, loss and model family
    containing the one-dimensional example. Deterministic, no confidence level. Bisection to a
    relative 1e-12, keeping the end where δ_lower(ε) > δ was checked; 0.0 when δ_lower(0) ≤ δ.

    Compare with the ε Opacus certifies for Poisson sampling at q = 1/T over T·E steps
    (:func:`accountant_epsilon`): where this lower bound is larger, reporting the Poisson ε for
    a shuffled loop overstates its privacy (Chua et al. 2024, arXiv:2403.17673, 2411.04205).
    """
    sigma, steps, count = _check_shuffle_args(noise_multiplier, steps_per_epoch, epochs, reshuffle)
    if (isinstance(delta, (bool, np.bool_)) or not isinstance(delta, numbers.Real)
            or not 0 < delta < 1):
        raise MetricsInputError(f"`delta` must be in (0, 1), got {_shown(delta)}.")
    distribution = _shuffle_distribution(sigma, steps, count, bool(reshuffle))
    target = float(delta)
    if _delta_lower(0.0, distribution) <= target:
        return 0.0
    low, high = 0.0, float(distribution[0][-1])  # no loss above `high`: δ_lower(high) = 0
    while high - low > 1e-12 * max(1.0, high):
        middle = 0.5 * (low + high)
        if not low < middle < high:
            break
        if _delta_lower(middle, distribution) > target:
            low = middle
        else:
            high = middle
    return low
