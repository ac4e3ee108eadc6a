"""Threshold selection: the best in-sample threshold, and the split-halves calibrated accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import (
    CalibratedAccuracy,
    MetricsInputError,
    advantage,
    best_threshold,
    calibrated_accuracy,
)
from auditml.metrics.threshold import _stratified_halves


def gaussian_scores(mu: float, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Members ~ N(mu, 1), non-members ~ N(0, 1), as evenly spaced quantiles (no randomness)."""
    quantiles = stats.norm.ppf((np.arange(per_class) + 0.5) / per_class)
    scores = np.concatenate([quantiles + mu, quantiles])
    is_member = np.concatenate([np.ones(per_class, bool), np.zeros(per_class, bool)])
    return scores, is_member


def balanced_accuracy(scores: np.ndarray, is_member: np.ndarray, threshold: float) -> float:
    tpr = np.mean(scores[is_member] >= threshold)
    tnr = np.mean(scores[~is_member] < threshold)
    return float((tpr + tnr) / 2)


def naive_best_threshold(scores: np.ndarray, is_member: np.ndarray) -> float:
    """Try every distinct score from the highest down; keep the first strictly better one."""
    best, best_accuracy = None, -1.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        accuracy = balanced_accuracy(scores, is_member, threshold)
        if accuracy > best_accuracy + 1e-12:
            best, best_accuracy = threshold, accuracy
    assert best is not None
    return best


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(4, 200))
    is_member = rng.random(size) < rng.choice([0.1, 0.5, 0.8])
    is_member[rng.choice(size, 4, replace=False)] = [True, True, False, False]
    scores = rng.integers(0, rng.choice([3, 20, 10**6]), size) + rng.integers(0, 3) * is_member
    return scores.astype(float), is_member


# --- best_threshold -------------------------------------------------------------------------


def test_best_threshold_hand_cases() -> None:
    # Balanced accuracy: 0.8 -> 0.75, 0.4 -> 0.5, 0.35 -> 0.75, 0.1 -> 0.5; ties go to the highest.
    assert best_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.8
    assert best_threshold([5.0, 6.0, 1.0, 2.0], [1, 1, 0, 0]) == 5.0
    # No threshold beats chance; the result is still a finite score, never +inf.
    assert best_threshold([0.0, 1.0, 2.0, 3.0], [1, 1, 0, 0]) == 0.0
    assert best_threshold([4.0, 4.0, 4.0], [1, 0, 0]) == 4.0


@pytest.mark.parametrize("seed", range(40))
def test_best_threshold_matches_naive_loop(seed: int) -> None:
    scores, is_member = random_case(seed)
    threshold = best_threshold(scores, is_member)
    assert threshold == naive_best_threshold(scores, is_member)
    # The in-sample optimum is exactly (1 + advantage) / 2.
    assert balanced_accuracy(scores, is_member, threshold) == pytest.approx(
        (1 + advantage(scores, is_member)) / 2, abs=1e-12
    )


# --- the split ------------------------------------------------------------------------------


@pytest.mark.parametrize(("members", "nonmembers"), [(2, 2), (3, 7), (50, 51), (10, 1000)])
def test_split_is_stratified_and_complete(members: int, nonmembers: int) -> None:
    is_member = np.random.default_rng(0).permutation(
        np.concatenate([np.ones(members, bool), np.zeros(nonmembers, bool)])
    )
    calibration, evaluation = _stratified_halves(is_member, seed=3)
    assert np.intersect1d(calibration, evaluation).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([calibration, evaluation])), np.arange(len(is_member))
    )
    # The calibration half takes the extra example of an odd class.
    assert is_member[calibration].sum() == (members + 1) // 2
    assert (~is_member[calibration]).sum() == (nonmembers + 1) // 2


def test_split_depends_on_seed() -> None:
    is_member = np.arange(100) % 2 == 0
    first, _ = _stratified_halves(is_member, seed=0)
    np.testing.assert_array_equal(first, _stratified_halves(is_member, seed=0)[0])
    assert not np.array_equal(first, _stratified_halves(is_member, seed=1)[0])


# --- calibrated_accuracy --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_threshold_ignores_the_evaluation_half(seed: int) -> None:
    scores, is_member = gaussian_scores(1.0, 101)
    result = calibrated_accuracy(scores, is_member, seed=seed)
    _, evaluation = _stratified_halves(is_member, seed)
    rng = np.random.default_rng(seed + 100)
    for replacement in (rng.normal(size=evaluation.size) * 10, np.zeros(evaluation.size)):
        changed = scores.copy()
        changed[evaluation] = replacement
        other = calibrated_accuracy(changed, is_member, seed=seed)
        assert other.threshold == result.threshold
        assert other.calibration_size == result.calibration_size


@pytest.mark.parametrize("seed", range(10))
def test_accuracy_is_measured_on_the_evaluation_half_only(seed: int) -> None:
    scores, is_member = random_case(seed)
    result = calibrated_accuracy(scores, is_member, seed=seed)
    calibration, evaluation = _stratified_halves(is_member, seed)
    assert result.threshold == naive_best_threshold(scores[calibration], is_member[calibration])
    assert result.accuracy == pytest.approx(
        balanced_accuracy(scores[evaluation], is_member[evaluation], result.threshold), abs=1e-12
    )
    assert (result.calibration_size, result.evaluation_size) == (calibration.size, evaluation.size)
    assert result.calibration_size + result.evaluation_size == len(scores)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_gaussian_accuracy_is_phi_of_half_mu(mu: float) -> None:
    # The best threshold mu / 2 has TPR = TNR = Phi(mu / 2).
    scores, is_member = gaussian_scores(mu, 4000)
    for seed in range(3):
        result = calibrated_accuracy(scores, is_member, seed=seed)
        assert result.accuracy == pytest.approx(stats.norm.cdf(mu / 2), abs=0.02)
        assert result.threshold == pytest.approx(mu / 2, abs=0.5)


def test_no_signal_gives_chance() -> None:
    # Identical distributions: held-out accuracy is near 0.5, although in-sample it is not.
    scores, is_member = gaussian_scores(0.0, 2000)
    result = calibrated_accuracy(scores, is_member, seed=0)
    assert result.accuracy == pytest.approx(0.5, abs=0.03)
    tied = calibrated_accuracy(np.ones(10), np.arange(10) % 2, seed=0)
    assert tied.accuracy == 0.5


def test_reproducible_with_the_same_seed() -> None:
    scores, is_member = random_case(5)
    first = calibrated_accuracy(scores, is_member, seed=11)
    assert calibrated_accuracy(scores, is_member, seed=11) == first
    assert isinstance(first, CalibratedAccuracy)
    assert isinstance(first.threshold, float) and np.isfinite(first.threshold)


def test_smallest_valid_input() -> None:
    result = calibrated_accuracy([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], seed=0)
    assert (result.calibration_size, result.evaluation_size) == (2, 2)
    assert result.accuracy == 1.0


@pytest.mark.parametrize(
    ("is_member", "message"),
    [([1, 0, 0, 0], "got 1 members and 3 non-members"), ([1, 1, 1, 0], "got 3 members and 1 non")],
)
def test_needs_two_of_each_class(is_member: list[int], message: str) -> None:
    with pytest.raises(MetricsInputError, match="`is_member` must contain at least 2 members"):
        calibrated_accuracy([0.1, 0.2, 0.3, 0.4], is_member, seed=0)
    with pytest.raises(MetricsInputError, match=message):
        calibrated_accuracy([0.1, 0.2, 0.3, 0.4], is_member, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed_names_the_argument(seed: object) -> None:
    with pytest.raises(MetricsInputError, match="`seed` must be a non-negative integer"):
        calibrated_accuracy([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], seed=seed)  # type: ignore[arg-type]


def test_invalid_scores_are_rejected() -> None:
    with pytest.raises(MetricsInputError, match="`scores` must be finite, got 1 NaN"):
        calibrated_accuracy([0.1, np.nan, 0.3, 0.4], [0, 0, 1, 1], seed=0)
    with pytest.raises(MetricsInputError, match="`scores` must be 1-D"):
        best_threshold([[0.1, 0.2]], [0, 1])
