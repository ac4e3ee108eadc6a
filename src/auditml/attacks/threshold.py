"""The threshold attack (Yeom et al. 2018): models fit their training data better than unseen
data, so a per-example statistic of the model's output separates members from non-members.

Scores, all oriented so that higher means "member":

- ``loss``: −CE(f(x), y), the negative cross-entropy loss.
- ``confidence``: p_y(x), the softmax probability of the true label.
- ``entropy``: −H(p(x)), the negative entropy of the predicted distribution (label-free).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
from scipy.special import log_softmax

from auditml.attacks.base import MembershipAttack
from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from auditml.models import predict_logits

ThresholdMetric = Literal["loss", "confidence", "entropy"]
THRESHOLD_METRICS: tuple[str, ...] = get_args(ThresholdMetric)


class ThresholdAttack(MembershipAttack):
    name = "mia_threshold"

    def __init__(self, *, metric: str = "loss") -> None:
        super().__init__()
        if metric not in THRESHOLD_METRICS:
            raise ConfigError(
                f"--metric={metric!r} is not a threshold-attack metric; "
                f"use one of {', '.join(THRESHOLD_METRICS)}"
            )
        self.metric = metric

    def settings(self) -> dict[str, Any]:
        return {"metric": self.metric}

    def score(self, examples: ArrayDataset) -> np.ndarray:
        target = self.target
        logits = predict_logits(target.model, examples.x, device=target.device)
        return membership_signal(logits, examples.y, self.metric)


def membership_signal(logits: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    """The statistic ``metric`` of each row of ``logits`` (higher = member); see module doc."""
    log_probs = log_softmax(logits.astype(np.float64), axis=1)
    if metric == "loss" or metric == "confidence":
        true_log_prob = log_probs[np.arange(len(labels)), labels]
        # −CE is log p_y; confidence is its exponential: same ranking, reported on its own scale.
        return true_log_prob if metric == "loss" else np.exp(true_log_prob)
    if metric == "entropy":
        return np.sum(np.exp(log_probs) * log_probs, axis=1)
    raise ValueError(f"unknown metric {metric!r}")
