"""The confidence attack (Fredrikson et al. 2014; Yeom et al. 2018; Mehnaz et al. 2022's CSMIA):
try every category and keep the one under which the model is most confident of the true label.

For record (x, y) and category c, with x_c the record with the attribute set to c::

    score(c) = log p_model(y | x_c) + log prior(c)

the maximum-a-posteriori guess when the model's confidence in the true label is taken as the
likelihood of the attribute (Fredrikson et al.'s estimator); ``prior`` is the categories'
frequency among the auxiliary records (``use_prior: false`` drops it). A model that memorised its
members fits their true record best, so on members the attack beats imputation (Yeom et al.'s
link between attribute inference and overfitting); on non-members it can only use what the model
learned about the population.
"""

from __future__ import annotations

import numpy as np

from auditml.attacks.attribute.base import AttributeAttack, AttributeSettings, AttributeTarget
from auditml.models import predict_logits


class ConfidenceSettings(AttributeSettings):
    use_prior: bool = True


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class ConfidenceAttack(AttributeAttack):
    name = "confidence"
    Settings = ConfidenceSettings

    def _fit(self, target: AttributeTarget) -> None:
        categories = len(target.attribute.categories)
        observed = target.attribute.classes(target.auxiliary.x.reshape(len(target.auxiliary), -1))
        # Add-one smoothing: a category absent from a small auxiliary set keeps a finite prior.
        counts = np.bincount(observed, minlength=categories) + 1.0
        self._log_prior = np.log(counts / counts.sum())

    def score(self) -> np.ndarray:
        target = self.target
        assert target.model is not None  # checked by fit
        records = target.records
        rows = np.arange(len(records))
        columns = []
        for category in range(len(target.attribute.categories)):
            candidate = target.attribute.with_class(records.x, category)
            logits = predict_logits(target.model, candidate, device=target.device)
            columns.append(log_softmax(logits)[rows, records.y])
        scores = np.stack(columns, axis=1)
        return scores + self._log_prior if self.params.use_prior else scores
