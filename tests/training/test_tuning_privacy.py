"""The random-stopping tuner's accounting (Papernot & Steinke 2022, Theorem 2) against closed
forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

from auditml.errors import ConfigError
from auditml.training.tuning_privacy import (
    ORDERS,
    StoppingRule,
    random_stopping_epsilon,
    random_stopping_rdp,
)


@pytest.mark.parametrize("eta", [1.0, 0.0, 2.0])
def test_gaussian_mechanism_matches_the_hand_computed_bound(eta: float) -> None:
    # Gaussian mechanism, sensitivity 1, σ = 2: ε(λ) = λ / (2σ²) = λ/8. With log(1/γ) = 2 the
    # selection term (1+η)[(λ̂−1)/8 + 2/λ̂] is smallest at λ̂ = √(2σ² log(1/γ)) = 4, where it is
    # (1+η)(3/8 + 1/2) = (1+η)·7/8; λ̂ = 4 is on the grid below.
    rule = StoppingRule(eta, math.exp(-2))
    orders = np.array([1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 16.0])
    gamma = math.exp(-2)
    # E[K]: 1/γ (geometric), (1/γ − 1)/log(1/γ) (logarithmic), 2/(γ(1+γ)) (η = 2).
    expected_trials = {1.0: 1 / gamma, 0.0: (1 / gamma - 1) / 2,
                       2.0: 2 / (gamma * (1 + gamma))}[eta]
    expected = orders / 8 + (1 + eta) * 7 / 8 + math.log(expected_trials) / (orders - 1)
    np.testing.assert_allclose(random_stopping_rdp(orders, orders / 8, rule), expected,
                               rtol=1e-12)


def test_pure_dp_limit_is_three_epsilon_for_the_geometric_distribution() -> None:
    # An ε-DP trial is ε-RDP at every order. With log(1/γ) > ε the best λ̂ is the largest, and
    # ε'(λ) = ε + 2ε + 2(log(1/γ) − ε)/λ̂_max + log(1/γ)/(λ − 1) → 3ε (Liu & Talwar 2019).
    epsilon, gamma = 0.5, 0.1
    orders = np.array([2.0, 10.0, 1e3, 1e6])
    got = random_stopping_rdp(orders, np.full(4, epsilon), StoppingRule(1.0, gamma))
    log_inv = math.log(1 / gamma)
    expected = 3 * epsilon + 2 * (log_inv - epsilon) / 1e6 + log_inv / (orders - 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[-1] == pytest.approx(3 * epsilon, abs=1e-5)


@pytest.mark.parametrize("rule", [StoppingRule(1.0, 0.2), StoppingRule(0.0, 0.1),
                                  StoppingRule(2.5, 0.3)])
def test_expected_trials_is_the_mean_of_the_papers_distribution(rule: StoppingRule) -> None:
    k = np.arange(1, 2000)
    # P[K=k] = (1−γ)^k / (γ^−η − 1) · Π_{ℓ<k} (ℓ+η)/(ℓ+1), with η = 0 as its limit 1/(k log(1/γ)).
    if rule.eta == 0:
        pmf = (1 - rule.gamma) ** k / (k * math.log(1 / rule.gamma))
    else:
        products = np.cumprod((np.arange(0, len(k)) + rule.eta) / (np.arange(0, len(k)) + 1))
        pmf = (1 - rule.gamma) ** k / (rule.gamma ** -rule.eta - 1) * products
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert rule.expected_trials == pytest.approx(float((k * pmf).sum()), rel=1e-9)
    draws = [rule.draw(np.random.default_rng([7, i])) for i in range(4000)]
    assert min(draws) >= 1
    assert np.mean(draws) == pytest.approx(rule.expected_trials, rel=0.08)


def test_dp_sgd_tuning_costs_more_than_one_trial_and_less_than_its_naive_composition() -> None:
    schedule = (1.1, 0.1, 300)
    tuned = random_stopping_epsilon([schedule], 1e-5, StoppingRule(1.0, 0.1))
    rdp = compute_rdp(q=0.1, noise_multiplier=1.1, steps=300, orders=list(ORDERS))
    one, _ = get_privacy_spent(orders=ORDERS, rdp=rdp, delta=1e-5)
    assert tuned.trial_epsilon == pytest.approx(one)
    # E[K] = 10 trials; composing 10 runs would cost far more than the theorem's bound.
    ten, _ = get_privacy_spent(orders=ORDERS, rdp=10 * np.asarray(rdp), delta=1e-5)
    assert one < tuned.tuned_epsilon < ten
    assert tuned.expected_trials == pytest.approx(10.0)


def test_stopping_rules_parse_and_refuse() -> None:
    assert StoppingRule.parse("geometric:0.1") == StoppingRule(1.0, 0.1)
    assert StoppingRule.parse("logarithmic:0.2") == StoppingRule(0.0, 0.2)
    assert StoppingRule.parse("negative_binomial:0.5:0.3") == StoppingRule(0.5, 0.3)
    for text in ("geometric", "geometric:1.5", "geometric:x", "poisson:3", "negative_binomial:1",
                 "negative_binomial:-0.5:0.1"):
        with pytest.raises(ConfigError):
            StoppingRule.parse(text)
