"""The ε an Opacus accountant certifies for a history of DP-SGD phases, computed once per (q, σ).

A history is Opacus' list of ``(noise_multiplier, sample_rate, steps)``. Opacus' RDP accountant
recomputes the whole RDP vector on every ``get_epsilon``, and a run asks for its ε every epoch:
at q = 0.5 one ``compute_rdp`` costs 0.6 s (the fractional orders' series converge slowly), 4 of
the 5 s of a small audit-dp run. ``compute_rdp`` is the one-step vector times ``steps``, so the
one-step vector is kept per (q, σ) and the arithmetic is Opacus' own, bit for bit. Opacus is
imported on first use: an audit that needs no accountant never pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

History = Sequence[tuple[float, float, int]]


def rdp_orders() -> list[float]:
    """The RDP orders Opacus' ``RDPAccountant`` uses by default."""
    from opacus.accountants import RDPAccountant

    return list(RDPAccountant.DEFAULT_ALPHAS)


@lru_cache(maxsize=1024)
def _rdp_one_step(sample_rate: float, sigma: float) -> tuple[float, ...]:
    from opacus.accountants.analysis import rdp as rdp_analysis

    return tuple(rdp_analysis.compute_rdp(
        q=sample_rate, noise_multiplier=sigma, steps=1, orders=rdp_orders()
    ))


def rdp_of_history(history: History) -> np.ndarray:
    """The RDP vector (over :func:`rdp_orders`) of ``history``, as ``RDPAccountant`` sums it."""
    return sum(  # type: ignore[return-value]
        np.asarray(_rdp_one_step(float(rate), float(sigma))) * steps
        for sigma, rate, steps in history
    )


def rdp_history_epsilon(history: History, delta: float) -> float:
    """``RDPAccountant`` with ``history`` ``.get_epsilon(delta)``, bit for bit."""
    from opacus.accountants.analysis import rdp as rdp_analysis

    epsilon, _ = rdp_analysis.get_privacy_spent(
        orders=rdp_orders(), rdp=rdp_of_history(history), delta=delta
    )
    return float(epsilon)


def accountant_epsilon(history: History, *, mechanism: str, delta: float) -> float:
    """The ε at ``delta`` that Opacus' ``mechanism`` accountant certifies for ``history``
    (``rdp`` through :func:`rdp_history_epsilon`)."""
    if mechanism == "rdp":
        return rdp_history_epsilon(history, delta)
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism=mechanism)
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta=delta))


def prv_epsilon_lower(history: History, *, delta: float, eps_error: float = 0.01) -> float:
    """A certified *lower* bound on the true ε at ``delta`` of the Poisson-subsampled Gaussian
    composition ``history``: the ``eps_lower`` end of the interval that the PRV accountant of
    Gopi, Lee and Wutschitz (2021) proves around the truth (Opacus' ``PRVAccountant`` reports
    the upper end). Raises ``ValueError``/``RuntimeError`` where the PRV cannot be discretised.
    """
    from opacus.accountants import PRVAccountant

    accountant = PRVAccountant()
    accountant.history = list(history)
    delta_error = delta / 1000
    dprv = accountant._get_dprv(eps_error=eps_error, delta_error=delta_error)
    lower, _, _ = dprv.compute_epsilon(delta, delta_error, eps_error)
    return float(lower)
