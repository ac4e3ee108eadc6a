"""The VIOLATION rule, written once.

A DP run claims (ε, δ)-DP; an audit's ε lower bound says, with its stated confidence, that the
training algorithm is *not* (ε', δ)-DP for any ε' below the bound. A bound above the claim
therefore contradicts the claim: the training or its accounting is broken. The one-run canary
audit records this verdict and every report shows it (:mod:`auditml.reporting.verdict`).
"""

from __future__ import annotations

from collections.abc import Sequence


def exceeds_claim(
    *, dp_enabled: bool | None, claimed_epsilon: float | None,
    epsilon_lower_bound: float | None,
) -> bool:
    """True when the audit's ε lower bound exceeds the accountant's ε of a DP run.

    Without DP (or with no DP claim known: ``None``) there is no claim to contradict, and a
    missing bound or claim flags nothing.
    """
    return (
        bool(dp_enabled)
        and claimed_epsilon is not None
        and epsilon_lower_bound is not None
        and epsilon_lower_bound > claimed_epsilon
    )


def claim_word(*, violated: bool, unchecked: Sequence[str] = ()) -> str:
    """A DP claim's audit in one word or phrase, as tables, the terminal and the API say it:
    VIOLATION; else "consistent" only when every assumption of the accountant was checked; else
    "not verified" naming those that were not (no contradiction found, but the claim rests on
    assumptions nobody checked)."""
    if violated:
        return "VIOLATION"
    if unchecked:
        return f"not verified (not checked: {', '.join(unchecked)})"
    return "consistent"
