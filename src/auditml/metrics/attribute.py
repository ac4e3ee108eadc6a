"""Attribute-inference metrics: (category scores, true categories) in, numbers out.

An attribute-inference attack scores, for each record, every category of the sensitive attribute
(higher = more likely). Its *accuracy* alone says little: the other attributes and the label often
predict the sensitive one without any model (imputation; Jayaraman & Evans 2022). The number to
trust is the **advantage over imputation**: the attack's accuracy minus that of the imputation
baseline, on the same records. A model that leaks its members' attributes shows an advantage on
members that it does not show on non-members.

Pure numpy (scipy only for exact binomial tails); inputs are checked at the boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError, roc_auc

DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP = 2000


def check_category_scores(scores: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``scores`` ``(N, k)`` (finite, k >= 2) and ``truth`` ``(N,)`` (ints in [0, k))."""
    score_array, true_array = np.asarray(scores), np.asarray(truth)
    if score_array.ndim != 2 or score_array.shape[1] < 2:
        raise MetricsInputError(
            f"`scores` must be (records, categories) with at least 2 categories, got shape "
            f"{score_array.shape}."
        )
    if true_array.ndim != 1 or len(true_array) != len(score_array):
        raise MetricsInputError(
            f"`truth` must be 1-D with one entry per row of `scores` ({len(score_array)}), got "
            f"shape {true_array.shape}."
        )
    if len(true_array) == 0:
        raise MetricsInputError("`truth` must hold at least one record, got none.")
    if score_array.dtype.kind not in "biuf" or not np.isfinite(score_array).all():
        raise MetricsInputError("`scores` must be finite real numbers.")
    if true_array.dtype.kind not in "iu" or true_array.min() < 0 or (
        true_array.max() >= score_array.shape[1]
    ):
        raise MetricsInputError(
            f"`truth` must hold category indices in [0, {score_array.shape[1]}), got "
            f"{np.unique(true_array)[:5].tolist()}."
        )
    return score_array.astype(np.float64), true_array.astype(np.int64)


def predicted_categories(scores: ArrayLike) -> np.ndarray:
    """The highest-scoring category of each record (ties: the lowest index, as ``argmax``)."""
    return np.asarray(scores).argmax(axis=1)


def accuracy_interval(
    correct: int, total: int, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Clopper–Pearson interval of an accuracy ``c / n``:
    ``[B^-1(a/2; c, n-c+1), B^-1(1-a/2; c+1, n-c)]`` with ``a = 1 - confidence`` (exact: it
    covers the true accuracy with probability at least ``confidence``)."""
    from scipy.stats import beta

    if not 0 <= correct <= total or total < 1:
        raise MetricsInputError(f"need 0 <= correct <= total and total >= 1, got {correct}/{total}")
    alpha = 1 - confidence
    low = 0.0 if correct == 0 else float(beta.ppf(alpha / 2, correct, total - correct + 1))
    high = 1.0 if correct == total else float(beta.ppf(1 - alpha / 2, correct + 1, total - correct))
    return low, high


def category_auc(scores: ArrayLike, truth: ArrayLike) -> float:
    """Area under the ROC curve of telling the categories apart.

    Two categories: the AUC of ``scores[:, 1] - scores[:, 0]`` for "category 1" (for
    probabilities or log-probabilities, a monotone transform of the posterior, so the AUC of the
    attack's ranking). More: the unweighted mean over categories c of the one-vs-rest AUC of
    ``scores[:, c]`` (scikit-learn's ``roc_auc_score(multi_class="ovr", average="macro")`` on
    probabilities). A category absent from ``truth`` (or the only one present) has no AUC: NaN.
    """
    score_array, true_array = check_category_scores(scores, truth)
    if score_array.shape[1] == 2:
        positives = true_array == 1
        if positives.all() or not positives.any():
            return float("nan")
        return roc_auc(score_array[:, 1] - score_array[:, 0], positives)
    per_category = []
    for category in range(score_array.shape[1]):
        positives = true_array == category
        if positives.all() or not positives.any():
            return float("nan")
        per_category.append(roc_auc(score_array[:, category], positives))
    return float(np.mean(per_category))


@dataclass(frozen=True)
class AttributeScore:
    """One attack's accuracy (with its Clopper–Pearson interval) and AUC on one set of records."""

    records: int
    accuracy: float
    accuracy_interval: tuple[float, float]
    auc: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attribute_score(
    scores: ArrayLike, truth: ArrayLike, confidence: float = DEFAULT_CONFIDENCE
) -> AttributeScore:
    score_array, true_array = check_category_scores(scores, truth)
    correct = int((predicted_categories(score_array) == true_array).sum())
    return AttributeScore(
        records=len(true_array),
        accuracy=correct / len(true_array),
        accuracy_interval=accuracy_interval(correct, len(true_array), confidence),
        auc=category_auc(score_array, true_array),
    )


@dataclass(frozen=True)
class Advantage:
    """The attack's accuracy minus the imputation baseline's, on the same records.

    ``interval`` is a paired percentile-bootstrap interval of the difference (records resampled
    together); ``p_value`` is the exact one-sided McNemar test of "the attack is right no more
    often than the baseline": among the ``discordant`` records where exactly one of the two is
    right, the attack is right in ``attack_only`` of them; under the null each is the attack's
    with probability at most 1/2, so ``p = P[Binomial(discordant, 1/2) >= attack_only]``.
    """

    advantage: float
    interval: tuple[float, float]
    p_value: float
    attack_only: int
    discordant: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def advantage_over_imputation(
    attack_correct: ArrayLike,
    baseline_correct: ArrayLike,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> Advantage:
    """How much more often the attack is right than imputation on the same records."""
    from scipy.stats import binomtest

    attack, baseline = np.asarray(attack_correct), np.asarray(baseline_correct)
    if attack.ndim != 1 or attack.shape != baseline.shape or len(attack) == 0:
        raise MetricsInputError(
            f"`attack_correct` and `baseline_correct` must be 1-D of one equal, non-zero length, "
            f"got shapes {attack.shape} and {baseline.shape}."
        )
    if attack.dtype.kind != "b" or baseline.dtype.kind != "b":
        raise MetricsInputError("`attack_correct` and `baseline_correct` must be booleans.")
    if resamples < 1:
        raise MetricsInputError(f"`resamples` must be at least 1, got {resamples}.")
    difference = attack.astype(np.float64) - baseline.astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(difference), size=(resamples, len(difference)))
    means = difference[draws].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    attack_only = int((attack & ~baseline).sum())
    discordant = attack_only + int((baseline & ~attack).sum())
    p_value = (
        1.0 if discordant == 0
        else float(binomtest(attack_only, discordant, 0.5, alternative="greater").pvalue)
    )
    return Advantage(
        advantage=float(difference.mean()), interval=(float(low), float(high)),
        p_value=p_value, attack_only=attack_only, discordant=discordant,
    )


@dataclass(frozen=True)
class MemberGap:
    """The attack's accuracy on members minus on non-members (different records, so unpaired).

    ``p_value`` is one-sided Fisher's exact test of "members' attributes are inferred no more
    often than non-members'": with the row totals fixed, the members' hit count is
    hypergeometric under the null, and ``p = P[H >= members' hits]``. An attack can beat
    imputation on everyone (the model's outputs reveal the attribute of any record they are
    computed from); only this gap says the model reveals its *training* members' attribute.
    """

    gap: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def member_gap(member_correct: ArrayLike, nonmember_correct: ArrayLike) -> MemberGap:
    from scipy.stats import fisher_exact

    members, nonmembers = np.asarray(member_correct), np.asarray(nonmember_correct)
    if members.ndim != 1 or nonmembers.ndim != 1 or not len(members) or not len(nonmembers):
        raise MetricsInputError("`member_correct` and `nonmember_correct` must be non-empty 1-D.")
    if members.dtype.kind != "b" or nonmembers.dtype.kind != "b":
        raise MetricsInputError("`member_correct` and `nonmember_correct` must be booleans.")
    hits, misses = int(members.sum()), int((~members).sum())
    other_hits, other_misses = int(nonmembers.sum()), int((~nonmembers).sum())
    table = [[hits, misses], [other_hits, other_misses]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    return MemberGap(gap=float(members.mean() - nonmembers.mean()), p_value=min(p_value, 1.0))
