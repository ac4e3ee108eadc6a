"""The contract of the audits beyond membership: a trained model and its data in, a record out.

An inference audit asks another privacy question of the model than "was this example a member?"
(attribute inference: "what is this member's sensitive attribute?"; model inversion: "what do
the training data look like?"). Each is an :class:`InferenceAudit` registered in
:data:`auditml.audit.inference.INFERENCE_AUDITS`; its record is written to
``audit/<name>.json`` (and its figures beside it, when the caller draws them) by
:mod:`auditml.audit.runner`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from auditml.attacks.base import validated_settings
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.figure_data import FigureData
from auditml.records import Record, RunFacts


class InferenceSettings(BaseModel):
    """Base of every inference audit's settings; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class InferenceEvidence:
    """What an inference audit may use: the model, its members and non-members, population
    records it never trained on (the attacker's auxiliary data), and facts of the data."""

    model: nn.Module
    members: ArrayDataset
    nonmembers: ArrayDataset
    population: ArrayDataset | None
    input_shape: tuple[int, ...]
    num_classes: int
    device: torch.device
    seed: int
    run_facts: RunFacts
    # The data's declared sensitive attribute (tabular datasets); None when it has none.
    sensitive: SensitiveAttribute | None = None
    dataset: str = "the data"


@dataclass(frozen=True)
class InferenceOutcome:
    """An audit's record, and what its figures show: file suffix -> the figure's data (drawn,
    or not, by the caller: :mod:`auditml.figure_data`)."""

    record: Record
    figures: dict[str, FigureData] = field(default_factory=dict)


class InferenceAudit(ABC):
    """Base class of every inference audit: settings validated at construction, ``run``."""

    name: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = InferenceSettings

    def __init__(self, **settings: Any) -> None:
        self.params = validated_settings(self.Settings, self.name, settings)

    def settings(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")

    def check(self, dataset: str, sensitive: SensitiveAttribute | None) -> None:  # noqa: B027
        """Refuse, before any model loads, data this audit cannot handle (a hook)."""

    @abstractmethod
    def run(self, evidence: InferenceEvidence) -> InferenceOutcome:
        """Audit the model from ``evidence``."""
