"""ε of a DP-SGD schedule, and the noise that reaches a target ε, in bounded time.

Opacus's accountants answer most questions in well under a second, but not all of them
(measured on one core, δ=1e-5, sampling rate 0.1, 20 steps, Opacus 1.6):

- PRV discretises the privacy loss on a grid of ``2 L / mesh`` points, with ``L`` an RDP bound
  on ε and ``mesh = 0.01 / sqrt(steps * log(12000 / δ) / 2)``. The time follows the grid:
  2.3e6 points (σ=0.1) took 3.6 s, 1.2e7 (σ=0.05) 33 s, σ=1e-3 asks for 237 GiB and σ=inf never
  ends. Opacus's calibration (a bisection from σ=0) walks into those grids for large targets:
  ε=1e3 or 1e6 ran for minutes. Here a PRV grid is sized first (one RDP evaluation, ~0.2 s) and
  refused above :data:`MAX_PRV_GRID_POINTS` (~1.5 s to evaluate).
- Both accountants raise on some inputs (PRV: "Floating point errors will dominate" for tiny
  δ, ``OverflowError`` for σ=0); those become a :class:`~auditml.errors.ConfigError` naming
  the setting.
- ε has a floor: no σ certifies less than ≈0.01 with PRV (its own ``eps_error``) or ≈0.1 with
  RDP (its largest order, 63). A smaller target is refused, saying what the floor is (RDP's is
  computed directly, without evaluating any σ).
- RDP's series for fractional orders converges slowly when the sampling rate is exactly 0.5
  (two batches per epoch): 1 s per ε at σ=1e3, 3 s at 1e4, 5 s at 1e6 (other rates: 0.03 s).
  σ is therefore searched, and allowed, up to 1e3 only, where ε is within 0.1% of its floor.

Calibration searches σ by regula falsi on ``log ε`` against ``log σ`` (nearly linear), from the
moments-accountant estimate ``σ ≈ q sqrt(2 T log(1/δ)) / ε``: about 5 evaluations where
Opacus's bisection makes 15. Like Opacus, it returns σ with ``target - 0.01 < ε <= target``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from auditml.config import MAX_NOISE_MULTIPLIER
from auditml.metrics.dp.accounting import (
    PRVGridTooLarge,
    prv_composition,
    prv_delta_error,
    prv_grid_spacing,
    rdp_epsilon,
    rdp_history_epsilon,
    rdp_orders,
)

# ~1.5 s per ε on one core and 8 MB per array; on the tutorial's schedule (q=0.05, 400 steps,
# δ=2e-4) PRV reaches ε≈45 within it. RDP has no grid and handles any target quickly.
MAX_PRV_GRID_POINTS = 1_000_000
# The most noise calibration tries, as the config allows (see MAX_NOISE_MULTIPLIER there).
MAX_SIGMA = MAX_NOISE_MULTIPLIER
EPSILON_TOLERANCE = 0.01  # as Opacus's get_noise_multiplier
_MAX_EVALUATIONS = 40
# What the accountants raise on inputs they cannot handle (PRV's "Cannot compute epsilon" is a
# RuntimeError; huge grids a MemoryError; σ=0 an OverflowError).
_ACCOUNTANT_ERRORS = (ValueError, ArithmeticError, RuntimeError, MemoryError)


class AccountingError(Exception):
    """The accountant cannot compute ε for this schedule; the message says why, in one line."""


def epsilon_spent(
    accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    """ε after ``steps`` Poisson-subsampled Gaussian steps, as Opacus's ``accountant`` computes
    it, or :class:`AccountingError` (never a hang: a PRV grid is sized before it is built)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            # RDP warns when the best order is the largest; PRV takes log(0) in its tails.
            warnings.simplefilter("ignore")
            if accountant == "prv":
                epsilon = _prv_epsilon(noise_multiplier, sample_rate, steps, delta)
            else:
                epsilon = _rdp_epsilon(noise_multiplier, sample_rate, steps, delta)
    except AccountingError:
        raise
    except _ACCOUNTANT_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise AccountingError(f"the {accountant} accountant fails: {reason}") from None
    if not math.isfinite(epsilon):
        raise AccountingError(f"the {accountant} accountant gives ε={epsilon}")
    # With δ near 0.1 and much noise both accountants' bounds go below 0 (e.g. -0.09): a bound
    # ε <= -0.09 also says ε <= 0, the true floor of ε.
    return max(float(epsilon), 0.0)


def _rdp_epsilon(sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    """RDPAccountant.get_epsilon for one (σ, q, steps) history entry."""
    return rdp_history_epsilon([(sigma, sample_rate, steps)], delta)


def _prv_epsilon(sigma: float, sample_rate: float, steps: int, delta: float) -> float:
    """PRVAccountant.get_epsilon for one (σ, q, steps) history entry, except that the grid is
    sized before it is built (:func:`~auditml.metrics.dp.accounting.prv_composition`)."""
    try:
        composition = prv_composition([(sigma, sample_rate, steps)],
                                      delta_error=prv_delta_error(delta),
                                      max_grid_points=MAX_PRV_GRID_POINTS)
    except PRVGridTooLarge as error:
        raise AccountingError(_grid_message(error.points)) from None
    return composition.epsilon_interval(delta)[2]


def _prv_mesh(steps: int, delta: float) -> float:
    """PRVAccountant's grid spacing (with eps_error 0.01, δ_err = δ/1000)."""
    return prv_grid_spacing(steps, delta_error=prv_delta_error(delta))


def _grid_message(points: float) -> str:
    return (
        f"the prv accountant would need a grid of {points:.2g} points, more than the "
        f"{MAX_PRV_GRID_POINTS:.0e} it evaluates in about a second"
    )


@lru_cache(maxsize=64)  # train checks the plan before loading data, then plans it again
def calibrate_noise(
    target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str
) -> float:
    """σ with ``target - 0.01 < ε <= target``, or :class:`AccountingError` saying why none is
    reachable (target below the accountant's floor, or beyond what PRV can evaluate)."""
    if accountant == "rdp":
        # RDP's ε with infinite noise (rdp = 0): its conversion alone, over its orders.
        floor, _ = rdp_epsilon(np.zeros(len(rdp_orders())), delta)
        if target_epsilon <= floor:
            raise AccountingError(
                f"the rdp accountant cannot certify less than ε={floor:.3g} at δ={delta:g}, "
                "whatever the noise"
            )
    if accountant == "prv":
        # At the answer the grid's half-width L (an RDP bound on ε at δ/4000, plus 3) is at least
        # target + 3 - 0.02: when even that grid is too large, refuse before any evaluation.
        points = 2 * (target_epsilon + 2.98) / _prv_mesh(steps, delta)
        if points > MAX_PRV_GRID_POINTS:
            raise AccountingError(_grid_message(points))
    search = _Search(target_epsilon, lambda sigma: epsilon_spent(
        accountant, sigma, sample_rate, steps, delta
    ))
    guess = sample_rate * math.sqrt(2 * steps * math.log(1 / delta)) / target_epsilon
    sigma = min(max(guess, 1e-3), MAX_SIGMA)
    search.try_sigma(sigma)
    while search.high is None:  # more noise until ε <= target
        if sigma >= MAX_SIGMA:
            raise AccountingError(search.floor_message(accountant))
        sigma = min(sigma * 4, MAX_SIGMA)
        search.try_sigma(sigma)
    while search.low is None:  # less noise until ε > target (or ε cannot be computed)
        if sigma < 1e-6:
            return sigma  # every σ this small meets the target: no finer answer
        sigma /= 4
        search.try_sigma(sigma)
    while not search.close_enough() and search.evaluations < _MAX_EVALUATIONS:
        if search.low_unevaluable and search.width() < math.log(1.01):
            break  # σ known to 1%, and the accountant cannot evaluate below it
        if not search.try_sigma(math.exp(search.next_log_sigma())):
            break
    if search.low_unevaluable and search.target - search.high_epsilon > max(
        EPSILON_TOLERANCE, 0.02 * search.target
    ):
        # PRV's grid limit (or an accountant failure) just below the answer: refuse rather
        # than add far more noise than the target asks for.
        raise AccountingError(
            f"the {accountant} accountant can certify at most ε≈{search.high_epsilon:.3g} "
            f"here ({search.last_failure})"
        )
    assert search.high is not None
    return math.exp(search.high[0])


class _Search:
    """Regula falsi (Illinois) on f(u) = log(ε(e^u) / target), u = log σ.

    ``high`` = (u, f) with f <= 0: a valid σ; ``low`` = (u, f) with f > 0, or f None when ε could
    not be computed there (treated as too little noise: ε only grows as σ shrinks).
    """

    def __init__(self, target: float, epsilon: Callable[[float], float]) -> None:
        self.target, self.epsilon = target, epsilon
        self.high: tuple[float, float] | None = None
        self.low: tuple[float, float | None] | None = None
        self.evaluations, self.last_failure, self._last_side = 0, "", ""

    @property
    def low_unevaluable(self) -> bool:
        return self.low is not None and self.low[1] is None

    @property
    def high_epsilon(self) -> float:
        assert self.high is not None
        return self.target * math.exp(self.high[1])

    def width(self) -> float:
        assert self.low is not None and self.high is not None
        return self.high[0] - self.low[0]

    def close_enough(self) -> bool:
        return self.high is not None and self.target - self.high_epsilon <= EPSILON_TOLERANCE

    def try_sigma(self, sigma: float) -> bool:
        """Evaluate ε(σ) and move one end of the bracket; False when σ adds nothing new."""
        u = math.log(sigma)
        if (self.high is not None and u >= self.high[0]) or (
            self.low is not None and u <= self.low[0]
        ):
            return False  # the bracket cannot shrink any further in floating point
        self.evaluations += 1
        try:
            epsilon = self.epsilon(sigma)
            excess: float | None = math.log(epsilon / self.target) if epsilon > 0 else -math.inf
        except AccountingError as error:
            self.last_failure, excess = str(error), None
        if excess is not None and excess <= 0:
            if self._last_side == "high" and self.low is not None and self.low[1] is not None:
                self.low = (self.low[0], self.low[1] / 2)  # Illinois step
            self.high, self._last_side = (u, excess), "high"
        else:
            if self._last_side == "low" and self.high is not None:
                self.high = (self.high[0], self.high[1] / 2)
            self.low, self._last_side = (u, excess), "low"
        return True

    def next_log_sigma(self) -> float:
        assert self.low is not None and self.high is not None
        (u_low, f_low), (u_high, f_high) = self.low, self.high
        if f_low is None or not math.isfinite(f_high) or f_low == f_high:
            return (u_low + u_high) / 2
        point = u_low + (u_high - u_low) * f_low / (f_low - f_high)
        margin = (u_high - u_low) / 64  # stay inside, so every step shrinks the bracket
        return min(max(point, u_low + margin), u_high - margin)

    def floor_message(self, accountant: str) -> str:
        if self.low is not None and self.low[1] is not None:
            floor = self.target * math.exp(self.low[1])
            return (
                f"even noise_multiplier={MAX_SIGMA:g} spends ε={floor:.3g} with the "
                f"{accountant} accountant (its floor)"
            )
        return f"no noise_multiplier up to {MAX_SIGMA:g} can be evaluated ({self.last_failure})"
