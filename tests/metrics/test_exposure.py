"""Exposure of secret canaries (Carlini et al. 2019) and extraction rate, with exact intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import (
    ExposureEstimate,
    MetricsInputError,
    estimated_exposure,
    exposure,
    extraction_rate,
)


def test_exposure_closed_forms() -> None:
    assert exposure(1, 10**6) == pytest.approx(math.log2(10**6))
    assert exposure(10**6, 10**6) == 0.0
    assert exposure(2, 8) == pytest.approx(2.0)
    assert exposure(2.5, 10) == pytest.approx(2.0)
    # A space too large for a float's integers: 128^20 candidates.
    assert exposure(1, 128**20) == pytest.approx(140.0)


def exact_rank(secret: float, whole_space: np.ndarray) -> int:
    """The paper's rank, ties against the secret: candidates scoring at least as high."""
    return sum(1 for score in whole_space if score >= secret)


def test_estimated_exposure_is_exact_on_the_whole_space() -> None:
    rng = np.random.default_rng(0)
    space = rng.normal(size=1000)
    space[10:20] = space[5]  # ties with the secret count against it
    for secret_index in (0, 5, 17, 999):
        secret = float(space[secret_index])
        result = estimated_exposure(secret, space, 1000)
        expected = exposure(exact_rank(secret, space), 1000)
        assert result.exact
        assert result.exposure == result.low == result.high == pytest.approx(expected)
        assert result.rank == exact_rank(secret, space)
    # The top candidate: the maximum exposure.
    top = estimated_exposure(float(space.max()), space, 1000)
    assert top.exposure == pytest.approx(math.log2(1000))


def test_estimated_exposure_from_a_sample() -> None:
    scores = np.arange(100, dtype=float)  # 100 sampled candidates of a space of 10^6
    # 10 of them score >= 90: fraction 0.1, rank 10^5.
    result = estimated_exposure(90.0, scores, 10**6)
    assert not result.exact
    assert result.fraction == 0.1
    assert result.rank == pytest.approx(10**5)
    assert result.exposure == pytest.approx(math.log2(10))
    low_fraction, high_fraction = stats.binomtest(10, 100).proportion_ci(0.95, method="exact")
    assert result.low == pytest.approx(-math.log2(high_fraction))
    assert result.high == pytest.approx(-math.log2(low_fraction))
    # None reaches the secret: rank 1 at best, and the sample certifies about log2(n).
    beyond = estimated_exposure(1000.0, scores, 10**6)
    assert beyond.rank == 1.0 and beyond.high == pytest.approx(math.log2(10**6))
    assert beyond.exposure == pytest.approx(math.log2(10**6))
    assert beyond.low == pytest.approx(-math.log2(1 - 0.025 ** (1 / 100)))
    assert 4 < beyond.low < math.log2(100)


def test_estimated_exposure_interval_covers_the_truth() -> None:
    """Seeded simulation: a space of 20,000 candidates with known scores, the secret at a fixed
    rank; draw 200 candidates uniformly (with replacement) 400 times. The 90 % interval must
    cover the true exposure at least ~90 % of the time (Clopper-Pearson is conservative)."""
    rng = np.random.default_rng(1)
    size = 20_000
    space = rng.normal(size=size)
    order = np.sort(space)[::-1]
    secret = float(order[299])  # rank 300
    truth = exposure(300, size)
    trials, covered, estimates = 400, 0, []
    for _ in range(trials):
        sample = space[rng.integers(0, size, size=200)]
        result = estimated_exposure(secret, sample, size, confidence=0.9)
        covered += result.low <= truth <= result.high
        estimates.append(result.exposure)
    # Binomial(400, 0.9) is below 345 with probability ~1e-3.
    assert covered >= 345, covered
    assert covered < trials  # the interval is not trivially everything
    assert abs(np.median(estimates) - truth) < 0.5


def test_estimated_exposure_refusals() -> None:
    scores = np.arange(10, dtype=float)
    cases = [
        (lambda: estimated_exposure(1.0, scores, 5), "`space_size`"),
        (lambda: estimated_exposure(100.0, scores, 10), "`secret_score`"),
        (lambda: estimated_exposure(math.nan, scores, 100), "`secret_score`"),
        (lambda: estimated_exposure(1.0, [], 100), "`candidate_scores`"),
        (lambda: estimated_exposure(1.0, [1.0, math.inf], 100), "`candidate_scores`"),
        (lambda: estimated_exposure(1.0, scores, 100, confidence=1.0), "`confidence`"),
        (lambda: estimated_exposure(1.0, scores, 0), "`space_size`"),
        (lambda: estimated_exposure(1.0, scores, 100.0), "`space_size`"),  # type: ignore[arg-type]
        (lambda: exposure(0.5, 100), "`rank`"),
        (lambda: exposure(101, 100), "`rank`"),
        (lambda: exposure(True, 100), "`rank`"),
        (lambda: exposure(1, True), "`space_size`"),
    ]
    for call, name in cases:
        with pytest.raises(MetricsInputError, match=name) as error:
            call()
        assert "\n" not in str(error.value)


def test_extraction_rate_and_its_clopper_pearson_interval() -> None:
    extracted = [True] * 7 + [False] * 13
    result = extraction_rate(extracted)
    low, high = stats.binomtest(7, 20).proportion_ci(0.95, method="exact")
    assert (result.rate, result.extracted, result.total) == (0.35, 7, 20)
    assert result.low == pytest.approx(low) and result.high == pytest.approx(high)
    none = extraction_rate(np.zeros(10, dtype=int), confidence=0.9)
    assert none.rate == 0.0 and none.low == 0.0
    assert none.high == pytest.approx(1 - 0.05 ** (1 / 10))
    for bad, name in (([], "`extracted`"), ([0, 2], "`extracted`"), ([[True]], "`extracted`")):
        with pytest.raises(MetricsInputError, match=name):
            extraction_rate(bad)
    with pytest.raises(MetricsInputError, match="`confidence`"):
        extraction_rate([True], confidence=math.nan)


def test_results_round_trip_to_dict() -> None:
    result = estimated_exposure(0.0, np.linspace(-1, 1, 11), 100)
    assert ExposureEstimate(**result.to_dict()) == result
    assert extraction_rate([True]).to_dict()["total"] == 1
