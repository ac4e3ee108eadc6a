"""The attribute-inference contract: one score per (record, category) of a sensitive attribute.

An attribute-inference attack knows each audited record except one sensitive attribute (and
knows its label), may query the model, and has auxiliary records from the same population with
the attribute known. It scores every category of every record (higher = more likely); it never
computes accuracy or advantage: :mod:`auditml.metrics.attribute` does.

The audited records reach the attack with the sensitive columns overwritten by category 0's
encoding (:func:`hide_attribute`), so no attack can read what it is asked to infer. What the
model output *on the true record* is (the black-box threat model of Mehnaz et al. 2022 and IBM
ART's ``AttributeInferenceBlackBox``: the model's prediction for the person is observed) is given
separately in ``record_outputs``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from auditml.attacks.base import NotFittedError, validated_settings
from auditml.data import ArrayDataset
from auditml.data.base import SensitiveAttribute
from auditml.errors import ConfigError

Classifier = Literal["logistic", "boosting"]


class AttributeSettings(BaseModel):
    """Base of every attribute attack's settings; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # The auxiliary classifier of the attacks that learn one. The same for the imputation
    # baseline and the attack that also sees the model, so an advantage is the model's doing,
    # not a better classifier's.
    classifier: Classifier = "logistic"


@dataclass(frozen=True)
class AttributeTarget:
    """What an attribute attack may use.

    ``records`` are the audited records with the attribute hidden; ``record_outputs`` the
    model's softmax on each true record (None when the model is not to be queried);
    ``auxiliary`` records of the same population with the attribute in place; ``model`` the
    target (None for attacks that never query it).
    """

    records: ArrayDataset
    attribute: SensitiveAttribute
    auxiliary: ArrayDataset
    num_classes: int
    device: torch.device
    seed: int
    model: nn.Module | None = None
    record_outputs: np.ndarray | None = None


def hide_attribute(records: ArrayDataset, attribute: SensitiveAttribute) -> ArrayDataset:
    """``records`` with the sensitive attribute set to category 0 for everyone."""
    return ArrayDataset(attribute.with_class(records.x, 0), records.y)


class AttributeAttack(ABC):
    """Base class of every attribute-inference attack (estimator pattern, like
    :class:`auditml.attacks.MembershipAttack`)."""

    name: ClassVar[str]
    Settings: ClassVar[type[AttributeSettings]] = AttributeSettings
    # Whether the attack queries the target model (the imputation baseline does not).
    queries_model: ClassVar[bool] = True

    def __init__(self, **settings: Any) -> None:
        self.params = validated_settings(self.Settings, self.name, settings)
        self._target: AttributeTarget | None = None

    def fit(self, target: AttributeTarget) -> AttributeAttack:
        if self.queries_model and target.model is None:
            raise ConfigError(f"{self.name} queries the model, but the target has none")
        self._target = target
        try:
            self._fit(target)
        except BaseException:
            self._target = None
            raise
        return self

    def _fit(self, target: AttributeTarget) -> None:  # noqa: B027 - a hook, empty by default
        """Learn from the auxiliary records; the default learns nothing."""

    @property
    def target(self) -> AttributeTarget:
        if self._target is None:
            raise NotFittedError(f"{self.name} is not fitted yet: call fit(target) first")
        return self._target

    def settings(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")

    @abstractmethod
    def score(self) -> np.ndarray:
        """``(records, categories)`` scores, higher = more likely that category."""


def other_attributes(x: np.ndarray, attribute: SensitiveAttribute) -> np.ndarray:
    """Each record's features without the sensitive columns, flattened."""
    flat = x.reshape(len(x), -1)
    keep = np.setdiff1d(np.arange(flat.shape[1]), np.asarray(attribute.columns))
    return flat[:, keep]


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype=np.float64)[labels]


def fit_classifier(kind: Classifier, features: np.ndarray, categories: np.ndarray, seed: int
                   ) -> Any:
    """A scikit-learn classifier of the category from ``features`` (standardised first)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        estimator: Any = LogisticRegression(max_iter=2000)
    else:
        estimator = HistGradientBoostingClassifier(random_state=seed)
    return make_pipeline(StandardScaler(), estimator).fit(features, categories)


def category_log_probabilities(classifier: Any, features: np.ndarray, categories: int
                               ) -> np.ndarray:
    """``(N, categories)`` log-probabilities, a category unseen in training getting -inf
    clipped to log(1e-12) (so the scores stay finite)."""
    probabilities = np.full((len(features), categories), 1e-12)
    probabilities[:, classifier.classes_] = np.maximum(classifier.predict_proba(features), 1e-12)
    return np.log(probabilities)
