"""White-box canary audits: DP-SGD's own gradient canaries under two threat models.

Training added m gradient canaries (``training.canaries.kind: gradient``), each by a recorded
fair coin, and recorded what an adversary of each threat model sees of them
(:class:`~auditml.gradient_canary_record.GradientCanaryRecord`):

- ``dp_audit_all_iterates``: every noisy update (the DP-SGD threat model, the one the
  accountant's ε is about); scores are the subsampled-Gaussian likelihood ratios
  (:func:`~auditml.audit.canaries.scores.all_iterates_scores`).
- ``dp_audit_last_iterate``: only the final weights; scores are the weights' movement against
  each canary (:func:`~auditml.audit.canaries.scores.last_iterate_scores`).

Each audit reports two things, at a Bonferroni-corrected confidence so that together they hold
at :data:`CONFIDENCE`: the ε lower bound of Steinke, Nasr and Jagielski (2023) at the run's δ
(:func:`auditml.metrics.one_run_audit`), and, for a DP run, the test of the whole privacy curve
the run's accountant claims (Mahloujifar, Melis and Chaudhuri 2024; :mod:`auditml.metrics.fdp`).
The run violates its claim when either rejects it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.scores import all_iterates_scores, last_iterate_scores
from auditml.errors import AuditMLError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics import claimed_tradeoff, fdp_audit, one_run_audit
from auditml.records import CanaryRecord
from auditml.reporting.verdict import exceeds_claim

CONFIDENCE = 0.95
# Two statements (the ε bound and the claim test), each failing with at most half the budget.
_EACH = 1 - (1 - CONFIDENCE) / 2


class GradientCanaryAudit(CanaryAuditKind):
    """Base of the white-box audits: subclasses say which threat model and how it scores."""

    threat_model: ClassVar[str]

    @abstractmethod
    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        """One score per canary, higher = more likely included."""

    def run(self, evidence: CanaryEvidence) -> CanaryRecord:
        record = evidence.gradient_canaries
        if record is None:
            raise AuditMLError(
                f"{self.name} needs gradient canaries, and this run has none: set "
                "training.canaries: {count: 1000, kind: gradient} (with training.dp.enabled) "
                "and train again"
            )
        scores = self.scores(record)
        bound = one_run_audit(scores, record.included, delta=evidence.delta, confidence=_EACH)
        claim_test: dict[str, Any] | None = None
        violation: bool | None = None
        if evidence.claim is not None:
            claim_test = check_claim(scores, record.included, evidence.claim, confidence=_EACH)
            violation = bool(claim_test["violation"]) or exceeds_claim(
                dp_enabled=True, claimed_epsilon=evidence.claim.epsilon,
                epsilon_lower_bound=bound.epsilon,
            )
        return CanaryRecord(
            attack=self.name,
            canaries=record.count,
            included=int(record.included.sum()),
            delta=evidence.delta,
            confidence=_EACH,
            epsilon_lower_bound=bound.epsilon,
            best_score=self.threat_model,
            max_epsilon=bound.max_epsilon,
            by_score={self.threat_model: bound.to_dict()},
            run=evidence.run_facts,
            threat_model=self.threat_model,  # type: ignore[arg-type]
            claim_test=claim_test,
            violation=violation,
        )


class AllIteratesAudit(GradientCanaryAudit):
    name = "dp_audit_all_iterates"
    threat_model = "all_iterates"

    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        return all_iterates_scores(
            record.observations, noise_multiplier=record.noise_multiplier,
            sample_rate=record.sample_rate, clip=record.max_grad_norm,
        )


class LastIterateAudit(GradientCanaryAudit):
    name = "dp_audit_last_iterate"
    threat_model = "last_iterate"

    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        return last_iterate_scores(record.initial, record.final)


def check_claim(
    scores: np.ndarray, included: np.ndarray, claim: PrivacyClaim, *, confidence: float
) -> dict[str, Any]:
    """The f-DP one-run test of the accountant's claimed curve, as a JSON-ready mapping.

    The curve is rebuilt from the run's own accountant history (:func:`claimed_tradeoff`, the
    accountant's certified (ε, δ) pairs); ``epsilon_lower_bound`` is the f-DP audit's bound at the
    run's δ, valid at ``confidence`` on its own (it does not enter the verdict).
    """
    curve = claimed_tradeoff(claim.history, mechanism=claim.accountant)
    audit = fdp_audit(scores, included, curve, delta=claim.delta, confidence=confidence)
    test = audit.claim_test
    return {
        "violation": test.violation,
        "p_value": test.p_value,
        "confidence": confidence,
        "correct": test.correct,
        "guesses": test.guesses,
        "allowed_correct": test.allowed_correct,
        "candidates": test.candidates,
        "claim": test.claim,
        "epsilon_lower_bound": audit.epsilon_bound.epsilon,
    }
