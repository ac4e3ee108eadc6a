"""The canary-audit contract: what training left as evidence in, a :class:`CanaryRecord` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from auditml.records import CanaryRecord, RunFacts


@dataclass(frozen=True)
class PrivacyClaim:
    """What the run's accountant certified: its name and the mechanism's history, one
    ``(noise_multiplier, sample_rate, steps)`` entry per phase (Opacus's accountant history)."""

    accountant: str
    history: list[tuple[float, float, int]]
    epsilon: float
    delta: float


@dataclass(frozen=True)
class CanaryEvidence:
    """Everything a canary audit may use.

    ``input_canaries`` are the black-box canaries (examples trained on by coin,
    ``input_included``; ``model`` may be None for audits that need only the white-box records);
    ``gradient_canaries`` is what DP-SGD recorded about its gradient
    canaries (None when the run has none); ``claim`` is None for a run without DP.
    """

    model: nn.Module | None
    device: torch.device
    delta: float
    run_facts: RunFacts
    input_canaries: ArrayDataset = field(default_factory=lambda: ArrayDataset(
        np.empty((0, 1), np.float32), np.empty(0, np.int64)
    ))
    input_included: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    gradient_canaries: Any | None = None
    claim: PrivacyClaim | None = None


class CanaryAuditKind(ABC):
    """Base class of every canary audit: ``run`` returns the audit's record."""

    name: ClassVar[str]

    def __init__(self, **settings: Any) -> None:
        if settings:
            raise ConfigError(
                f"{self.name}: unknown setting {sorted(settings)[0]!r}; it takes no settings"
            )

    def settings(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def run(self, evidence: CanaryEvidence) -> CanaryRecord:
        """Audit the run from its ``evidence``."""
