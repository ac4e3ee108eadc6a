"""The canary audits' bound under the Gaussian assumption: chosen, recorded, checked on reading."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from auditml.audit.canaries.base import gaussian_bound
from auditml.metrics import gaussian_one_run_audit
from auditml.records import GaussianBoundRecord


def _canaries(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    included = rng.random(1000) < 0.5
    return {"loss": rng.normal(size=1000) + 1.5 * included,
            "gradient_norm": rng.normal(size=1000) + 0.2 * included}, included


def test_the_best_score_is_reported_at_a_bonferroni_corrected_confidence() -> None:
    scores, included = _canaries()
    bound = gaussian_bound(scores, included, delta=1e-5, confidence=0.95)
    assert bound is not None and bound.score == "loss"
    # Each of the two scores is bounded at 97.5 %, so the larger holds at 95 %.
    alone = gaussian_one_run_audit(scores["loss"], included, delta=1e-5, confidence=0.975)
    assert bound.mu == alone.mu and bound.epsilon == alone.epsilon
    assert bound.confidence == 0.95 and bound.kind == "bound under the Gaussian assumption"
    assert bound.normality_p == alone.normality_p


def test_canaries_that_cannot_fit_the_model_give_none() -> None:
    scores, included = _canaries()
    assert gaussian_bound(scores, included, delta=0.0, confidence=0.95) is None
    few = np.zeros(1000, bool)
    few[:2] = True
    assert gaussian_bound(scores, few, delta=1e-5, confidence=0.95) is None
    # One score unusable (constant), the other still counts.
    flat = {"loss": np.ones(1000), "gradient_norm": scores["gradient_norm"]}
    kept = gaussian_bound(flat, included, delta=1e-5, confidence=0.95)
    assert kept is not None and kept.score == "gradient_norm"


def test_the_record_refuses_what_a_tampered_file_could_hold() -> None:
    scores, included = _canaries()
    bound = gaussian_bound(scores, included, delta=1e-5, confidence=0.95)
    assert bound is not None
    dumped = bound.model_dump(mode="json")
    assert GaussianBoundRecord.model_validate(dumped) == bound
    for key, value in (("kind", "bound"), ("normality_p_included", 1.5),
                       ("epsilon", float("inf")), ("mu", -1.0), ("extra", 1)):
        with pytest.raises(ValidationError):
            GaussianBoundRecord.model_validate({**dumped, key: value})
