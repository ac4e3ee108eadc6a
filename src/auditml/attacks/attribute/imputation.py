"""The imputation baseline (Jayaraman & Evans 2022): infer the sensitive attribute from the
other attributes and the label alone, never querying the model.

A classifier is fit on the auxiliary records (other attributes + one-hot label -> category) and
applied to the audited records. Whatever accuracy it reaches, a model-querying attack must beat
to show that the *model* leaks anything: the population's correlations are not the model's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from auditml.attacks.attribute.base import (
    AttributeAttack,
    AttributeTarget,
    category_log_probabilities,
    fit_classifier,
    one_hot,
    other_attributes,
)


def imputation_features(x: np.ndarray, y: np.ndarray, target: AttributeTarget) -> np.ndarray:
    return np.hstack([other_attributes(x, target.attribute), one_hot(y, target.num_classes)])


class ImputationBaseline(AttributeAttack):
    name = "imputation"
    queries_model: ClassVar[bool] = False

    def _fit(self, target: AttributeTarget) -> None:
        auxiliary = target.auxiliary
        self._classifier: Any = fit_classifier(
            self.params.classifier, imputation_features(auxiliary.x, auxiliary.y, target),
            target.attribute.classes(auxiliary.x.reshape(len(auxiliary.x), -1)), target.seed,
        )

    def score(self) -> np.ndarray:
        target = self.target
        features = imputation_features(target.records.x, target.records.y, target)
        return category_log_probabilities(
            self._classifier, features, len(target.attribute.categories)
        )
