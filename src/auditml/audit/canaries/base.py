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
from auditml.metrics import MetricsInputError, gaussian_one_run_audit
from auditml.records import CanaryRecord, GaussianBoundRecord, RunFacts


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

    ``input_canaries`` are the black-box canaries (examples, or a language model's secret
    texts, trained on by coin, ``input_included``; ``model`` may be None for audits that need
    only the white-box records); ``gradient_canaries`` is what DP-SGD recorded about its
    gradient canaries (None when the run has none); ``claim`` is None for a run without DP.
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
    # The secret canaries' texts, prefixes and secrets (:class:`auditml.data.secrets.Secrets`;
    # ``input_canaries`` holds their token ids), or None when the run has none.
    secrets: Any | None = None
    # How many times each included input canary was trained on (secret canaries may repeat).
    canary_repeats: int = 1


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


def gaussian_bound(
    scores: dict[str, np.ndarray], included: np.ndarray, *, delta: float, confidence: float
) -> GaussianBoundRecord | None:
    """The largest ε lower bound under the Gaussian assumption over the named scores
    (:func:`auditml.metrics.gaussian_one_run_audit`), each at ``1 - (1 - confidence) / k`` for
    ``k`` scores (Bonferroni), so the largest holds at ``confidence`` if the assumption does.

    None where the model cannot be fitted: fewer than 3 canaries IN or OUT, scores constant
    within both groups, or δ = 0 (where a Gaussian curve's ε is infinite). It is reported
    beside the assumption-free bound and never enters the verdict.
    """
    per_score = 1 - (1 - confidence) / len(scores)
    bounds = {}
    for name, values in scores.items():
        try:
            bounds[name] = gaussian_one_run_audit(
                values, included, delta=delta, confidence=per_score
            )
        except MetricsInputError:
            continue
    if not bounds:
        return None
    best = max(bounds, key=lambda name: bounds[name].epsilon)
    return GaussianBoundRecord(
        **{**bounds[best].to_dict(), "confidence": confidence}, score=best
    )
