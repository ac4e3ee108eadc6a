"""Trade-off curves: closed forms, symmetry, and the claim of an accountant checked against the
exact curve of the mechanism it accounts for (a Gaussian mechanism composed T times is exactly
(√T / σ)-GDP, Dong, Roth and Su 2019, Corollary 3.3)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import (
    MetricsInputError,
    approximate_dp_tradeoff,
    claimed_tradeoff,
    gaussian_tradeoff,
    profile_tradeoff,
)
from auditml.metrics.dp.tradeoff import CLAIM_DELTAS

ALPHAS = np.concatenate([[0.0], np.logspace(-9, -1, 60), np.linspace(0.1, 1.0, 61)])


def closed_form_approximate_dp(alpha: np.ndarray, epsilon: float, delta: float) -> np.ndarray:
    """Kairouz et al.'s f_{ε,δ}, written out for each α."""
    return np.array(
        [
            max(0.0, 1 - delta - math.exp(epsilon) * a, math.exp(-epsilon) * (1 - delta - a))
            for a in alpha
        ]
    )


@pytest.mark.parametrize(("epsilon", "delta"), [(0.0, 0.0), (1.0, 0.0), (2.5, 1e-5), (0.3, 0.2)])
def test_single_pair_is_the_closed_form(epsilon: float, delta: float) -> None:
    curve = approximate_dp_tradeoff(epsilon, delta)
    expected = closed_form_approximate_dp(ALPHAS, epsilon, delta)
    np.testing.assert_allclose(curve(ALPHAS), expected, rtol=1e-12, atol=1e-15)


def test_gaussian_is_the_closed_form_and_symmetric() -> None:
    mu = 1.3
    curve = gaussian_tradeoff(mu)
    expected = stats.norm.cdf(stats.norm.ppf(1 - ALPHAS) - mu)
    np.testing.assert_allclose(curve(ALPHAS), expected, rtol=1e-12, atol=1e-300)
    # Symmetric: f is its own inverse, so f(f(α)) = α.
    inner = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(curve(curve(inner)), inner, rtol=1e-9)
    np.testing.assert_allclose(gaussian_tradeoff(0.0)(ALPHAS), 1 - ALPHAS, atol=1e-15)


@pytest.mark.parametrize(
    "curve",
    [gaussian_tradeoff(0.7), approximate_dp_tradeoff(1.0, 1e-3)],
    ids=["gaussian", "approximate_dp"],
)
def test_blow_up_inverse_is_f_of_one_minus_y(curve) -> None:
    np.testing.assert_allclose(curve.blow_up_inverse(ALPHAS), curve(1 - ALPHAS), atol=1e-12)


def test_profile_is_the_maximum_of_its_pairs() -> None:
    epsilons, deltas = [3.0, 1.0, 0.2], [1e-6, 1e-2, 0.3]
    profile = profile_tradeoff(epsilons, deltas)
    expected = np.max(
        [closed_form_approximate_dp(ALPHAS, e, d) for e, d in zip(epsilons, deltas, strict=True)],
        axis=0,
    )
    np.testing.assert_allclose(profile(ALPHAS), expected, rtol=1e-12, atol=1e-15)
    # A valid profile is symmetric too, as DP's definition is: f(f(α)) <= α, equal off the flat.
    assert np.all(profile(profile(ALPHAS)) <= ALPHAS + 1e-12)


@pytest.mark.parametrize("mechanism", ["prv", "rdp"])
@pytest.mark.parametrize(("sigma", "steps"), [(2.0, 1), (4.0, 16)])
def test_claim_of_composed_gaussian_is_implied_by_its_exact_curve(
    mechanism: str, sigma: float, steps: int
) -> None:
    """Sample rate 1: the mechanism is exactly (√T/σ)-GDP, so a sound claim lies below G_μ
    everywhere; the PRV claim is also tight (within 0.01), RDP's within 0.2."""
    claim = claimed_tradeoff([(sigma, 1.0, steps)], mechanism=mechanism)
    exact = gaussian_tradeoff(math.sqrt(steps) / sigma)
    gap = exact(ALPHAS) - claim(ALPHAS)
    assert gap.min() >= -1e-12
    assert gap.max() <= (0.01 if mechanism == "prv" else 0.2)


def test_claim_reads_an_opacus_accountant_and_matches_its_epsilon() -> None:
    from opacus.accountants import PRVAccountant, RDPAccountant

    for accountant in (PRVAccountant(), RDPAccountant()):
        for _ in range(300):
            accountant.step(noise_multiplier=1.1, sample_rate=0.02)
        claim = claimed_tradeoff(accountant)
        assert claim.source == f"{accountant.mechanism()} accountant, 300 steps"
        index = int(np.argmin(np.abs(np.log(np.array(claim.deltas) / 1e-5))))
        delta = claim.deltas[index]
        # The same certified ε as the accountant's own get_epsilon, up to its error setting.
        assert claim.epsilons[index] == pytest.approx(accountant.get_epsilon(delta), abs=0.03)
        assert accountant.history == [(1.1, 0.02, 300)]  # read, not modified


def test_claim_to_dict_is_json() -> None:
    claim = claimed_tradeoff([(1.0, 0.01, 100)], mechanism="rdp")
    record = json.loads(json.dumps(claim.to_dict()))
    assert record["kind"] == "profile"
    assert len(record["epsilons"]) == len(record["deltas"]) == len(CLAIM_DELTAS)
    assert all(math.isfinite(value) and value >= 0 for value in record["epsilons"])


@pytest.mark.parametrize(
    ("arguments", "keywords", "message"),
    [
        (([],), {"mechanism": "prv"}, "non-empty list"),
        (([(1.0, 0.1)],), {"mechanism": "prv"}, r"history\[0\]"),
        (([(0.0, 0.1, 10)],), {"mechanism": "rdp"}, "noise_multiplier"),
        (([(1.0, 1.5, 10)],), {"mechanism": "rdp"}, "sample_rate"),
        (([(1.0, 0.1, 0)],), {"mechanism": "rdp"}, "steps must be a positive integer"),
        (([(1.0, 0.1, 10)],), {"mechanism": "gdp"}, "must be one of 'prv', 'rdp'"),
        ((object(),), {}, "must be one of 'prv', 'rdp'"),
        (([(1.0, 0.1, 10)],), {"mechanism": "rdp", "deltas": [0.0]}, "deltas"),
    ],
)
def test_claim_input_errors(arguments, keywords, message: str) -> None:
    with pytest.raises(MetricsInputError, match=message):
        claimed_tradeoff(*arguments, **keywords)


@pytest.mark.filterwarnings("ignore:GDP accounting is experimental")
def test_gdp_accountant_is_refused() -> None:
    from opacus.accountants import GaussianAccountant

    accountant = GaussianAccountant()
    accountant.step(noise_multiplier=1.0, sample_rate=0.01)
    with pytest.raises(MetricsInputError, match="got 'gdp'"):
        claimed_tradeoff(accountant)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian_tradeoff(-1.0), "`mu` must be in"),
        (lambda: gaussian_tradeoff(float("nan")), "`mu` must be in"),
        (lambda: approximate_dp_tradeoff(1.0, 1.0), "`delta` must be in"),
        (lambda: profile_tradeoff([1.0, 2.0], [0.1]), "same length"),
        (lambda: profile_tradeoff([-1.0], [0.1]), "finite and >= 0"),
        (lambda: profile_tradeoff([1.0], [1.0]), r"delta must be in \[0, 1\)"),
    ],
)
def test_curve_input_errors(call, message: str) -> None:
    with pytest.raises(MetricsInputError, match=message):
        call()
