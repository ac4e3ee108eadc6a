"""The DP-SGD-family ε lower bound: valid on a simulated DP-SGD whose noise is known, powerful
against one with half the noise, and consistent with the claim test at scale 1."""

from __future__ import annotations

import numpy as np
import pytest

from auditml.audit.canaries.scores import all_iterates_scores, estimate_noise_multiplier
from auditml.metrics import MetricsInputError, claimed_tradeoff, fdp_claim_test
from auditml.metrics.dp import one_run_fdp_family as fdp_family
from auditml.metrics.dp.accounting import prv_epsilon_lower
from auditml.metrics.dp.gdp import gdp_epsilon
from auditml.metrics.dp.one_run_fdp import _guess_counts
from auditml.metrics.dp.one_run_fdp_family import (
    accountant_epsilon,
    noise_family_epsilon_lower_bound,
)

STEPS, RATE, CANARIES, DELTA = 40, 0.25, 400, 1e-4
SIGMA = 2.0  # the claimed noise; RDP ε at δ=1e-4 is about 3.0


def _counts(
    true_sigma: float, seed: int, steps: int = STEPS, rate: float = RATE, canaries: int = CANARIES
) -> tuple[int, int]:
    """Correct guesses (IN on the top 10 %, OUT on the bottom 10 %) of an idealised all-iterates
    audit of DP-SGD with noise ``true_sigma``: each canary's observations are independent."""
    rng = np.random.default_rng(seed)
    included = rng.random(canaries) < 0.5
    sampled = (rng.random((steps, canaries)) < rate) & included
    observations = sampled + rng.normal(0.0, true_sigma, (steps, canaries))
    noise = estimate_noise_multiplier(observations, clip=1.0)
    scores = all_iterates_scores(observations, noise_multiplier=noise, sample_rate=rate, clip=1.0)
    guesses = [(canaries // 10, canaries // 10)]
    return _guess_counts(scores, included, guesses, seed)[0], 2 * (canaries // 10)


def _bound(correct: int, guesses: int, confidence: float = 0.95) -> float:
    return noise_family_epsilon_lower_bound(
        correct, guesses, CANARIES, [(SIGMA, RATE, STEPS)], mechanism="rdp", delta=DELTA,
        confidence=confidence,
    ).epsilon


def test_the_bound_exceeds_the_true_epsilon_in_at_most_5_percent_of_trials() -> None:
    true_epsilon = accountant_epsilon([(SIGMA, RATE, STEPS)], mechanism="rdp", delta=DELTA)
    bounds = [_bound(*_counts(SIGMA, seed)) for seed in range(20)]
    exceeded = sum(bound > true_epsilon for bound in bounds)
    # At 95 % confidence, P[Binomial(20, 0.05) >= 4] < 0.02: a valid bound passes this with
    # probability over 98 %; the weakened one below (51 % confidence) fails it.
    assert exceeded <= 3, bounds
    assert max(bounds) > 0  # not vacuous: the audit does see the canaries


def test_a_weakened_bound_fails_the_validity_check(monkeypatch: pytest.MonkeyPatch) -> None:
    true_epsilon = accountant_epsilon([(SIGMA, RATE, STEPS)], mechanism="rdp", delta=DELTA)
    # The check above must catch a broken bound. Plant a plausible bug: the ε read off at the
    # reciprocal of the rejected noise scale (a sign error in log s).
    honest = fdp_family.prv_epsilon_lower

    def reciprocal(history: list[tuple[float, float, int]], **kwargs: float) -> float:
        scale = history[0][0] / SIGMA
        return honest([(SIGMA / scale, RATE, STEPS)], **kwargs)

    monkeypatch.setattr(fdp_family, "prv_epsilon_lower", reciprocal)
    bounds = [_bound(*_counts(SIGMA, seed)) for seed in range(20)]
    assert sum(bound > true_epsilon for bound in bounds) > 3, bounds


def test_half_the_noise_is_caught_and_bounded_above_the_claim() -> None:
    # Full-batch DP-SGD, 10 steps, σ = 4 claimed (RDP ε 3.2 at δ=1e-4), σ = 2 run (ε 7.2),
    # 1000 canaries: caught in 10 of 10 seeds when measured. (Subsampled runs are harder: at
    # q = 0.25, 40 steps, 2000 canaries, claimed 2.2 vs true 5.7: 9 of 10.)
    history = [(4.0, 1.0, 10)]
    claimed = accountant_epsilon(history, mechanism="rdp", delta=DELTA)
    curve = claimed_tradeoff(history, mechanism="rdp")
    caught = 0
    for seed in range(6):
        correct, guesses = _counts(2.0, seed, steps=10, rate=1.0, canaries=1000)
        family = noise_family_epsilon_lower_bound(
            correct, guesses, 1000, history, mechanism="rdp", delta=DELTA,
        )
        test = fdp_claim_test(curve, correct, guesses, 1000)
        # Scale 1 is the claim: the family bound reaches the claim's true ε (from below)
        # exactly when the test rejects.
        assert family.claim_rejected == test.violation
        if family.claim_rejected:
            assert family.epsilon >= prv_epsilon_lower(history, delta=DELTA)
        else:
            assert family.epsilon < claimed
        caught += family.claim_rejected
        if family.claim_rejected:
            assert family.noise_scale is not None and family.noise_scale < 1
    assert caught >= 5


@pytest.mark.parametrize("mechanism", ["rdp", "prv"])
def test_the_bound_is_the_rejected_members_true_epsilon_from_below(mechanism: str) -> None:
    # One full-batch step is the Gaussian mechanism, whose true ε is known in closed form. Every
    # guess right rejects a member with little noise; its reported ε must not exceed that
    # member's true ε (the accountant's own ε does: RDP's by about 7 %), and stays close to it.
    sigma = 1.0
    family = noise_family_epsilon_lower_bound(
        200, 200, 200, [(sigma, 1.0, 1)], mechanism=mechanism, delta=DELTA,
    )
    assert family.claim_rejected and family.noise_scale is not None
    true_epsilon = gdp_epsilon(1 / (sigma * family.noise_scale), DELTA)
    assert 0.97 * true_epsilon <= family.epsilon <= true_epsilon


def test_a_correct_run_bounds_a_useful_share_of_its_epsilon() -> None:
    claimed = accountant_epsilon([(SIGMA, RATE, STEPS)], mechanism="rdp", delta=DELTA)
    bounds = [_bound(*_counts(SIGMA, seed)) for seed in range(5)]
    # Measured 0.24 to 0.40 of the claimed 3.78 with 400 canaries (the one-run theorem's price).
    assert all(0.2 * claimed < bound <= claimed for bound in bounds), (bounds, claimed)


def test_nothing_rejected_gives_zero_and_no_scale() -> None:
    family = noise_family_epsilon_lower_bound(
        40, 80, CANARIES, [(SIGMA, RATE, STEPS)], mechanism="rdp", delta=DELTA
    )
    assert family.epsilon == 0.0 and family.noise_scale is None and not family.claim_rejected
    assert "any noise" in family.family


@pytest.mark.parametrize(
    "change",
    [
        {"mechanism": "gdp"},
        {"delta": 0.0},
        {"history": []},
        {"correct": 81},
        {"confidence": 1.5},
    ],
)
def test_bad_input_is_refused(change: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "correct": 60, "guesses": 80, "canaries": CANARIES,
        "history": [(SIGMA, RATE, STEPS)], "mechanism": "rdp", "delta": DELTA,
    }
    arguments.update(change)
    with pytest.raises(MetricsInputError):
        noise_family_epsilon_lower_bound(**arguments)  # type: ignore[arg-type]


def test_the_noise_estimate_reads_the_noise_not_the_canaries() -> None:
    rng = np.random.default_rng(0)
    sampled = rng.random((200, 500)) < 0.3
    observations = 2.0 * (sampled + rng.normal(0.0, 1.5, sampled.shape))  # C = 2, σ = 1.5
    assert estimate_noise_multiplier(observations, clip=2.0) == pytest.approx(1.5, rel=0.05)
