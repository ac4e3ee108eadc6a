"""The shadow-model attack (Shokri et al. 2017, "Membership Inference Attacks Against Machine
Learning Models", IEEE S&P).

Shadow models are trained like the target on data the target never saw (``target.population``),
so for them membership is known: ``target.shadow.keep[k, j]`` says whether shadow model k
trained on population example j. Every (shadow model, population example) pair gives one
training row for an *attack classifier*: the shadow model's prediction vector on the example,
labelled IN or OUT. As in the paper, there is one attack classifier per class, trained on the
rows of examples of that class, because a model's output distribution on members differs
from class to class. A class whose rows hold fewer than :data:`MIN_ROWS_PER_MEMBERSHIP` IN or
OUT rows uses a global classifier trained on every row instead; the global classifier is also
told the example's class (one-hot), since one prediction vector means different things for
different true labels.

The score of an audited example is the attack classifier's probability of IN for the target
model's prediction vector on it, using the classifier of its true class. The attack assumes
the shadow models imitate the target: same architecture, training recipe and data
distribution (the runner trains them that way).

Features: the full prediction vector, as in the paper, but each probability p_i is given as
log(p_i / (1 − p_i)). That is a strictly increasing function of p_i, so it carries exactly the
same information (and tree ensembles see no difference), while linear and neural classifiers
can tell 0.999 from 0.999999 — the range where members and non-members differ.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from scipy.special import log_softmax, logsumexp

from auditml.attacks.base import (
    AttackSettings,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    NotFittedError,
)
from auditml.errors import AuditMLError

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

AttackClassifier = Literal["logistic", "gradient_boosting", "mlp"]
ATTACK_CLASSIFIERS: tuple[str, ...] = get_args(AttackClassifier)

# A class's own attack classifier needs at least this many IN and this many OUT rows
# (rows = shadow models × population examples of the class); below it the class is scored by
# the global classifier.
MIN_ROWS_PER_MEMBERSHIP = 10


class ShadowSettings(AttackSettings):
    # Logistic regression is the default: with the few rows per class that an audit's shadow
    # models give (hundreds), it ranked planted members best in our tests (AUC 0.96, against
    # 0.86 for boosted trees and 0.91 for the MLP, which overfit such small sets), and its
    # probabilities stay comparable across the per-class classifiers.
    classifier: AttackClassifier = "logistic"


class ShadowModelAttack(MembershipAttack):
    """Per-class attack classifiers trained on shadow models' outputs (Shokri et al. 2017)."""

    name = "mia_shadow"
    Settings = ShadowSettings
    requires = frozenset({"shadow", "population"})

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._per_class: dict[int, ClassifierMixin] = {}
        self._global: ClassifierMixin | None = None

    def _fit(self, target: AuditTarget) -> None:
        # Forget an earlier fit first, so a fit that fails leaves nothing stale to score with.
        self._per_class, self._global = {}, None
        shadow, population = target.shadow, target.population
        if shadow is None or population is None:  # fit() has checked; this narrows the types
            raise MissingResourceError(f"{self.name} needs shadow models and population data")
        # keep column j refers to population example j (both are prefixes of one shuffled
        # list); population examples beyond the keep matrix were never offered to the shadows.
        count = min(len(population), shadow.keep.shape[1])
        if len(shadow) == 0 or count == 0:
            raise MissingResourceError(
                f"{self.name} needs at least one shadow model and one population example "
                f"they were trained on or not, got {len(shadow)} models and {count} examples"
            )
        keep = np.asarray(shadow.keep[:, :count], dtype=bool)
        labels = np.asarray(population.y[:count])
        logits = shadow.logits(population.x[:count])  # (K, count, C)
        _check_classes(
            logits.shape[-1],
            target.num_classes,
            "shadow models",
            "they must share the target's architecture and dataset",
        )

        features = prediction_features(logits).reshape(-1, logits.shape[-1])
        is_in = keep.reshape(-1)
        row_labels = np.broadcast_to(labels, keep.shape).reshape(-1)
        if is_in.all() or not is_in.any():
            raise MissingResourceError(
                f"{self.name} needs shadow models that trained on some population examples and "
                "not on others, but every keep entry is "
                f"{'IN' if is_in.all() else 'OUT'}; train shadow models on halves of the population"
            )
        prototype = _classifier(self.params.classifier, target.seed)
        for label in range(target.num_classes):
            rows = row_labels == label
            ins = int(np.count_nonzero(is_in[rows]))
            outs = int(np.count_nonzero(rows)) - ins
            if min(ins, outs) >= MIN_ROWS_PER_MEMBERSHIP:
                self._per_class[label] = _fit_classifier(prototype, features[rows], is_in[rows])
        if len(self._per_class) < target.num_classes:
            self._global = _fit_classifier(
                prototype, _with_class(features, row_labels, target.num_classes), is_in
            )

    @property
    def classes_with_own_classifier(self) -> list[int]:
        """Classes scored by their own attack classifier (the rest use the global one)."""
        _ = self.target  # raises NotFittedError before fit
        return sorted(self._per_class)

    def score(self) -> np.ndarray:
        target = self.target
        logits = target.logits()
        labels = np.asarray(target.examples.y)
        scores = np.empty(len(labels), dtype=np.float64)
        if len(labels) == 0:
            return scores
        _check_classes(
            logits.shape[-1], target.num_classes, "the target model", "check num_classes"
        )
        features = prediction_features(logits)
        own = np.isin(labels, list(self._per_class))
        for label, classifier in self._per_class.items():
            rows = labels == label
            if rows.any():
                scores[rows] = _probability_in(classifier, features[rows])
        if (~own).any():
            if self._global is None:  # only when fit() failed half-way
                raise NotFittedError(f"{self.name} is not fitted: call fit(target) again")
            rest = _with_class(features[~own], labels[~own], target.num_classes)
            scores[~own] = _probability_in(self._global, rest)
        return scores


def prediction_features(logits: np.ndarray) -> np.ndarray:
    """log(p_i / (1 − p_i)) for every class i, from logits of any leading shape, stably.

    log(1 − p_i) is log1p(−p_i) for every class but the top one (p_i ≤ 1/2 there, where that is
    accurate) and log Σ_{j≠i} p_j for the top class, where 1 − p_i would cancel.
    """
    logits = np.asarray(logits, dtype=np.float64)
    log_probs = log_softmax(logits, axis=-1)
    with np.errstate(divide="ignore"):  # the top class may give log1p(−1); it is replaced below
        log_rest = np.log1p(-np.exp(log_probs))
    top = np.argmax(logits, axis=-1)[..., None]
    others = logits.copy()
    np.put_along_axis(others, top, -np.inf, axis=-1)
    log_rest_top = logsumexp(others, axis=-1, keepdims=True) - logsumexp(
        logits, axis=-1, keepdims=True
    )
    np.put_along_axis(log_rest, top, log_rest_top, axis=-1)
    # With a single class (or −inf logits) 1 − p_top is exactly 0; keep the features finite.
    return np.clip(log_probs - log_rest, -1e6, 1e6)


def _classifier(kind: str, seed: int) -> ClassifierMixin:
    # scikit-learn is imported here, not at the top: it takes about a second, and every
    # auditml command imports the attack registry.
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "gradient_boosting":
        # Shallow, shrunk and subsampled: deeper ensembles split on the noise between IN and
        # OUT rows of well-fitted examples and rank planted members far worse.
        return GradientBoostingClassifier(
            n_estimators=50,
            max_depth=2,
            learning_rate=0.05,
            min_samples_leaf=10,
            subsample=0.8,
            random_state=seed,
        )
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if kind == "mlp":
        # Shokri et al.'s attack models are small neural networks. No early stopping: its
        # held-out tenth of a few hundred rows is too small to judge by; weight decay instead.
        return make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(64,),
                alpha=1e-2,
                learning_rate_init=1e-2,
                max_iter=100,
                random_state=seed,
            ),
        )
    raise ValueError(f"unknown classifier {kind!r}; use one of {', '.join(ATTACK_CLASSIFIERS)}")


def _fit_classifier(
    prototype: ClassifierMixin, features: np.ndarray, is_in: np.ndarray
) -> ClassifierMixin:
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    classifier = clone(prototype)
    with warnings.catch_warnings():
        # Stochastic solvers on a few hundred rows often stop at max_iter short of sklearn's
        # tolerance; the warning would repeat for every class and the user cannot act on it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(features, is_in)
    return classifier


def _with_class(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.concatenate([features, np.eye(num_classes)[labels]], axis=1)


def _probability_in(classifier: ClassifierMixin, features: np.ndarray) -> np.ndarray:
    column = list(classifier.classes_).index(True)
    return classifier.predict_proba(features)[:, column]


def _check_classes(found: int, expected: int, what: str, hint: str) -> None:
    if found != expected:
        raise AuditMLError(f"{what} output {found} classes but the audit has {expected}; {hint}")
