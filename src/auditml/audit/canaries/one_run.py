"""``dp_audit``: the one-run privacy audit of Steinke, Nasr and Jagielski (2023).

Training added each of m canaries with probability 1/2 (``training.canaries``; the coins are in
``split.npz``). The audit scores every canary with the trained model, guesses IN for the highest
scores and OUT for the lowest, abstains on the rest, and turns the number of correct guesses
into an ε lower bound that holds with the stated confidence for every (ε, δ)-DP algorithm: the
f-DP test of Mahloujifar, Melis and Chaudhuri 2024 with the (ε, δ) curve
(:func:`auditml.metrics.fdp_epsilon_audit`), which has no ``2 m δ`` term and so beats Steinke,
Nasr and Jagielski's bound (:func:`auditml.metrics.one_run_audit`, used before) when ``m δ``
is not small, and is within 0.02 of it otherwise. Each bound records its ``method``.

Two scores are tried, and the bound of each is computed at a Bonferroni-corrected confidence so
that reporting the larger one stays valid:

- ``loss`` (black-box): −CE of the canary under the label it was trained with.
- ``gradient_norm`` (white-box): −‖∇_θ CE‖, the norm of the canary's loss gradient with respect
  to the weights; a trained-on canary tends to have a small gradient. This needs the run's own
  model (its weights), which auditml has.

The record's threat model is the reported score's: ``black_box`` when the loss gives the bound,
``last_iterate`` (the final weights) when the gradient norm does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from auditml.attacks.signals import membership_signal
from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence, gaussian_bound
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError
from auditml.metrics import fdp_epsilon_audit
from auditml.metrics.dp.violation import exceeds_claim
from auditml.models import predict_logits
from auditml.records import CanaryRecord

CONFIDENCE = 0.95
SCORES = ("loss", "gradient_norm")
# What the adversary behind each score sees (CanaryRecord.threat_model).
THREAT_MODELS = {"loss": "black_box", "gradient_norm": "last_iterate"}


def gradient_norm_scores(
    model: nn.Module, canaries: ArrayDataset, device: torch.device
) -> np.ndarray:
    """−‖∇_θ CE(f(x), y)‖₂ for each canary (higher = more member-like)."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    scores = np.empty(len(canaries))
    for i in range(len(canaries)):
        x = torch.from_numpy(canaries.x[i : i + 1]).to(device)
        y = torch.from_numpy(canaries.y[i : i + 1]).to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss, params)
        scores[i] = -float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    return scores


class OneRunAudit(CanaryAuditKind):
    name = "dp_audit"

    def run(self, evidence: CanaryEvidence) -> CanaryRecord:
        model, canaries, device = evidence.model, evidence.input_canaries, evidence.device
        included, delta = evidence.input_included, evidence.delta
        if evidence.secrets is not None:
            raise AuditMLError(
                "dp_audit scores labelled canaries; this run's canaries are a language model's "
                "secrets: use secret_canaries"
            )
        if len(canaries) == 0 or model is None:
            raise AuditMLError(
                "dp_audit needs canaries, and this run has none: set training.canaries.count "
                "(e.g. 1000) in the config and train again"
            )
        logits = predict_logits(model, canaries.x, device=device)
        scores = {
            "loss": membership_signal(logits, canaries.y, "loss"),
            "gradient_norm": gradient_norm_scores(model, canaries, device),
        }
        # Bonferroni over the score kinds: each bound fails with at most (1 − CONFIDENCE)/2.
        per_score = 1 - (1 - CONFIDENCE) / len(scores)
        bounds = {
            name: fdp_epsilon_audit(values, included, delta=delta, confidence=per_score).to_dict()
            for name, values in scores.items()
        }
        best = max(bounds, key=lambda name: bounds[name]["epsilon"])
        return CanaryRecord(
            attack=self.name,
            canaries=len(canaries),
            included=int(np.sum(included)),
            delta=delta,
            confidence=CONFIDENCE,
            epsilon_lower_bound=bounds[best]["epsilon"],
            best_score=best,
            max_epsilon=bounds[best]["max_epsilon"],
            by_score=bounds,
            run=evidence.run_facts,
            threat_model=THREAT_MODELS[best],  # type: ignore[arg-type]
            gaussian_bound=gaussian_bound(scores, included, delta=delta, confidence=CONFIDENCE),
            violation=None if evidence.claim is None else exceeds_claim(
                dp_enabled=True, claimed_epsilon=evidence.claim.epsilon,
                epsilon_lower_bound=bounds[best]["epsilon"],
            ),
        )
