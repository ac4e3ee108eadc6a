"""dp_audit's record says what its reported score's adversary sees."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from auditml.audit.canaries import one_run
from auditml.audit.canaries.base import CanaryEvidence
from auditml.data import ArrayDataset
from auditml.records import RunFacts

_COUNT = 400


def _evidence() -> CanaryEvidence:
    rng = np.random.default_rng(0)
    canaries = ArrayDataset(rng.normal(size=(_COUNT, 4)).astype(np.float32),
                            rng.integers(0, 2, _COUNT))
    return CanaryEvidence(
        model=nn.Linear(4, 2), device=torch.device("cpu"), delta=1e-5,
        run_facts=RunFacts(experiment_name="x", dp_enabled=False),
        input_canaries=canaries, input_included=rng.random(_COUNT) < 0.5,
    )


@pytest.mark.parametrize(("telling", "threat_model"),
                         [("loss", "black_box"), ("gradient_norm", "last_iterate")])
def test_the_threat_model_is_the_reported_scores(
    monkeypatch: pytest.MonkeyPatch, telling: str, threat_model: str,
) -> None:
    evidence = _evidence()
    included = evidence.input_included
    rng = np.random.default_rng(1)

    def score(kind: str) -> np.ndarray:
        # The telling score separates the canaries trained on; the other is noise.
        return included + 0.1 * rng.normal(size=_COUNT) if kind == telling else rng.normal(
            size=_COUNT)

    monkeypatch.setattr(one_run, "membership_signal", lambda *_: score("loss"))
    monkeypatch.setattr(one_run, "gradient_norm_scores", lambda *_: score("gradient_norm"))
    record: Any = one_run.OneRunAudit().run(evidence)
    assert record.best_score == telling and record.epsilon_lower_bound > 1
    assert record.threat_model == threat_model
