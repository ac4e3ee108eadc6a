"""The attack contract: one membership score per audited example, higher = more likely member.

An attack never computes AUC, TPR or ε; :mod:`auditml.metrics` turns its scores into numbers.
Attacks follow the estimator pattern: ``__init__`` stores keyword-only settings and does nothing
else, ``fit(target)`` learns whatever the attack needs (reference models, calibration) and
returns ``self``, and ``score(x, y)`` returns the scores. ``score`` before ``fit`` raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from auditml.data import ArrayDataset
from auditml.errors import AuditMLError


class NotFittedError(AuditMLError):
    """An attack was asked for scores before ``fit``."""


@dataclass(frozen=True)
class AuditTarget:
    """What an attack may use: the trained model and the examples whose membership it judges.

    ``members`` and ``nonmembers`` are given together so attacks that calibrate can do so, but
    an attack must score each example from the model's behaviour on it, never from which set it
    came from.
    """

    model: nn.Module
    num_classes: int
    device: torch.device
    seed: int


class MembershipAttack(ABC):
    """Base class of every membership-inference attack."""

    name: ClassVar[str]

    def __init__(self) -> None:
        self._target: AuditTarget | None = None

    def fit(self, target: AuditTarget) -> MembershipAttack:
        self._target = target
        return self

    @property
    def target(self) -> AuditTarget:
        if self._target is None:
            raise NotFittedError(f"{self.name} is not fitted yet: call fit(target) first")
        return self._target

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The attack's parameters, as recorded in ``audit/<attack>.json``."""

    @abstractmethod
    def score(self, examples: ArrayDataset) -> np.ndarray:
        """One float per example, higher = more likely a member of the training set."""
