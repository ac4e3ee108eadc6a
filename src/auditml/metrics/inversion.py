"""Model-inversion metrics: reconstructions in, distances and accuracies out.

Two questions are asked of a reconstruction x̂_c of class c (:mod:`auditml.attacks.inversion`):

1. Does it look like class c? An *evaluation classifier*, trained on data the target never saw,
   labels it (:func:`fit_evaluator`, :func:`evaluation_accuracy`); its accuracy on its own
   held-out data is reported beside, so a reader can tell a weak evaluator from a weak attack.
2. Does it reveal *training* data, or only the class? The nearest member of class c and the
   nearest non-member of class c are compared (:func:`member_vs_nonmember`): a model that leaks
   its training set reconstructs something nearer its members than other examples of the class.

Distances are Euclidean in the space the reconstructions live in (the dataset's standardised
space), over all input values flattened. Everything here is numpy, except that the binomial test
imports ``scipy.stats`` and :func:`fit_evaluator` scikit-learn when called (an audit's start-up
must not pay for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.roc import MetricsInputError


@dataclass(frozen=True)
class NearestCandidates:
    """For reconstruction i: ``distances[i]`` to its nearest same-class candidate, whose index
    in the candidates array is ``indices[i]``."""

    distances: np.ndarray
    indices: np.ndarray


@dataclass(frozen=True)
class MemberVsNonmember:
    """Per reconstruction: the nearest member and non-member of its class (among the balanced
    subsample, indices into the arrays given) and the sign test over reconstructions.

    ``member_closer`` counts reconstructions whose nearest member is strictly nearer than their
    nearest non-member, ``ties`` those at equal distance; ``fraction_member_closer`` is
    ``member_closer / (n − ties)`` (0.5 when every one is a tie) and ``p_value`` the one-sided
    exact binomial test of it against 1/2.
    """

    member_distances: np.ndarray
    member_indices: np.ndarray
    nonmember_distances: np.ndarray
    nonmember_indices: np.ndarray
    compared_per_side: np.ndarray
    member_closer: int
    ties: int
    fraction_member_closer: float
    p_value: float


def nearest_distances(
    reconstructions: ArrayLike, candidates: ArrayLike, labels_of_candidates: ArrayLike,
    classes: ArrayLike,
) -> NearestCandidates:
    """For each reconstruction x̂_i of class ``classes[i]``,

        d_i = min_{j : y_j = classes[i]} ‖x̂_i − x_j‖₂,   index_i = the first j attaining it,

    over the candidates x_j with labels y_j. Every class asked for needs a candidate.
    """
    recon, cands, labels, wanted = _check(reconstructions, candidates, labels_of_candidates,
                                          classes, "candidates")
    distances = np.empty(len(recon))
    indices = np.empty(len(recon), dtype=np.int64)
    for i, (row, label) in enumerate(zip(recon, wanted, strict=True)):
        same = np.flatnonzero(labels == label)
        # Differences, not ‖a‖² + ‖b‖² − 2a·b: that expansion loses the small distances this
        # metric is about to cancellation.
        gaps = np.sqrt(((cands[same] - row) ** 2).sum(axis=1))
        best = int(np.argmin(gaps))
        distances[i], indices[i] = gaps[best], same[best]
    return NearestCandidates(distances=distances, indices=indices)


def member_vs_nonmember(
    reconstructions: ArrayLike, classes: ArrayLike, members: ArrayLike, member_labels: ArrayLike,
    nonmembers: ArrayLike, nonmember_labels: ArrayLike, *, seed: int = 0,
) -> MemberVsNonmember:
    """Is each reconstruction nearer the training examples of its class than other examples?

    Balance. The minimum of more distances is smaller: if class c has m members and n
    non-members drawn from the same distribution and the reconstruction does not depend on
    which of them were trained on, the nearest of all m + n is a member with probability
    m / (m + n), not 1/2 — more members would look like a leak that is not there. So for each
    class both sides are subsampled, without replacement and with ``seed``, to
    k_c = min(m_c, n_c) examples; then, under that null hypothesis, member and non-member
    distances are exchangeable and the nearest member is nearer with probability exactly 1/2
    (ties aside). Subsamples are drawn once per class, so reconstructions of the same class
    share them.

    Test. With s reconstructions whose nearest member is strictly nearer, out of the n − t that
    are not ties (t ties are dropped, as in a sign test), the p-value is the one-sided exact
    binomial tail P(S ≥ s), S ~ Binomial(n − t, 1/2) (:func:`sign_test_p_value`). It treats
    reconstructions as independent trials, which holds for different classes under the null
    (disjoint examples); repeated reconstructions of one class are not independent of each
    other, so give one per class for the p-value to be exact.

    Reading it. Rejecting the null says the reconstructions depend on *which* examples the
    model trained on: they carry information about the training sample. That is not yet a
    copy of one person's example. A model whose weights are (noisily) a weighted sum of its
    training inputs — what a few DP-SGD steps on a near-linear model produce — inverts to a
    pattern aligned with its members as a group, and is found nearer them although each
    member's own influence is bounded; DP bounds individuals (a group of k members by kε),
    not the sample as a whole. Measured on digits (150 members, ``auditml demo``'s configs):
    the ε=5 and ε=1 models gave a member nearer for 7-10 of 10 classes, the non-private CNN,
    whose inversions lie far from any digit, 4-6 of 10. With one reconstruction per class the
    test has 10 trials: one split's sets differ by chance (its non-members against other
    unseen digits: 3.3 of 10 on average). Look at the gallery and the distances before calling
    it a leak of individual examples.
    """
    recon, member_x, member_y, wanted = _check(reconstructions, members, member_labels, classes,
                                               "members")
    _, nonmember_x, nonmember_y, _ = _check(reconstructions, nonmembers, nonmember_labels,
                                            classes, "nonmembers")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MetricsInputError(f"`seed` must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    keep_member = np.zeros(len(member_y), dtype=bool)
    keep_nonmember = np.zeros(len(nonmember_y), dtype=bool)
    per_class = {}
    for label in np.unique(wanted):  # sorted, so the draws do not depend on the order of classes
        in_class = np.flatnonzero(member_y == label)
        out_class = np.flatnonzero(nonmember_y == label)
        size = min(len(in_class), len(out_class))
        keep_member[rng.choice(in_class, size=size, replace=False)] = True
        keep_nonmember[rng.choice(out_class, size=size, replace=False)] = True
        per_class[int(label)] = size
    near_member = _nearest_kept(recon, wanted, member_x, member_y, keep_member)
    near_nonmember = _nearest_kept(recon, wanted, nonmember_x, nonmember_y, keep_nonmember)
    closer = int((near_member.distances < near_nonmember.distances).sum())
    ties = int((near_member.distances == near_nonmember.distances).sum())
    trials = len(recon) - ties
    return MemberVsNonmember(
        member_distances=near_member.distances,
        member_indices=near_member.indices,
        nonmember_distances=near_nonmember.distances,
        nonmember_indices=near_nonmember.indices,
        compared_per_side=np.array([per_class[int(label)] for label in wanted], dtype=np.int64),
        member_closer=closer,
        ties=ties,
        fraction_member_closer=closer / trials if trials else 0.5,
        p_value=sign_test_p_value(closer, trials),
    )


def sign_test_p_value(successes: int, trials: int) -> float:
    """One-sided exact binomial p-value P(S ≥ successes), S ~ Binomial(trials, 1/2); 1.0 for
    zero trials (no evidence)."""
    if not 0 <= successes <= trials:
        raise MetricsInputError(
            f"`successes` must be in [0, trials={trials}], got {successes}"
        )
    if trials == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, p=0.5, alternative="greater").pvalue)


def evaluation_accuracy(predicted_classes: ArrayLike, classes: ArrayLike) -> float:
    """Fraction of reconstructions the evaluator labels with the class they were made for:
    (1/n) Σ_i [ŷ_i = c_i]."""
    predicted = _labels(predicted_classes, "predicted_classes")
    wanted = _labels(classes, "classes")
    if len(predicted) != len(wanted) or len(wanted) == 0:
        raise MetricsInputError(
            f"`predicted_classes` and `classes` must be non-empty and of equal length, got "
            f"{len(predicted)} and {len(wanted)}"
        )
    return float(np.mean(predicted == wanted))


@dataclass(frozen=True)
class Evaluator:
    """A classifier independent of the target, and its accuracy on held-out data of its own."""

    classifier: Any
    input_shape: tuple[int, ...]
    held_out_accuracy: float
    train_size: int
    held_out_size: int

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Predicted class of each input (inputs of ``input_shape``)."""
        array = np.asarray(x, dtype=np.float64)
        if array.shape[1:] != self.input_shape or not np.isfinite(array).all():
            raise MetricsInputError(
                f"the evaluator takes finite inputs of shape {self.input_shape}, got "
                f"{array.shape[1:]}"
            )
        return np.asarray(self.classifier.predict(array.reshape(len(array), -1)), dtype=np.int64)


HELD_OUT_FRACTION = 0.25


def fit_evaluator(x: ArrayLike, y: ArrayLike, seed: int) -> Evaluator:
    """Multinomial logistic regression on flattened inputs, trained on a stratified 75% of
    ``(x, y)`` and scored on the other 25%.

    Give it data the target never trained on: an evaluator that saw the members would reward
    reconstructions for resembling them, which is the question :func:`member_vs_nonmember`
    asks separately.
    """
    array = np.asarray(x, dtype=np.float64)
    labels = _labels(y, "y")
    if array.ndim < 2 or len(array) != len(labels) or not np.isfinite(array).all():
        raise MetricsInputError(
            f"`x` must be finite inputs, one per label; got shape {array.shape} for "
            f"{len(labels)} labels"
        )
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or counts.min() < 4:
        raise MetricsInputError(
            "fit_evaluator needs two classes or more with at least 4 examples each (3 to train "
            f"on, 1 held out), got class sizes {counts.tolist()}"
        )
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    flat = array.reshape(len(array), -1)
    fit_x, held_x, fit_y, held_y = train_test_split(
        flat, labels, test_size=HELD_OUT_FRACTION, stratify=labels, random_state=seed
    )
    classifier = LogisticRegression(max_iter=2000).fit(fit_x, fit_y)
    return Evaluator(
        classifier=classifier,
        input_shape=tuple(array.shape[1:]),
        held_out_accuracy=float(np.mean(classifier.predict(held_x) == held_y)),
        train_size=len(fit_y),
        held_out_size=len(held_y),
    )


def _nearest_kept(recon: np.ndarray, wanted: np.ndarray, x: np.ndarray, y: np.ndarray,
                  keep: np.ndarray) -> NearestCandidates:
    kept = np.flatnonzero(keep)
    nearest = nearest_distances(recon, x[kept], y[kept], wanted)
    return NearestCandidates(distances=nearest.distances, indices=kept[nearest.indices])


def _labels(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise MetricsInputError(f"`{name}` must be a 1-D array of integer class labels, got "
                                f"shape {array.shape} of {array.dtype}")
    return array.astype(np.int64)


def _check(reconstructions: ArrayLike, candidates: ArrayLike, candidate_labels: ArrayLike,
           classes: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    recon = np.asarray(reconstructions, dtype=np.float64)
    cands = np.asarray(candidates, dtype=np.float64)
    labels = _labels(candidate_labels, f"{name} labels")
    wanted = _labels(classes, "classes")
    if recon.ndim < 2 or len(recon) == 0 or len(recon) != len(wanted):
        raise MetricsInputError(
            f"`reconstructions` must be a non-empty batch with one class each, got shape "
            f"{recon.shape} for {len(wanted)} classes"
        )
    if cands.shape[1:] != recon.shape[1:] or len(cands) != len(labels):
        raise MetricsInputError(
            f"`{name}` must have the reconstructions' shape {recon.shape[1:]} and one label "
            f"each, got shape {cands.shape} for {len(labels)} labels"
        )
    for array, what in ((recon, "reconstructions"), (cands, name)):
        if not np.isfinite(array).all():
            raise MetricsInputError(f"`{what}` must be finite")
    missing = sorted(set(wanted.tolist()) - set(labels.tolist()))
    if missing:
        raise MetricsInputError(f"`{name}` has no example of class {missing[0]}; every "
                                "reconstructed class needs one")
    return recon.reshape(len(recon), -1), cands.reshape(len(cands), -1), labels, wanted
