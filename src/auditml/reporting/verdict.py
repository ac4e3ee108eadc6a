"""The VIOLATION rule, written once, and the one-line verdict a report opens with.

A DP run claims (ε, δ)-DP; an audit's ε lower bound says, with its stated confidence, that the
training algorithm is *not* (ε', δ)-DP for any ε' below the bound. A bound above the claim
therefore contradicts the claim: the training or its accounting is broken. Every report and the
terminal summary of the one-run canary audit decide this with
:func:`auditml.metrics.dp.violation.exceeds_claim` (a metric the audit records too, so it lives
below both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from auditml.formatting import format_confidence, format_epsilon, format_rate
from auditml.metrics.dp.violation import claim_word as claim_word  # the reports' import
from auditml.metrics.dp.violation import exceeds_claim as exceeds_claim
from auditml.records import EpsilonBoundRecord


def canary_verdict(
    violation: bool | None, *, dp_enabled: bool | None, claimed_epsilon: float | None,
    epsilon_lower_bound: float | None,
) -> bool:
    """A canary audit's verdict: its own when it recorded one (a white-box audit's is its claim
    test, at 95 % on its own: OR-ing the bound in would be a second test and double its error
    rate), else whether its bound exceeds the claim (:func:`exceeds_claim`)."""
    if violation is not None:
        return bool(violation)
    return exceeds_claim(dp_enabled=dp_enabled, claimed_epsilon=claimed_epsilon,
                         epsilon_lower_bound=epsilon_lower_bound)


CHECK_STATUS_WORDS = {"passed": "passed", "failed": "FAILED", "warning": "warning",
                      "not_checked": "not checked"}
"""An assumption check's status as every page and the terminal say it."""


class VerdictKind(Enum):
    VIOLATION = "violation"
    CONSISTENT = "consistent"
    UNVERIFIED = "unverified"
    LEAKS = "leaks"
    NO_LEAK_FOUND = "no-leak-found"


TAIL_NAMES = {"member": "member tail", "nonmember": "non-member tail"}
"""Which test of a membership attack gave its ε lower bound, as a table cell says it
(:data:`auditml.metrics.dp.trials_epsilon.BoundTail`)."""

TAIL_WORDS = {
    "member": f"{TAIL_NAMES['member']}: high scores flag members",
    "nonmember": f"{TAIL_NAMES['nonmember']}: low scores flag non-members, the reverse test",
}
"""The same, as a sentence says it."""

NONMEMBER_TAIL_MEANING = (
    "A bound from the non-member tail is valid: the attack's lowest scores are almost all "
    "non-members', so the rule “non-member when the score is low” is a test DP limits like any "
    "other. It can hold while the ROC curve lies on the diagonal (AUC near 0.5, no member found "
    "at a low FPR): a few non-members stand out, and telling them apart reveals who was not "
    "trained on, while most members stay hidden."
)
"""What a bound from the non-member tail means, where a page shows one."""


def tail_words(tail: str | None) -> str:
    """The words of :data:`TAIL_WORDS`; empty without a tail (a canary audit, a bound of 0)."""
    return TAIL_WORDS.get(tail or "", "")


def threshold_words(bound: EpsilonBoundRecord | Mapping[str, Any]) -> str | None:
    """How a recorded ε lower bound chose its threshold (``threshold_policy``, ``candidates``,
    ``threshold_strategy``; :mod:`auditml.metrics.dp.thresholds`), in words; None when the record
    does not say (written before strategies were recorded)."""
    if isinstance(bound, EpsilonBoundRecord):
        bound = bound.as_written()
    name = bound.get("threshold_policy")
    candidates = bound.get("candidates")
    settings = bound.get("threshold_strategy") or {}
    among = f" {candidates:,}" if isinstance(candidates, int) else ""
    words = {
        "bonferroni_hull": f"level shared among the{among} corners of the ROC curve's convex hull",
        "bonferroni": f"level shared among{among or ' all'} candidate thresholds",
        "split": "threshold chosen on one half of the examples, bound on the other",
        "multi_split": f"median over {settings.get('splits', 'many')} random splits",
        "explicit": "a threshold fixed in advance",
    }
    return words.get(name) if isinstance(name, str) else None


def bound_cell(bound: float | None, tail: str | None, *, violation: bool) -> str:
    """A membership attack's ε lower bound in a table: "1.85 (non-member tail) VIOLATION"."""
    if bound is None:
        return "—"
    name = TAIL_NAMES.get(tail or "")
    return f"{bound:.2f}" + (f" ({name})" if name else "") + (" VIOLATION" if violation else "")


@dataclass(frozen=True)
class BoundSource:
    """One ε lower bound and where it comes from (an attack, or the one-run canary audit), with
    the tail of a membership attack's bound (None for canary audits and bounds of 0)."""

    source: str
    epsilon: float
    confidence: float
    tail: str | None = None

    def qualifiers(self, among: list[BoundSource]) -> str:
        """"non-member tail: …, 95% confidence": which tail, and how sure among ``among``."""
        tail = tail_words(self.tail)
        return f"{tail + ', ' if tail else ''}{_confidence(self, among)}"


@dataclass(frozen=True)
class StrongestAttack:
    """The attack with the highest TPR at 1% FPR; ``beats_chance`` whether that TPR is beyond
    noise above chance (:func:`auditml.metrics.noise.tpr_above_chance`; None: not known)."""

    name: str
    tpr_at_1pct_fpr: float
    auc: float
    beats_chance: bool | None = None

    def described(self) -> str:
        figures = f"TPR@1%FPR {format_rate(self.tpr_at_1pct_fpr)}, AUC {self.auc:.3f}"
        if self.beats_chance is False:
            return (f"no attack finds members beyond chance at 1% FPR (best, {self.name}: "
                    f"{figures}, within noise)")
        return f"strongest attack {self.name}: {figures}"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    headline: str


def joint_confidence(bounds: list[BoundSource]) -> float:
    """The confidence with which every bound in ``bounds`` holds at once.

    Union bound (Bonferroni): each bound fails with probability at most 1 − its confidence, so
    all hold together with probability at least 1 − Σ (1 − confidence). Reporting the largest
    of several bounds is only as sure as this, not as sure as each one alone.
    """
    return max(0.0, 1.0 - sum(1.0 - bound.confidence for bound in bounds))


def _confidence(chosen: BoundSource, among: list[BoundSource]) -> str:
    if len(among) <= 1:
        return f"{format_confidence(chosen.confidence)} confidence"
    return (
        f"{format_confidence(chosen.confidence)} confidence for that bound, "
        f"{format_confidence(joint_confidence(among))} "
        f"for the largest of {len(among)}"
    )


def run_verdict(
    *,
    dp_enabled: bool | None,
    claimed_epsilon: float | None,
    bounds: list[BoundSource],
    strongest: StrongestAttack | None,
    rejections: list[str] | None = None,
    broken: list[str] | None = None,
    unchecked: list[str] | None = None,
) -> Verdict:
    """The report's first line: does the audit contradict the claim, or what does it show?

    ``rejections`` name audits whose observations contradict the claimed privacy as a whole (the
    f-DP test of a canary audit's claimed curve, or its mechanism check), which is a violation
    even when no ε bound exceeds the claimed ε.
    ``broken`` names the accountant's assumptions the training broke (the claim does not apply
    to the mechanism that ran), which fails the claim as well. ``unchecked`` names those no
    audit could check (e.g. a ``CanaryAudit`` not given the loop's model or loader): without a
    contradiction the claim is then "not verified", never "consistent".
    """
    largest = max(bounds, key=lambda bound: bound.epsilon, default=None)
    violated = [
        bound
        for bound in bounds
        if exceeds_claim(
            dp_enabled=dp_enabled,
            claimed_epsilon=claimed_epsilon,
            epsilon_lower_bound=bound.epsilon,
        )
    ]
    attack = strongest.described() if strongest is not None else "no membership attack audited"
    if violated:
        worst = max(violated, key=lambda bound: bound.epsilon)
        return Verdict(
            VerdictKind.VIOLATION,
            f"VIOLATION — DP ε={format_epsilon(claimed_epsilon)} claimed, but the {worst.source} "
            f"audit proves ε ≥ {worst.epsilon:.2f} ({worst.qualifiers(bounds)}): the "
            "training or its accounting is broken",
        )
    if dp_enabled and broken:
        also = (f"; the {', '.join(rejections)} audit also contradicts the claimed privacy"
                if rejections else "")
        return Verdict(
            VerdictKind.VIOLATION,
            f"VIOLATION — DP ε={format_epsilon(claimed_epsilon)} claimed, but the claim does not "
            f"apply: the training broke the accountant's assumptions ({', '.join(broken)}){also}",
        )
    if dp_enabled and rejections:
        return Verdict(
            VerdictKind.VIOLATION,
            f"VIOLATION — DP ε={format_epsilon(claimed_epsilon)} claimed, but the "
            f"{', '.join(rejections)} audit contradicts the privacy the accountant claims: the "
            "training or its accounting is broken",
        )
    if dp_enabled:
        shown = (
            f"audit lower bound {largest.epsilon:.2f} "
            f"({largest.source}, {largest.qualifiers(bounds)})"
            if largest is not None
            else "no ε lower bound recorded"
        )
        if unchecked:
            return Verdict(
                VerdictKind.UNVERIFIED,
                f"DP ε={format_epsilon(claimed_epsilon)} claimed; {shown} — no contradiction "
                f"found, but not verified: the accountant's assumptions {', '.join(unchecked)} "
                f"were not checked; {attack}",
            )
        return Verdict(
            VerdictKind.CONSISTENT,
            f"DP ε={format_epsilon(claimed_epsilon)} claimed; {shown} — consistent; {attack}",
        )
    # None: a model audited in Python whose DP claim (if any) was not given.
    claim = "No DP guarantee" if dp_enabled is False else "No DP claim given"
    if largest is not None and largest.epsilon > 0:
        return Verdict(
            VerdictKind.LEAKS,
            f"{claim} — leaks: {attack}; ε ≥ {largest.epsilon:.2f} "
            f"({largest.source}, {largest.qualifiers(bounds)})",
        )
    return Verdict(
        VerdictKind.NO_LEAK_FOUND,
        f"{claim} — the audit found no leakage at its confidence; {attack}",
    )
