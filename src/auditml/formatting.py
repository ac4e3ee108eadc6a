"""How privacy parameters are written for people (one place, so every output agrees)."""

from __future__ import annotations

import math


def format_delta(delta: float | None) -> str:
    """δ in scientific notation with the shortest mantissa: 2e-04, 2.5e-05; "—" when absent."""
    if delta is None:
        return "—"
    mantissa, exponent = f"{delta:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exponent}"


def format_epsilon(epsilon: float | None) -> str:
    """ε to 2 decimals; "∞" for a run without DP (no finite guarantee)."""
    if epsilon is None or math.isinf(epsilon):
        return "∞"
    return f"{epsilon:.2f}"


def dp_guarantee_line(epsilon: float, delta: float) -> str:
    return f"Achieved DP guarantee: ε={format_epsilon(epsilon)}, δ={format_delta(delta)}"


def format_rate(rate: float | None) -> str:
    """A rate — TPR, FPR, accuracy, advantage — as a percentage to 1 decimal: 0.9%, 12.3%; "—"
    when absent. Every page and the terminal write rates with this, so one figure never appears
    as 0.006 in one place and 0.6% in another."""
    if rate is None:
        return "—"
    return f"{rate:.1%}"


def format_fpr_target(fpr: float) -> str:
    """An FPR target as a column name writes it: 1%, 0.1%, 10%."""
    return f"{100 * fpr:g}%"
