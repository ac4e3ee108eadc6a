"""White-box canary audits: DP-SGD's own gradient canaries under two threat models.

Training added m gradient canaries (``training.canaries.kind: gradient``), each by a recorded
fair coin, and recorded what an adversary of each threat model sees of them
(:class:`~auditml.gradient_canary_record.GradientCanaryRecord`):

- ``dp_audit_all_iterates``: every noisy update (the DP-SGD threat model, the one the
  accountant's ε is about); scores are the subsampled-Gaussian likelihood ratios
  (:func:`~auditml.audit.canaries.scores.all_iterates_scores`).
- ``dp_audit_last_iterate``: only the final weights; scores are the weights' movement against
  each canary (:func:`~auditml.audit.canaries.scores.last_iterate_scores`).

Each audit reports, each at :data:`CONFIDENCE` on its own:

- the assumption-free ε lower bound of Steinke, Nasr and Jagielski (2023) at the run's δ
  (:func:`auditml.metrics.one_run_audit`, best of its fixed grid of guess counts, Bonferroni);
- for a DP run, the test of the whole privacy curve the run's accountant claims (Mahloujifar,
  Melis and Chaudhuri 2024; :mod:`auditml.metrics.fdp`), on guesses fixed before looking at the
  scores: IN on the top :data:`CLAIM_GUESS_FRACTION` of the canaries, OUT on the bottom as many.
  **The verdict is this test alone**: ``violation`` is wrong with probability at most 5 % when
  the claim holds. (It needs no second test: a rejected (ε, δ) curve implies a rejected claimed
  curve, which lies above it.) With it, the ε lower bound within the DP-SGD family
  (:mod:`auditml.metrics.fdp_family`): a bound that assumes the run's curve is DP-SGD's at its
  sampling rate and steps for some noise level, labelled so wherever it is shown.

Why one fixed guess count for the test: the recursion averages over all m canaries, so curves
with a Gaussian-like tail are tested best with a moderate share of guesses; simulating the
subsampled Gaussian at m = 1000 (benchmarks/catch_bugs.py, docs) 10 % IN + 10 % OUT was the
most powerful single choice at claimed ε = 1 to 4, and a grid would pay a Bonferroni factor.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.scores import (
    all_iterates_scores,
    estimate_noise_multiplier,
    last_iterate_scores,
)
from auditml.errors import AuditMLError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics import claimed_tradeoff, fdp_audit, one_run_audit
from auditml.metrics.fdp_family import noise_family_epsilon_lower_bound
from auditml.records import CanaryRecord

CONFIDENCE = 0.95
CLAIM_GUESS_FRACTION = 0.1
"""The claim test guesses IN on this share of the canaries (highest scores), OUT on as many."""
# A run whose sums carry (almost) no noise still gets finite scores: in units of C.
_NOISE_FLOOR = 1e-3


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
        bound = one_run_audit(
            scores, record.included, delta=evidence.delta, confidence=CONFIDENCE
        )
        claim_test: dict[str, Any] | None = None
        violation: bool | None = None
        if evidence.claim is not None:
            claim_test = check_claim(scores, record.included, evidence.claim)
            violation = bool(claim_test["violation"])
        return CanaryRecord(
            attack=self.name,
            canaries=record.count,
            included=int(record.included.sum()),
            delta=evidence.delta,
            confidence=CONFIDENCE,
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
        # The noise the sums carry, not the claimed σ: see auditml.audit.canaries.scores.
        noise = estimate_noise_multiplier(record.observations, clip=record.max_grad_norm)
        return all_iterates_scores(
            record.observations, noise_multiplier=max(noise, _NOISE_FLOOR),
            sample_rate=record.sample_rate, clip=record.max_grad_norm,
        )


class LastIterateAudit(GradientCanaryAudit):
    name = "dp_audit_last_iterate"
    threat_model = "last_iterate"

    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        return last_iterate_scores(record.initial, record.final)


def check_claim(
    scores: np.ndarray, included: np.ndarray, claim: PrivacyClaim, *,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The f-DP one-run test of the accountant's claimed curve, as a JSON-ready mapping.

    The curve is rebuilt from the run's own accountant history (:func:`claimed_tradeoff`, the
    accountant's certified (ε, δ) pairs); the guesses are fixed in advance
    (:data:`CLAIM_GUESS_FRACTION` each way). ``epsilon_lower_bound`` is the assumption-free f-DP
    bound at those guesses, ``family_epsilon_lower_bound`` the DP-SGD-family one; each holds at
    ``confidence`` on its own and neither enters the verdict.
    """
    guesses_each = max(1, round(CLAIM_GUESS_FRACTION * len(scores)))
    curve = claimed_tradeoff(claim.history, mechanism=claim.accountant)
    audit = fdp_audit(scores, included, curve, delta=claim.delta, confidence=confidence,
                      k_positive=guesses_each, k_negative=guesses_each)
    test = audit.claim_test
    family = noise_family_epsilon_lower_bound(
        test.correct, test.guesses, test.canaries, claim.history, mechanism=claim.accountant,
        delta=claim.delta, confidence=confidence,
    )
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
        "family_epsilon_lower_bound": family.epsilon,
        "family": family.family,
        "family_noise_scale": family.noise_scale,
    }
