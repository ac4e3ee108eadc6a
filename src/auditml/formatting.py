"""How privacy parameters are written for people (one place, so every output agrees)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditml.records import GaussianBoundRecord


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


def format_confidence(confidence: float) -> str:
    """A confidence level as a percentage with the decimals it needs, to 0.01 points: 95%,
    99.5%, 98.33%. One format everywhere (the terminal wrote 95.0% where the pages wrote 95%),
    and never rounded up to a 100% that no bound has (99.999%)."""
    percent = 100 * confidence
    for decimals in range(7):
        text = f"{percent:.{decimals}f}"
        if abs(float(text) - percent) < 0.005 and (float(text) < 100 or confidence >= 1):
            return f"{text}%"
    return f"{percent}%"


def gaussian_bound_words(bound: Mapping[str, Any] | GaussianBoundRecord) -> str:
    """A canary audit's bound under the Gaussian assumption, labelled and with its checks:
    "ε ≥ 3.10 under the Gaussian assumption (95% confidence, loss score; normality p = 0.41,
    equal variances p = 0.73)". ``bound`` is a ``gaussian_bound`` record, or its JSON form."""
    if not isinstance(bound, Mapping):
        bound = bound.model_dump()
    normality = min(bound["normality_p_included"], bound["normality_p_excluded"])
    return (
        f"ε ≥ {bound['epsilon']:.2f} under the Gaussian assumption "
        f"({format_confidence(bound['confidence'])} confidence, "
        f"{str(bound['score']).replace('_', ' ')} score; normality p = {normality:.2g}, "
        f"equal variances p = {bound['equal_variance_p']:.2g})"
    )


def format_fpr_target(fpr: float) -> str:
    """An FPR target as a column name writes it: 1%, 0.1%, 10%."""
    return f"{100 * fpr:g}%"


def format_auc(auc: float, interval: tuple[float, float] | None = None) -> str:
    """An AUC to 3 decimals, with its confidence interval when there is one: 0.612 [0.590,
    0.634]."""
    if interval is None:
        return f"{auc:.3f}"
    return f"{auc:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def format_rate_interval(rate: float | None, interval: tuple[float, float] | None = None) -> str:
    """:func:`format_rate`, with its confidence interval when there is one: 12.3% [10.1%,
    14.6%]."""
    if rate is None or interval is None:
        return format_rate(rate)
    return f"{format_rate(rate)} [{format_rate(interval[0])}, {format_rate(interval[1])}]"
