"""membership_metrics agrees with the functions it summarises; its dict form round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import (
    DEFAULT_FPRS,
    MembershipMetrics,
    MetricsInputError,
    advantage,
    calibrated_accuracy,
    membership_metrics,
    roc_auc,
    tpr_at_fpr,
)


def gaussian_scores(mu: float, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Members ~ N(mu, 1), non-members ~ N(0, 1), as evenly spaced quantiles (no randomness)."""
    quantiles = stats.norm.ppf((np.arange(per_class) + 0.5) / per_class)
    scores = np.concatenate([quantiles + mu, quantiles])
    is_member = np.concatenate([np.ones(per_class, bool), np.zeros(per_class, bool)])
    return scores, is_member


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_member = rng.random(500) < 0.3
    is_member[:4] = [True, True, False, False]
    return np.round(rng.normal(size=500) + is_member, 1), is_member


def test_default_fprs() -> None:
    assert DEFAULT_FPRS == (0.001, 0.01, 0.1)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_individual_functions(seed: int) -> None:
    scores, is_member = random_case(seed)
    result = membership_metrics(scores, is_member, seed=seed)
    assert result.auc == roc_auc(scores, is_member)
    assert result.advantage == advantage(scores, is_member)
    assert result.calibrated_accuracy == calibrated_accuracy(scores, is_member, seed=seed)
    assert list(result.tpr_at_fpr) == list(DEFAULT_FPRS)
    for fpr, tpr in result.tpr_at_fpr.items():
        assert tpr == tpr_at_fpr(scores, is_member, fpr)
    assert result.members == is_member.sum()
    assert result.nonmembers == (~is_member).sum()


def test_gaussian_values() -> None:
    mu = 1.0
    result = membership_metrics(*gaussian_scores(mu, 5000), fprs=(0.01, 0.1))
    assert result.auc == pytest.approx(stats.norm.cdf(mu / np.sqrt(2)), abs=2e-3)
    assert result.advantage == pytest.approx(2 * stats.norm.cdf(mu / 2) - 1, abs=2e-3)
    assert result.calibrated_accuracy.accuracy == pytest.approx(stats.norm.cdf(mu / 2), abs=0.02)
    for fpr, tpr in result.tpr_at_fpr.items():
        assert tpr == pytest.approx(stats.norm.sf(stats.norm.isf(fpr) - mu), abs=5e-3)


def test_to_dict_is_json_ready_and_round_trips() -> None:
    scores, is_member = random_case(0)
    result = membership_metrics(scores, is_member, fprs=(0.001, 0.01, 0.1, 1e-5, 0.5))
    data = result.to_dict()
    assert set(data) == {
        "auc",
        "tpr_at_fpr",
        "advantage",
        "calibrated_accuracy",
        "members",
        "nonmembers",
        "tied_at_top",
        "tied_at_top_nonmembers",
    }
    assert list(data["tpr_at_fpr"]) == ["0.001", "0.01", "0.1", "1e-05", "0.5"]
    assert data["calibrated_accuracy"] == {
        "threshold": result.calibrated_accuracy.threshold,
        "accuracy": result.calibrated_accuracy.accuracy,
        "calibration_size": result.calibrated_accuracy.calibration_size,
        "evaluation_size": result.calibrated_accuracy.evaluation_size,
    }
    text = json.dumps(data, allow_nan=False)
    assert MembershipMetrics.from_dict(json.loads(text)) == result
    assert MembershipMetrics.from_dict(data) == result


def test_to_dict_is_finite_without_signal() -> None:
    # All scores tied: the chosen threshold is still a score, not +inf, so strict JSON accepts it.
    result = membership_metrics(np.zeros(8), np.arange(8) % 2)
    json.dumps(result.to_dict(), allow_nan=False)
    assert result.calibrated_accuracy.threshold == 0.0
    assert result.auc == 0.5
    assert result.advantage == 0.0


def test_from_dict_names_a_missing_key() -> None:
    data = membership_metrics(*random_case(1)).to_dict()
    del data["advantage"]
    with pytest.raises(MetricsInputError, match="'advantage'"):
        MembershipMetrics.from_dict(data)
    data = membership_metrics(*random_case(1)).to_dict()
    data["tpr_at_fpr"] = [0.1]
    with pytest.raises(MetricsInputError, match="malformed"):
        MembershipMetrics.from_dict(data)


def test_invalid_inputs_name_the_argument() -> None:
    scores, is_member = random_case(2)
    with pytest.raises(MetricsInputError, match=r"`fprs` must be in \[0, 1\], got 2.0"):
        membership_metrics(scores, is_member, fprs=(0.1, 2.0))
    with pytest.raises(MetricsInputError, match="`scores` must be finite, got 1 NaN"):
        membership_metrics(np.where(np.arange(500) == 7, np.nan, scores), is_member)
    with pytest.raises(MetricsInputError, match="`is_member` must contain at least 2 members"):
        membership_metrics([0.1, 0.2, 0.3], [1, 0, 0])
    with pytest.raises(MetricsInputError, match="`seed` must be a non-negative integer"):
        membership_metrics(scores, is_member, seed=-3)


def test_seed_changes_only_the_calibrated_accuracy() -> None:
    scores, is_member = random_case(3)
    first = membership_metrics(scores, is_member, seed=0)
    others = [membership_metrics(scores, is_member, seed=seed) for seed in range(1, 6)]
    assert all(other.auc == first.auc and other.tpr_at_fpr == first.tpr_at_fpr for other in others)
    assert any(other.calibrated_accuracy != first.calibrated_accuracy for other in others)
    assert membership_metrics(scores, is_member, seed=0) == first


def test_counts_the_tie_at_the_top() -> None:
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.5, 0.4, 0.3, 0.2])
    is_member = np.array([True, True, False, True, False, True, False, False])
    result = membership_metrics(scores, is_member)
    assert (result.tied_at_top, result.tied_at_top_nonmembers) == (4, 1)
    assert result.tpr_at_fpr[0.1] == 0.0  # 1 of 4 non-members is tied at the top: FPR 0.25
    rounded, labels = random_case(1)  # scores rounded to 0.1: the top may tie
    top = rounded == rounded.max()
    counted = membership_metrics(rounded, labels)
    assert (counted.tied_at_top, counted.tied_at_top_nonmembers) == (top.sum(),
                                                                      (top & ~labels).sum())
    old = {key: value for key, value in result.to_dict().items() if "tied" not in key}
    assert MembershipMetrics.from_dict(old).tied_at_top is None  # records before the counts
    with pytest.raises(MetricsInputError, match="tied_at_top"):
        MembershipMetrics.from_dict({**result.to_dict(), "tied_at_top_nonmembers": 5})
