"""The mechanism check: its upper bound on σ covers the truth at its confidence (also when the
real examples interfere, adaptively), it is tight without interference; its lower bound on the
sampling rate covers the truth; its lower bound on the sensitivity covers the truth (by
simulation: it is asymptotic) and finds a canary that escaped clipping; and the ε they imply is
a lower bound on the true ε of the Gaussian mechanism (closed form) that is close to the
truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from auditml.metrics import MetricsInputError
from auditml.metrics.dp.accounting import accountant_epsilon, prv_epsilon_lower
from auditml.metrics.dp.mechanism_check import (
    noise_upper_bound,
    sample_rate_lower_bound,
    sensitivity_lower_bound,
)
from auditml.metrics.dp.one_run_fdp_family import mechanism_epsilon_lower_bound

TRIALS = 400


def _misses(sigma: float, *, interference: str, confidence: float, seed: int = 0) -> float:
    """Share of trials in which the bound is below the true σ (steps × coordinates = 40 × 5)."""
    rng = np.random.default_rng(seed)
    misses = 0
    for _ in range(TRIALS):
        z = np.empty((40, 5))
        previous = np.zeros(5)
        for t in range(40):
            # The adaptive interference depends on the past; it cannot cancel the fresh noise.
            g = np.zeros(5) if interference == "none" else -0.5 * previous
            z[t] = g + sigma * rng.normal(size=5)
            previous = z[t]
        misses += noise_upper_bound(z, confidence=confidence).upper < sigma
    return misses / TRIALS


@pytest.mark.parametrize("interference", ["none", "adaptive"])
def test_the_bound_covers_the_true_noise_at_its_confidence(interference: str) -> None:
    # Binomial(400, 0.05) exceeds 0.075 (30 misses) with probability about 0.7 %.
    assert _misses(2.0, interference=interference, confidence=0.95) <= 0.075


def test_without_interference_the_bound_is_exact() -> None:
    # Tight: it misses about 5 % of the time, not far less (a bound that is never wrong because
    # it is loose would pass the test above).
    assert 0.025 <= _misses(1.5, interference="none", confidence=0.95, seed=1) <= 0.075


def test_the_bound_and_the_estimate_are_the_chi_squared_ones() -> None:
    z = np.array([[1.0, -2.0], [0.5, 3.0]])
    bound = noise_upper_bound(z, confidence=0.9)
    total = 1 + 4 + 0.25 + 9
    assert bound.estimate == pytest.approx(math.sqrt(total / 4))
    assert bound.upper == pytest.approx(math.sqrt(total / stats.chi2.ppf(0.1, 4)))
    assert bound.observations == 4 and bound.upper > bound.estimate


@pytest.mark.parametrize(
    ("observations", "confidence"),
    [([], 0.95), ([1.0, np.nan], 0.95), ([1.0], 0.4), ([1.0], 1.0), ([1.0], True)],
)
def test_bad_input_is_refused(observations: list[float], confidence: object) -> None:
    with pytest.raises(MetricsInputError):
        noise_upper_bound(observations, confidence=confidence)  # type: ignore[arg-type]


def _gaussian_epsilon(sigma: float, delta: float) -> float:
    """The exact ε(δ) of one Gaussian mechanism of sensitivity 1 (Balle and Wang 2018)."""
    def excess(epsilon: float) -> float:
        return (stats.norm.cdf(-epsilon * sigma + 1 / (2 * sigma))
                - math.exp(epsilon) * stats.norm.cdf(-epsilon * sigma - 1 / (2 * sigma)) - delta)
    return float(optimize.brentq(excess, 0.0, 50.0))


@pytest.mark.parametrize("sigma", [0.8, 2.0])
def test_the_prv_lower_end_is_below_the_gaussian_truth_and_close(sigma: float) -> None:
    truth = _gaussian_epsilon(sigma, 1e-5)
    lower = prv_epsilon_lower([(sigma, 1.0, 1)], delta=1e-5)
    assert truth - 0.05 < lower <= truth


def test_the_epsilon_at_the_measured_noise_falls_as_the_noise_grows() -> None:
    history = [(1.0, 0.05, 100)]
    at = {scale: mechanism_epsilon_lower_bound(history, noise_scale=scale, delta=1e-5)
          for scale in (0.5, 1.0, 1.2)}
    assert at[0.5] > at[1.0] > at[1.2] > 0
    # Below the accountant's certified ε (an upper bound on the truth), and close to it.
    certified = accountant_epsilon(history, mechanism="prv", delta=1e-5)
    assert certified - 0.1 < at[1.0] <= certified
    # A scale far below the floor is raised to it: still finite, and the largest of all.
    assert math.isfinite(mechanism_epsilon_lower_bound(history, noise_scale=1e-4, delta=1e-5))
    # A measured rate replaces the claimed one: a higher rate, a larger ε.
    faster = mechanism_epsilon_lower_bound(history, noise_scale=1.0, sample_rate=0.1, delta=1e-5)
    assert faster > at[1.0]
    assert mechanism_epsilon_lower_bound(
        history, noise_scale=1.0, sample_rate=0.05, delta=1e-5) == pytest.approx(at[1.0])


@pytest.mark.parametrize(("scale", "rate"), [(0.0, None), (-1.0, None), (float("nan"), None),
                                             ("1", None), (1.0, 0.0), (1.0, 1.5)])
def test_a_bad_scale_or_rate_is_refused(scale: object, rate: object) -> None:
    with pytest.raises(MetricsInputError):
        mechanism_epsilon_lower_bound([(1.0, 0.05, 10)], noise_scale=scale,  # type: ignore[arg-type]
                                      sample_rate=rate, delta=1e-5)  # type: ignore[arg-type]


def test_the_rate_bound_covers_the_true_rate_at_its_confidence() -> None:
    rng = np.random.default_rng(3)
    misses = sum(
        sample_rate_lower_bound(rng.binomial(50, 0.1, 20), dataset_size=50,
                                confidence=0.95).lower > 0.1
        for _ in range(1000)
    )
    # Clopper-Pearson is exact, and conservative on a discrete law: about 4 % here, not 0.
    assert 10 <= misses <= 65


def test_the_rate_bound_is_the_clopper_pearson_one() -> None:
    bound = sample_rate_lower_bound(np.array([3, 7, 0]), dataset_size=20, confidence=0.9)
    assert bound.estimate == pytest.approx(10 / 60)
    assert bound.lower == pytest.approx(stats.beta.ppf(0.1, 10, 51))
    assert bound.batches == 3 and bound.dataset_size == 20
    assert sample_rate_lower_bound(np.zeros(4, int), dataset_size=5).lower == 0.0


@pytest.mark.parametrize(
    ("sizes", "dataset_size"),
    [([], 10), ([1.5], 10), ([-1], 10), ([11], 10), ([1], 0), ([1], True), ([[1]], 10)],
)
def test_bad_batches_are_refused(sizes: list[float], dataset_size: object) -> None:
    with pytest.raises(MetricsInputError):
        sample_rate_lower_bound(np.asarray(sizes), dataset_size=dataset_size)  # type: ignore[arg-type]


def _sensitivity_trial(rng: np.random.Generator, spread: float, *, rate: float = 0.05,
                       sigma: float = 1.0, steps: int = 300, canaries: int = 20):
    """One simulated run: each sampled canary adds ``spread`` (units of C) to its coordinate;
    the real examples interfere adaptively (a pull towards minus the last observation)."""
    sampled = rng.random((steps, canaries)) < rate
    o = np.empty((steps, canaries))
    previous = np.zeros(canaries)
    for t in range(steps):
        o[t] = -0.5 * previous + sigma * rng.normal(size=canaries) + spread * sampled[t]
        previous = o[t]
    return sensitivity_lower_bound(o, sampled, sample_rate=rate, confidence=0.95)


def test_the_sensitivity_bound_covers_the_truth_at_its_confidence() -> None:
    rng = np.random.default_rng(5)
    misses = sum(_sensitivity_trial(rng, 1.0).lower > 1.0 for _ in range(TRIALS))
    # Asymptotic but accurate at 6000 (step, canary) pairs: about 5 %, neither far above (the
    # check would flag correct runs) nor far below (a bound loose enough to see nothing).
    assert 0.02 * TRIALS <= misses <= 0.08 * TRIALS


def test_the_sensitivity_bound_holds_with_a_handful_of_sampled_pairs() -> None:
    # One canary over 100 steps: about 5 sampled pairs. The normal quantile misses about 11 % of
    # the time here; Student's t keeps the level.
    rng = np.random.default_rng(7)
    trials = [_sensitivity_trial(rng, 1.0, steps=100, canaries=1) for _ in range(1000)]
    misses = sum(bound.lower > 1.0 for bound in trials)
    assert 20 <= misses <= 75


def test_a_canary_that_escaped_clipping_is_found() -> None:
    rng = np.random.default_rng(6)
    bounds = [_sensitivity_trial(rng, 3.0) for _ in range(20)]
    assert all(bound.lower > 1.0 and bound.p_value < 0.01 for bound in bounds)
    assert np.mean([bound.estimate for bound in bounds]) == pytest.approx(3.0, abs=0.2)
    # A canary that moves the sum *less* than C (clipping after the sum scales it down) only
    # lowers the statistic: nothing to flag.
    small = _sensitivity_trial(rng, 0.2)
    assert small.lower < 1.0 and small.p_value > 0.5


def test_the_sensitivity_estimate_is_the_martingale_one() -> None:
    o = np.array([[2.0, 0.5], [-1.0, 3.0], [0.0, 1.0]])
    s = np.array([[True, False], [False, True], [False, False]])
    bound = sensitivity_lower_bound(o, s, sample_rate=0.25, confidence=0.9)
    w = s - 0.25
    estimate = (w * o).sum() / (w * s).sum()
    spread = math.sqrt((w**2 * (o - estimate * s) ** 2).sum()) / (w * s).sum()
    assert bound.estimate == pytest.approx(estimate)
    assert bound.lower == pytest.approx(estimate - stats.t.ppf(0.9, 1) * spread)
    statistic = (w * (o - s)).sum() / math.sqrt((w**2 * (o - s) ** 2).sum())
    assert bound.p_value == pytest.approx(stats.t.sf(statistic, 1))
    assert (bound.sampled, bound.observations) == (2, 6)
    never = sensitivity_lower_bound(o, np.zeros_like(s), sample_rate=0.25)
    assert never.sampled == 0 and never.lower == 0.0 and never.p_value == 1.0


@pytest.mark.parametrize(
    ("observations", "sampled", "rate"),
    [([[1.0]], [[1]], 0.1), ([[1.0]], [[True, False]], 0.1), ([[np.inf]], [[True]], 0.1),
     ([[1.0]], [[True]], 1.0), ([[1.0]], [[True]], 0.0), ([[1.0]], [[True]], True),
     ([1.0], [True], 0.1)],
)
def test_bad_sensitivity_input_is_refused(observations: list, sampled: list, rate: object) -> None:
    with pytest.raises(MetricsInputError):
        sensitivity_lower_bound(np.asarray(observations), np.asarray(sampled),
                                sample_rate=rate)  # type: ignore[arg-type]
