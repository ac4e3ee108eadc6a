"""Per-example membership signals of a model's output, shared by the attacks and canary audits.

Scores, all oriented so that higher means "member":

- ``loss``: −CE(f(x), y) = log p_y(x), the negative cross-entropy loss.
- ``confidence``: p_y(x), the softmax probability of the true label.
- ``entropy``: −H(p(x)), the negative entropy of the prediction (label-free).
- ``modified_entropy``: −Mentr(x, y) (Song & Mittal 2021), where
  Mentr = −(1 − p_y) log p_y − Σ_{i≠y} p_i log(1 − p_i): low for a confident correct
  prediction and high for a confident wrong one, unlike the plain entropy.
- ``logit_confidence``: log(p_y / (1 − p_y)), the logit-scaled confidence of Carlini et al.
  2022, whose distribution over models is close to Gaussian.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from scipy.special import log_softmax

ThresholdMetric = Literal["loss", "confidence", "entropy", "modified_entropy", "logit_confidence"]
THRESHOLD_METRICS: tuple[str, ...] = get_args(ThresholdMetric)


def true_class_log_probs(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log p(x), log p_y(x))`` in float64."""
    log_probs = log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)
    return log_probs, np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """log(p_y / (1 − p_y)) from logits, stably: log p_y − log Σ_{i≠y} p_i.

    Works on any leading shape (e.g. ``(models, examples, classes)``).
    """
    logits = np.asarray(logits, dtype=np.float64)
    true = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    others = logits.copy()
    np.put_along_axis(others, labels[..., None], -np.inf, axis=-1)
    peak = others.max(axis=-1)
    log_rest = peak + np.log(np.sum(np.exp(others - peak[..., None]), axis=-1))
    return true - log_rest


def membership_signal(logits: np.ndarray, labels: np.ndarray, metric: str) -> np.ndarray:
    """The statistic ``metric`` of each row of ``logits`` (higher = member); see module doc."""
    log_probs, true_log_prob = true_class_log_probs(logits, labels)
    if metric == "loss":
        return true_log_prob
    if metric == "confidence":
        return np.exp(true_log_prob)
    if metric == "entropy":
        return np.sum(np.exp(log_probs) * log_probs, axis=-1)
    if metric == "logit_confidence":
        return logit_confidence(logits, labels)
    if metric == "modified_entropy":
        probs = np.exp(log_probs)
        # log(1 − p) computed as log1p(−p) keeps precision for small p; clip avoids log(0).
        log_one_minus = np.log1p(-np.clip(probs, 0.0, 1.0 - 1e-16))
        terms = -probs * log_one_minus
        true_p = np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0]
        true_term = -(1.0 - true_p) * true_log_prob
        others = terms.sum(axis=-1) - np.take_along_axis(terms, labels[..., None], axis=-1)[..., 0]
        return -(true_term + others)
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(THRESHOLD_METRICS)}")
