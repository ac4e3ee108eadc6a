"""The threshold attack (Yeom et al. 2018; Song & Mittal 2021): models fit their training data
better than unseen data, so a per-example statistic of the model's output separates members
from non-members. The statistics (``loss``, ``confidence``, ``entropy``, ``modified_entropy``,
``logit_confidence``) are defined in :mod:`auditml.attacks.signals`.
"""

from __future__ import annotations

import numpy as np

from auditml.attacks.base import AttackSettings, MembershipAttack
from auditml.attacks.signals import THRESHOLD_METRICS, ThresholdMetric, membership_signal

__all__ = ["THRESHOLD_METRICS", "ThresholdAttack", "ThresholdSettings", "membership_signal"]


class ThresholdSettings(AttackSettings):
    metric: ThresholdMetric = "loss"


class ThresholdAttack(MembershipAttack):
    name = "mia_threshold"
    Settings = ThresholdSettings
    uses_model = False

    def score(self) -> np.ndarray:
        target = self.target
        return membership_signal(target.logits(), target.examples.y, self.params.metric)
