"""Where the leakage is: metrics per class, and the members an attack is surest about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError, _array, check_scores, roc_auc, tpr_at_fprs
from auditml.metrics.summary import DEFAULT_FPRS


def per_class_metrics(
    scores: ArrayLike,
    is_member: ArrayLike,
    labels: ArrayLike,
    *,
    fprs: Sequence[float] = DEFAULT_FPRS,
) -> dict[int, dict[str, Any]]:
    """AUC and TPR at each FPR within each class, for classes with members and non-members.

    A class whose examples are all members (or all non-members) has no ROC curve and is left
    out. Within-class numbers rest on fewer examples, so their low-FPR values are coarse.
    """
    scores, is_member = check_scores(scores, is_member)
    labels = _array(labels, "labels")
    if labels.shape != scores.shape:
        raise MetricsInputError(
            f"`labels` must have one entry per score, got {labels.shape} for {scores.shape}."
        )
    breakdown: dict[int, dict[str, Any]] = {}
    for label in np.unique(labels):
        mask = labels == label
        members, nonmembers = int(is_member[mask].sum()), int((~is_member[mask]).sum())
        if members == 0 or nonmembers == 0:
            continue
        tprs = tpr_at_fprs(scores[mask], is_member[mask], fprs)
        breakdown[int(label)] = {
            "auc": roc_auc(scores[mask], is_member[mask]),
            "tpr_at_fpr": {repr(float(f)): float(t) for f, t in zip(fprs, tprs, strict=True)},
            "members": members,
            "nonmembers": nonmembers,
        }
    return breakdown


def most_exposed_members(scores: ArrayLike, is_member: ArrayLike, count: int) -> np.ndarray:
    """Positions of the ``count`` members with the highest scores, highest first.

    These are the training examples the attack identifies most confidently: the ones a real
    adversary would single out. Ties keep the original order.
    """
    scores, is_member = check_scores(scores, is_member)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise MetricsInputError(f"`count` must be a non-negative integer, got {count!r}.")
    members = np.flatnonzero(is_member)
    order = np.argsort(-scores[members], kind="stable")
    return members[order[:count]]
