"""The one-run f-DP ε lower bound within the family of DP-SGD curves a run could have had.

The assumption-free bounds (:mod:`.one_run_epsilon`, and :func:`fdp_epsilon_lower_bound`
over the (ε, δ)-DP curves) say "the algorithm is not (ε, δ)-DP". An (ε, δ) curve is linear near
α = 0 and far below a Gaussian-like curve of the same ε(δ) in its bulk, so a test that sees the
bulk (many moderately confident guesses) rejects only a small ε. Mahloujifar, Melis and Chaudhuri
(2024) therefore report their empirical ε *within a family of curves* (Gaussian DP in their
experiments): the largest member of the family the one-run test rejects, stated as that member's
ε at δ. This module does the same with the family that fits a DP-SGD run best: the curves of
DP-SGD with the run's own sampling rates and step counts and **every noise level**, i.e. the
run's accountant history with each noise multiplier scaled by ``s > 0``.

**Statement.** Let ``f_s`` be the accountant's curve for the history scaled by ``s``
(:func:`claimed_tradeoff`); a larger ``s`` claims more noise, so ``f_s`` is larger and "the
algorithm is ``f_s``-DP" is a stronger claim, rejected on at least the same counts (the test's
recursion is monotone in ``f̄^{-1}``: :mod:`.one_run_fdp`). Let ``s*`` be the smallest
rejected scale found. If the algorithm *is* ``f_{s0}``-DP, then ``s* < s0`` requires ``s0`` to
be rejected, which has probability at most β = 1 − confidence. So, with probability at least
``confidence``: **if the run's privacy curve is that of DP-SGD with its sampling rates and steps
at some noise level, that level is below s*·σ, and its ε at δ is above the true ε of DP-SGD at
s*·σ**, reported from below: ``ε_lb`` is the PRV accountant's certified lower end at s*·σ
(:func:`mechanism_epsilon_lower_bound`), never the accountant's ε, which is an *upper* bound on
that member's true ε (RDP's by several percent). The test itself uses the accountant's curve
``f_s``: DP-SGD at s·σ is ``f_s``-DP, so rejecting ``f_s`` rejects that member. This is a bound
*under the family assumption*, the one the noise bugs satisfy (a wrong σ) and others need not (a
wrong sampling rate changes the family); reports say so. ``s = 1`` is the claim itself:
``claim_rejected`` is true exactly when the claim test at the same counts rejects the claim.

Numerics: the scale is bisected in log s over [s_min, 64] in 7 halvings (s to about 3 %; the
ε is read at the rejected end, so rounding only lowers it), each evaluation one accountant curve
(~0.02 s RDP, 0.2 to 4 s PRV). ``s_min`` is where the RDP accountant's ε reaches
:data:`FAMILY_EPSILON_CAP` (at least 1/64): one run of m canaries cannot show an ε near it (about
ln m), and below it the PRV discretisation grows without need (σ = 0.2 takes 0.8 GB). A scale
whose curve the accountant cannot compute counts as not rejected: it can only lower the bound.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from auditml.metrics.dp.accounting import accountant_epsilon, prv_epsilon_lower
from auditml.metrics.dp.one_run_epsilon import _check_settings
from auditml.metrics.dp.one_run_fdp import _check_counts, _rejects
from auditml.metrics.dp.tradeoff import CLAIM_ACCOUNTANTS, _check_history, claimed_tradeoff
from auditml.metrics.roc import MetricsInputError

_LOG_SCALE_RANGE = math.log(64.0)
_HALVINGS = 7
_FLOOR_HALVINGS = 6  # the floor need not be precise: it only bounds the search
FAMILY_EPSILON_CAP = 30.0
"""The family's least noisy member searched has this RDP ε at the run's δ (or 1/64 the noise)."""


@dataclass(frozen=True)
class FamilyBound:
    """The DP-SGD-family ε lower bound (see the module docstring for what it assumes).

    ``epsilon`` is the true ε at ``delta``, from below (the PRV accountant's certified lower
    end), of the least noisy DP-SGD (same sampling rates and steps, noise ``noise_scale`` times
    the run's) that the test rejected; 0 when even
    ``64×`` the run's noise was not rejected (then ``noise_scale`` is None). ``claim_rejected``
    says whether the run's own curve (scale 1) was rejected.
    """

    epsilon: float
    noise_scale: float | None
    claim_rejected: bool
    confidence: float
    delta: float
    correct: int
    guesses: int
    canaries: int
    family: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _scaled(
    history: Sequence[tuple[float, float, int]], scale: float
) -> list[tuple[float, float, int]]:
    return [(noise * scale, rate, steps) for noise, rate, steps in history]


def _quiet_epsilon(history: Sequence[tuple[float, float, int]], mechanism: str,
                   delta: float) -> float:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # RDP's "optimal order is the largest alpha"
        return accountant_epsilon(history, mechanism=mechanism, delta=delta)


def noise_family_epsilon_lower_bound(
    correct: int,
    guesses: int,
    canaries: int,
    history: object,
    *,
    mechanism: str,
    delta: float,
    confidence: float = 0.95,
) -> FamilyBound:
    """The one-run f-DP ε lower bound within the DP-SGD family of ``history`` (Opacus'
    ``(noise_multiplier, sample_rate, steps)`` list) from counts fixed in advance.

    Raises :class:`MetricsInputError` for bad counts, history, accountant name, δ or confidence.
    """
    correct, guesses, canaries = _check_counts(correct, guesses, canaries)
    checked = _check_history(history)
    if mechanism not in CLAIM_ACCOUNTANTS:
        raise MetricsInputError(
            f"`mechanism` must be one of {', '.join(CLAIM_ACCOUNTANTS)}, got {mechanism!r}."
        )
    delta, confidence = _check_settings(delta, confidence)
    if not 0 < delta < 1:
        raise MetricsInputError(f"`delta` must be in (0, 1) for an ε at δ, got {delta!r}.")
    level = 1 - confidence

    def rejected(log_scale: float) -> bool:
        try:
            with np.errstate(all="ignore"):  # Opacus' PRV overflows harmlessly at tiny noise
                scaled = _scaled(checked, math.exp(log_scale))
                curve = claimed_tradeoff(scaled, mechanism=mechanism)
        except (MetricsInputError, ValueError, RuntimeError, OverflowError):
            return False  # no curve, no claim to reject: never raises the bound
        return bool(_rejects(curve.blow_up_inverse, correct, guesses, canaries, level))

    claim_rejected = rejected(0.0)
    if claim_rejected:
        low, high = _log_scale_floor(checked, delta), 0.0
        if rejected(low):
            high = low  # even the floor's member is rejected: report that member
    else:
        low, high = 0.0, _LOG_SCALE_RANGE
        if not rejected(high):
            return FamilyBound(0.0, None, False, confidence, delta, correct, guesses,
                               canaries, _family(checked, mechanism))
    high = _first_true(rejected, low, high, _HALVINGS)
    scale = math.exp(high)  # rejected: the statement holds at this member
    epsilon = mechanism_epsilon_lower_bound(checked, noise_scale=scale, delta=delta)
    return FamilyBound(epsilon, scale, claim_rejected, confidence, delta, correct,
                       guesses, canaries, _family(checked, mechanism))


def _log_scale_floor(history: list[tuple[float, float, int]], delta: float) -> float:
    """log of the smallest scale searched: RDP ε there is about FAMILY_EPSILON_CAP (or 1/64)."""
    def too_leaky(log_scale: float) -> bool:
        scaled = _scaled(history, math.exp(log_scale))
        return _quiet_epsilon(scaled, "rdp", delta) > FAMILY_EPSILON_CAP

    low, high = -_LOG_SCALE_RANGE, 0.0
    if not too_leaky(low):
        return low
    if too_leaky(high):
        return high
    return _first_true(lambda log_scale: not too_leaky(log_scale), low, high, _FLOOR_HALVINGS)


def _first_true(
    predicate: Callable[[float], bool], low: float, high: float, halvings: int
) -> float:
    """Bisect for where a monotone ``predicate`` turns true (false at ``low``, true at
    ``high``) to ``_LOG_SCALE_RANGE / 2**halvings``; returns a point where it is true."""
    while high - low > _LOG_SCALE_RANGE / 2**halvings:
        middle = (low + high) / 2
        if predicate(middle):
            high = middle
        else:
            low = middle
    return high


def _family(history: list[tuple[float, float, int]], mechanism: str) -> str:
    steps = sum(steps for _, _, steps in history)
    rates = sorted({rate for _, rate, _ in history})
    shown = ", ".join(f"{rate:.4g}" for rate in rates)
    return f"DP-SGD at sample rate {shown}, {steps} steps, any noise ({mechanism} accountant)"


def mechanism_epsilon_lower_bound(
    history: object, *, noise_scale: float, sample_rate: float | None = None, delta: float
) -> float:
    """The true ε at ``delta`` of DP-SGD with ``history``'s steps, every noise multiplier times
    ``noise_scale`` and (if given) every sampling rate replaced by ``sample_rate``, from below
    (the PRV accountant's certified lower end,
    :func:`auditml.metrics.dp.accounting.prv_epsilon_lower`).

    Used with confidence bounds on what a run really did (:mod:`.mechanism_check`):
    if the run is DP-SGD with noise at most ``noise_scale × σ`` and rate at least
    ``sample_rate``, its true ε is at least this (the true ε falls as the noise grows and as the
    rate falls). Scales below where the RDP ε reaches :data:`FAMILY_EPSILON_CAP` are raised to
    it, and an undiscretisable PRV gives 0: both can only lower the bound.
    """
    checked = _check_history(history)
    if not (isinstance(noise_scale, (int, float)) and math.isfinite(noise_scale)
            and noise_scale > 0):
        raise MetricsInputError(f"`noise_scale` must be a positive number, got {noise_scale!r}.")
    if sample_rate is not None:
        if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
            raise MetricsInputError(f"`sample_rate` must be in (0, 1], got {sample_rate!r}.")
        checked = [(noise, float(sample_rate), steps) for noise, _, steps in checked]
    if not (isinstance(delta, float) and 0 < delta < 1):
        raise MetricsInputError(f"`delta` must be in (0, 1) for an ε at δ, got {delta!r}.")
    log_scale = max(math.log(noise_scale), _log_scale_floor(checked, delta))
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            epsilon = prv_epsilon_lower(_scaled(checked, math.exp(log_scale)), delta=delta)
    except (ValueError, RuntimeError, OverflowError, MemoryError):
        return 0.0
    return max(epsilon, 0.0)
