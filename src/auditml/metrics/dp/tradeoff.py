"""Trade-off curves: the hypothesis-testing form of a privacy guarantee, and the one a run claims.

Dong, Roth and Su 2019, "Gaussian Differential Privacy" (JRSS-B 2022). For two neighbouring
datasets, any test that tells them apart from the output has a type I error α and a type II error
β; the *trade-off function* ``T(α)`` is the smallest β achievable at type I error α. A mechanism is
``f``-DP when ``T >= f`` for every pair of neighbours, in both orders. Every curve built here is
*symmetric* (``f = f^{-1}``), as a guarantee for add/remove neighbours stated in both orders is.

**Curves.**

- Gaussian DP: ``G_μ(α) = Φ(Φ^{-1}(1 - α) - μ)`` (their Definition 2.3).
- (ε, δ)-DP: ``f_{ε,δ}(α) = max(0, 1 - δ - e^ε α, e^{-ε} (1 - δ - α))`` (their Proposition 2.5,
  after Kairouz, Oh and Viswanath 2015).
- A *profile*, a family of (ε_i, δ_i) guarantees that the mechanism has all at once:
  ``f(α) = max_i f_{ε_i,δ_i}(α)``. Valid because the trade-off function of the mechanism lies
  above each ``f_{ε_i,δ_i}``, hence above their maximum (their Proposition 2.12 in the limit of
  a full profile; with finitely many pairs the curve is only less tight, never wrong).

**The claim of a DP-SGD run** (:func:`claimed_tradeoff`) is the profile of the run's own
accountant: its ε(δ) on a grid of δ (:data:`CLAIM_DELTAS`), each an upper bound the accountant
certifies, so the curve is implied by the accountant's guarantees. Between grid points the curve
uses the neighbouring pairs' lines only: discretising loses tightness (the curve is lower than the
full profile by at most the gap between adjacent lines), never soundness.

Each curve also gives ``f̄^{-1}(y) = f(1 - y)``, the smallest probability an event can have under
one neighbour when it has probability ``y`` under the other (the inverse of ``x -> 1 - f(x)``,
equal to ``f(1 - y)`` for symmetric ``f``), computed without the rounding of ``1 - (1 - y)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from auditml.metrics.dp.accounting import certified_epsilons
from auditml.metrics.dp.trials_epsilon import _check_number, _shown
from auditml.metrics.roc import MetricsInputError, check_count

CLAIM_DELTAS: tuple[float, ...] = tuple(float(d) for d in np.logspace(-10, -0.05, 80))
"""The δ grid of :func:`claimed_tradeoff`: 80 values from 1e-10 to about 0.89, evenly spaced in
log δ. Small δ shape the curve near α = 0 (few, confident guesses); large δ near the diagonal."""

# The accountants whose ε(δ) is an upper bound on the mechanism's ε (Opacus' own names).
CLAIM_ACCOUNTANTS: tuple[str, ...] = ("prv", "rdp")


@dataclass(frozen=True, eq=False)
class TradeoffCurve:
    """A symmetric trade-off function ``f``: at type I error α, no test has type II error below
    ``f(α)``.

    ``kind == "gaussian"``: ``G_mu``. ``kind == "profile"``: the maximum of the (ε, δ)-DP curves
    of the pairs ``zip(epsilons, deltas)``. ``source`` says where the curve came from (e.g. the
    accountant and its history), for reports.
    """

    kind: Literal["gaussian", "profile"]
    source: str
    mu: float | None = None
    epsilons: tuple[float, ...] = ()
    deltas: tuple[float, ...] = ()
    _e_plus: np.ndarray = field(init=False, repr=False)
    _e_minus: np.ndarray = field(init=False, repr=False)
    _one_minus_delta: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Kept as arrays (shape (pairs, 1)) so each evaluation is one broadcast, no Python loop.
        epsilons = np.asarray(self.epsilons, dtype=float).reshape(-1, 1)
        object.__setattr__(self, "_e_plus", np.exp(epsilons))
        object.__setattr__(self, "_e_minus", np.exp(-epsilons))
        one_minus = 1 - np.asarray(self.deltas, dtype=float).reshape(-1, 1)
        object.__setattr__(self, "_one_minus_delta", one_minus)

    def __call__(self, alpha: ArrayLike) -> np.ndarray:
        """``f(alpha)`` for an array of type I errors in [0, 1] (values outside are clipped)."""
        return self.blow_up_inverse(1 - np.clip(np.asarray(alpha, dtype=float), 0.0, 1.0))

    def blow_up_inverse(self, y: ArrayLike) -> np.ndarray:
        """``f(1 - y)``: the least probability under one neighbour of an event of probability
        ``y`` under the other. Non-decreasing and convex in ``y``; ``y`` clipped to [0, 1]."""
        y = np.clip(np.asarray(y, dtype=float), 0.0, 1.0)
        if self.kind == "gaussian":
            # ndtri(0) = -inf and ndtr(-inf) = 0: the ends come out exact.
            return np.asarray(special.ndtr(special.ndtri(y) - self.mu))
        flat = y.reshape(1, -1)
        # f_{ε,δ}(1 - y) = max(0, e^{-ε} (y - δ), 1 - δ - e^ε (1 - y)), maximised over the pairs.
        low = self._e_minus * (flat - (1 - self._one_minus_delta))
        high = self._one_minus_delta - self._e_plus * (1 - flat)
        value = np.maximum(np.max(np.maximum(low, high), axis=0), 0.0)
        return value.reshape(y.shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: kind, source, and ``mu`` or the (ε, δ) pairs."""
        return {
            "kind": self.kind,
            "source": self.source,
            "mu": self.mu,
            "epsilons": list(self.epsilons),
            "deltas": list(self.deltas),
        }


def gaussian_tradeoff(mu: float) -> TradeoffCurve:
    """``G_mu``, the curve of μ-Gaussian DP (a Gaussian mechanism with sensitivity / σ = μ)."""
    checked = _check_number(mu, "mu", 0.0, math.inf, low_closed=True)
    return TradeoffCurve(kind="gaussian", source=f"{checked:g}-GDP", mu=checked)


def profile_tradeoff(
    epsilons: ArrayLike, deltas: ArrayLike, *, source: str = "(epsilon, delta) profile"
) -> TradeoffCurve:
    """The curve implied by holding every (``epsilons[i]``, ``deltas[i]``)-DP guarantee at once.

    Raises :class:`MetricsInputError` unless both are non-empty 1-D arrays of the same length,
    with every ε finite and >= 0 and every δ in [0, 1).
    """
    try:
        epsilon_array = np.atleast_1d(np.asarray(epsilons, dtype=float))
        delta_array = np.atleast_1d(np.asarray(deltas, dtype=float))
    except (TypeError, ValueError) as error:  # text, mappings, ragged lists
        raise MetricsInputError(f"`epsilons` and `deltas` must be arrays of numbers: {error}"
                                ) from None
    if (
        epsilon_array.ndim != 1
        or epsilon_array.shape != delta_array.shape
        or not len(epsilon_array)
    ):
        raise MetricsInputError(
            "`epsilons` and `deltas` must be non-empty 1-D arrays of the same length, got "
            f"shapes {epsilon_array.shape} and {delta_array.shape}."
        )
    if not np.all(np.isfinite(epsilon_array) & (epsilon_array >= 0)):
        raise MetricsInputError(
            f"every epsilon must be finite and >= 0, got {_shown(epsilon_array.tolist())}."
        )
    if not np.all((delta_array >= 0) & (delta_array < 1)):
        raise MetricsInputError(
            f"every delta must be in [0, 1), got {_shown(delta_array.tolist())}."
        )
    return TradeoffCurve(
        kind="profile",
        source=source,
        epsilons=tuple(epsilon_array.tolist()),
        deltas=tuple(delta_array.tolist()),
    )


def approximate_dp_tradeoff(epsilon: float, delta: float = 0.0) -> TradeoffCurve:
    """``f_{ε,δ}``, the curve of (ε, δ)-DP (pure ε-DP at ``delta == 0``)."""
    checked_epsilon = _check_number(epsilon, "epsilon", 0.0, math.inf, low_closed=True)
    checked_delta = _check_number(delta, "delta", 0.0, 1.0, low_closed=True)
    return profile_tradeoff(
        [checked_epsilon],
        [checked_delta],
        source=f"({checked_epsilon:g}, {checked_delta:g})-DP",
    )


# --- the claim of a DP-SGD run --------------------------------------------------------------


def _check_history(history: object) -> list[tuple[float, float, int]]:
    """Opacus' history: a non-empty list of (noise_multiplier > 0, 0 < sample_rate <= 1, steps)."""
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence) or not history:
        raise MetricsInputError(
            "the accountant `history` must be a non-empty list of (noise_multiplier, "
            f"sample_rate, steps), got {_shown(history)}; train at least one step first."
        )
    checked = []
    for position, entry in enumerate(history):
        where = f"`history[{position}]`"
        if not isinstance(entry, Sequence) or len(entry) != 3:
            raise MetricsInputError(
                f"{where} must be (noise_multiplier, sample_rate, steps), got {_shown(entry)}."
            )
        noise = _check_number(
            entry[0], f"{where}'s noise_multiplier", 0.0, math.inf, low_closed=False
        )
        rate = _check_number(
            entry[1],
            f"{where}'s sample_rate",
            0.0,
            1.0 + 1e-12,
            low_closed=False,
            why=" (at most 1)",
        )
        steps = check_count(entry[2], f"{where}'s steps")
        checked.append((noise, min(rate, 1.0), steps))
    return checked


def claimed_tradeoff(
    accountant: object,
    *,
    mechanism: str | None = None,
    deltas: ArrayLike | None = None,
) -> TradeoffCurve:
    """The trade-off curve a DP-SGD run claims, from its own accountant's (ε, δ) guarantees.

    ``accountant`` is an Opacus ``PRVAccountant`` or ``RDPAccountant`` (its ``history`` and
    ``mechanism()`` are read; it is not modified), or its ``history`` list of
    ``(noise_multiplier, sample_rate, steps)`` with ``mechanism`` ``"prv"`` or ``"rdp"``.
    For each δ of ``deltas`` (default :data:`CLAIM_DELTAS`) the accountant's certified ε(δ) is
    computed, reusing one accountant computation for the whole grid (PRV: one composed
    discretisation and its ``eps_upper``; RDP: one RDP curve and Opacus' conversion); a negative
    ε is read as 0 (a weaker, still certified claim) and a δ at which the accountant gives no
    finite ε is dropped. The result is :func:`profile_tradeoff` of those pairs.

    Cost: about 0.2 s (PRV, 1000 steps) to 0.8 s (PRV, 5000 steps); RDP about 0.02 s.

    **Assumption:** the accountant's (ε, δ) hold for add/remove neighbours in both directions, as
    the definition of (ε, δ)-DP requires; the curve is then symmetric. Opacus' ``gdp`` accountant
    is refused: its central-limit approximation is not an upper bound.

    Raises :class:`MetricsInputError` for another accountant, an empty or malformed history,
    or ``deltas`` not in (0, 1).
    """
    if mechanism is None:
        name_of = getattr(accountant, "mechanism", None)
        mechanism = name_of() if callable(name_of) else None
        history = getattr(accountant, "history", None)
    else:
        history = accountant
    if mechanism not in CLAIM_ACCOUNTANTS:
        allowed = ", ".join(repr(name) for name in CLAIM_ACCOUNTANTS)
        raise MetricsInputError(
            f"the accountant must be one of {allowed} (an Opacus PRVAccountant or RDPAccountant, "
            f"or its history with `mechanism=`), got {_shown(mechanism)}."
        )
    checked_history = _check_history(history)
    grid = np.asarray(CLAIM_DELTAS if deltas is None else deltas, dtype=float).ravel()
    if not len(grid) or not np.all((grid > 0) & (grid < 1)):
        raise MetricsInputError(f"`deltas` must be values in (0, 1), got {_shown(grid.tolist())}.")
    grid = np.unique(grid)
    epsilons = certified_epsilons(checked_history, grid, mechanism=mechanism)
    kept = np.isfinite(epsilons)
    if not np.any(kept):
        raise MetricsInputError(
            f"the {mechanism} accountant certified no finite epsilon at any of the deltas "
            f"{_shown(grid.tolist())}; the run claims no privacy to test."
        )
    steps = sum(steps for _, _, steps in checked_history)
    return profile_tradeoff(
        np.maximum(epsilons[kept], 0.0),
        grid[kept],
        source=f"{mechanism} accountant, {steps} steps",
    )
