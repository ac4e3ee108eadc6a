"""The canary-audit contract: a trained model and its canaries in, a :class:`CanaryRecord` out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from auditml.records import CanaryRecord, RunFacts


class CanaryAudit(ABC):
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
    def run(
        self,
        model: nn.Module,
        canaries: ArrayDataset,
        included: np.ndarray,
        *,
        delta: float,
        device: torch.device,
        run_facts: RunFacts,
    ) -> CanaryRecord:
        """Audit ``model`` with its ``canaries`` (``included[i]``: canary i was trained on)."""
