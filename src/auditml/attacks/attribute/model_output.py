"""The black-box attack on the model's output (Mehnaz et al. 2022's learned attack; IBM ART's
``AttributeInferenceBlackBox``): the imputation baseline's features plus the model's softmax on
the true record.

The attacker observes what the model predicted for each person (their record includes the
sensitive attribute, which the attacker does not know) and learns, on auxiliary records whose
attribute it knows, how that output varies with the attribute. The classifier is the baseline's,
so any gain over the baseline comes from the model's outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auditml.attacks.attribute.base import (
    AttributeAttack,
    AttributeTarget,
    category_log_probabilities,
    fit_classifier,
)
from auditml.attacks.attribute.imputation import imputation_features
from auditml.models import predict_logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class ModelOutputAttack(AttributeAttack):
    name = "model_output"

    def _fit(self, target: AttributeTarget) -> None:
        if target.record_outputs is None or len(target.record_outputs) != len(target.records):
            raise ValueError("model_output needs the model's outputs on the audited records")
        auxiliary = target.auxiliary
        assert target.model is not None  # checked by fit
        outputs = softmax(predict_logits(target.model, auxiliary.x, device=target.device))
        features = np.hstack([imputation_features(auxiliary.x, auxiliary.y, target), outputs])
        categories = target.attribute.classes(auxiliary.x.reshape(len(auxiliary.x), -1))
        self._classifier: Any = fit_classifier(
            self.params.classifier, features, categories, target.seed
        )

    def score(self) -> np.ndarray:
        target = self.target
        assert target.record_outputs is not None
        features = np.hstack([
            imputation_features(target.records.x, target.records.y, target),
            target.record_outputs,
        ])
        return category_log_probabilities(
            self._classifier, features, len(target.attribute.categories)
        )
