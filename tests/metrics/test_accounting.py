"""The memoised accountant ε against Opacus' own accountants, and the shuffled-batch ε lower
bound against exact Gaussian curves and a Monte Carlo of its pair."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.optimize import brentq
from scipy.special import logsumexp
from scipy.stats import norm

from auditml.metrics.dp.accounting import (
    PRVGridTooLarge,
    _opacus_discrete_prv,
    accountant_epsilon,
    prv_composition,
    prv_epsilon_lower,
    prv_grid_spacing,
    rdp_history_epsilon,
    shuffle_delta_lower_bound,
    shuffle_epsilon_lower_bound,
)
from auditml.metrics.roc import MetricsInputError


@pytest.mark.parametrize("history", [
    [(2.0, 0.5, 6)],
    [(1.1, 0.01, 500), (0.8, 0.02, 30)],
    [(5.0, 1.0, 3), (5.0, 1.0, 3)],
])
def test_the_memoised_rdp_epsilon_is_opacus_bit_for_bit(
    history: list[tuple[float, float, int]]
) -> None:
    accountant = RDPAccountant()
    accountant.history = list(history)
    expected = accountant.get_epsilon(delta=1e-5)
    assert rdp_history_epsilon(history, 1e-5) == expected
    assert rdp_history_epsilon(history, 1e-5) == expected  # the second call reads the memo
    assert accountant_epsilon(history, mechanism="rdp", delta=1e-5) == expected


def test_a_prv_history_is_opacus_prv_accountant() -> None:
    accountant = PRVAccountant()
    accountant.history = [(1.1, 0.01, 500)]
    expected = accountant.get_epsilon(delta=1e-5)
    assert accountant_epsilon(accountant.history, mechanism="prv", delta=1e-5) == expected


def test_opacus_private_prv_api_is_what_the_wrapper_expects() -> None:
    # The one use of Opacus' private API (`PRVAccountant._get_dprv`, its `_get_domain` hook and
    # the DiscretePRV it returns): same names and keywords, the grid it is given, and the
    # interval it returns brackets the exact ε of a one-step Gaussian (sample rate 1: N(1, σ²)
    # against N(0, σ²)), a closed form.
    import inspect

    names = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert names(PRVAccountant._get_dprv) == ["self", "eps_error", "delta_error"]
    assert names(PRVAccountant._get_domain) == [
        "self", "prvs", "num_self_compositions", "eps_error", "delta_error"]
    for sigma, delta in ((0.8, 1e-5), (2.0, 1e-3), (5.0, 1e-6)):
        exact = _gaussian_epsilon(delta, sigma)
        composition = prv_composition([(sigma, 1.0, 1)], delta_error=delta / 1000)
        lower, estimate, upper = composition.epsilon_interval(delta)
        assert all(isinstance(value, float) for value in (lower, estimate, upper))
        assert lower <= exact <= upper and upper - lower <= 0.05, (sigma, lower, exact, upper)
        assert prv_epsilon_lower([(sigma, 1.0, 1)], delta=delta) == lower
    # The half-width given is the grid used (Opacus calls `_get_domain` to size it).
    spacing = prv_grid_spacing(1, delta_error=1e-8)
    for half_width in (6.0, 9.0):
        discrete = _opacus_discrete_prv([(1.0, 1.0, 1)], eps_error=0.01, delta_error=1e-8,
                                        half_width=half_width)
        domain = discrete.domain
        assert len(discrete.pmf) == domain.size
        assert abs(domain.t_min + half_width) <= 2 * spacing
        assert abs(domain.t_max - half_width) <= 2 * spacing


@pytest.mark.parametrize("history", [[(1.1, 0.01, 500)], [(0.9, 0.05, 40), (1.5, 0.1, 25)]])
def test_the_sized_prv_composition_is_opacus_prv_accountant_bit_for_bit(
    history: list[tuple[float, float, int]]
) -> None:
    accountant = PRVAccountant()
    accountant.history = list(history)
    for delta in (1e-5, 1e-3):
        expected = accountant.get_epsilon(delta=delta)
        composition = prv_composition(history, delta_error=delta / 1000)
        assert composition.epsilon_interval(delta)[2] == expected


def test_a_prv_grid_too_large_is_refused_before_it_is_built() -> None:
    with pytest.raises(PRVGridTooLarge) as raised:
        prv_composition([(0.05, 0.1, 20)], delta_error=1e-8, max_grid_points=1e6)
    assert raised.value.points > 1e6


# Shuffled fixed-size batches: the certified lower bound of Chua et al. (2024).

def _gaussian_delta(epsilon: np.ndarray, scale: float) -> np.ndarray:
    """The exact δ(ε) of N(1, s²) against N(0, s²): the Gaussian mechanism, sensitivity 1."""
    return norm.cdf(0.5 / scale - epsilon * scale) - np.exp(
        epsilon + norm.logcdf(-0.5 / scale - epsilon * scale)
    )


def _gaussian_epsilon(delta: float, scale: float) -> float:
    return float(brentq(lambda e: _gaussian_delta(np.array(e), scale) - delta, 0.0, 1e4,
                        xtol=1e-13))


@pytest.mark.parametrize("reshuffle", [True, False])
@pytest.mark.parametrize("epochs", [1, 4, 10])
@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0])
def test_one_step_per_epoch_is_the_gaussian_mechanism_from_below(
    sigma: float, epochs: int, reshuffle: bool
) -> None:
    # T = 1: MoG(2) vs MoG(1) is N(2, σ²) vs N(1, σ²), and E epochs (either way) are the
    # Gaussian mechanism at s = σ/√E, whose δ(ε) and ε(δ) are exact.
    scale = sigma / math.sqrt(epochs)
    epsilons = np.array([0.0] + [_gaussian_epsilon(d, scale) for d in (1e-1, 1e-3, 1e-6)])
    exact = _gaussian_delta(epsilons, scale)
    bound = shuffle_delta_lower_bound(
        epsilons, noise_multiplier=sigma, steps_per_epoch=1, epochs=epochs, reshuffle=reshuffle
    )
    assert np.all(bound <= exact + 1e-12)
    assert np.all(bound >= 0.98 * exact)
    for delta in (1e-3, 1e-5):
        truth = _gaussian_epsilon(delta, scale)
        epsilon = shuffle_epsilon_lower_bound(
            noise_multiplier=sigma, steps_per_epoch=1, epochs=epochs, delta=delta,
            reshuffle=reshuffle,
        )
        assert 0.98 * truth <= epsilon <= truth + 1e-9


def _monte_carlo_losses(rng: np.random.Generator, sigma: float, steps: int, size: int
                        ) -> np.ndarray:
    """Privacy losses log(dP/dQ)(x) of x ~ P = MoG(2), Q = MoG(1), one epoch of T = steps:
    dMoG(μ)/dN(0, σ²I)(x) = (1/T) Σ_t exp((μ x_t − μ²/2)/σ²), so
    L(x) = logsumexp_t((2x_t − 2)/σ²) − logsumexp_t((x_t − 1/2)/σ²)."""
    x = sigma * rng.standard_normal((size, steps))
    x[np.arange(size), rng.integers(steps, size=size)] += 2.0
    return logsumexp((2.0 * x - 2.0) / sigma**2, axis=1) - logsumexp(
        (x - 0.5) / sigma**2, axis=1
    )


@pytest.mark.parametrize("epochs", [1, 3])
def test_the_bound_never_exceeds_a_monte_carlo_of_the_full_pair(epochs: int) -> None:
    # δ(ε) = E_P[(1 − e^(ε − L))₊] for the full T-dimensional pair, E reshuffled epochs adding
    # independent losses; a lower bound may not exceed it (4 standard errors of slack).
    sigma, steps, size = 0.8, 8, 200_000
    rng = np.random.default_rng(20240311)
    losses = sum(_monte_carlo_losses(rng, sigma, steps, size) for _ in range(epochs))
    epsilons = np.array([0.0, 0.5, 1.0, 2.0, 3.0])
    bound = shuffle_delta_lower_bound(
        epsilons, noise_multiplier=sigma, steps_per_epoch=steps, epochs=epochs
    )
    for epsilon, value in zip(epsilons, bound, strict=True):
        samples = np.maximum(-np.expm1(epsilon - losses), 0.0)
        mean, error = samples.mean(), samples.std(ddof=1) / math.sqrt(size)
        assert value <= mean + 4 * error
        assert value > 0.5 * mean  # and it is not vacuous


@pytest.mark.parametrize(("steps", "epochs"), [(1, 4), (10, 9), (100, 3)])
def test_one_permutation_for_all_epochs_is_one_epoch_at_sigma_over_root_e(
    steps: int, epochs: int
) -> None:
    epsilons = np.array([0.0, 0.5, 1.0, 2.0, 4.0])
    sigma = 0.9
    persistent = shuffle_delta_lower_bound(
        epsilons, noise_multiplier=sigma, steps_per_epoch=steps, epochs=epochs, reshuffle=False
    )
    single = shuffle_delta_lower_bound(
        epsilons, noise_multiplier=sigma / math.sqrt(epochs), steps_per_epoch=steps, epochs=1
    )
    assert np.array_equal(persistent, single)
    assert shuffle_epsilon_lower_bound(
        noise_multiplier=sigma, steps_per_epoch=steps, epochs=epochs, delta=1e-5,
        reshuffle=False,
    ) == shuffle_epsilon_lower_bound(
        noise_multiplier=sigma / math.sqrt(epochs), steps_per_epoch=steps, epochs=1, delta=1e-5
    )


def test_the_epsilon_bound_falls_with_the_noise_and_grows_with_the_epochs() -> None:
    def bound(sigma: float, epochs: int) -> float:
        return shuffle_epsilon_lower_bound(
            noise_multiplier=sigma, steps_per_epoch=10, epochs=epochs, delta=1e-5
        )

    by_noise = [bound(sigma, 3) for sigma in (0.6, 0.8, 1.0, 1.5, 2.0)]
    assert all(a > b > 0 for a, b in itertools.pairwise(by_noise))
    by_epochs = [bound(1.0, epochs) for epochs in (1, 2, 5, 10)]
    assert all(0 < a < b for a, b in itertools.pairwise(by_epochs))
    # Nothing to certify: δ_lower(0) ≤ δ gives 0.
    assert shuffle_epsilon_lower_bound(
        noise_multiplier=50.0, steps_per_epoch=100, epochs=1, delta=0.5
    ) == 0.0


_GOOD = {"noise_multiplier": 1.0, "steps_per_epoch": 10, "epochs": 2}


@pytest.mark.parametrize(("changes", "message"), [
    ({"noise_multiplier": -1}, "`noise_multiplier` must be a positive number, got -1."),
    ({"noise_multiplier": 0.0}, "`noise_multiplier` must be a positive number, got 0.0."),
    ({"noise_multiplier": math.inf}, "`noise_multiplier` must be a positive number, got inf."),
    ({"noise_multiplier": True}, "`noise_multiplier` must be a positive number, got True."),
    ({"noise_multiplier": "1"}, "`noise_multiplier` must be a positive number, got '1'."),
    ({"steps_per_epoch": 0}, "`steps_per_epoch` must be a positive integer, got 0."),
    ({"steps_per_epoch": 10.0}, "`steps_per_epoch` must be a positive integer, got 10.0."),
    ({"steps_per_epoch": True}, "`steps_per_epoch` must be a positive integer, got True."),
    ({"epochs": -3}, "`epochs` must be a positive integer, got -3."),
    ({"epochs": False}, "`epochs` must be a positive integer, got False."),
    ({"reshuffle": 1}, "`reshuffle` must be True or False, got 1."),
    ({"delta": 0.0}, "`delta` must be in (0, 1), got 0.0."),
    ({"delta": 1}, "`delta` must be in (0, 1), got 1."),
    ({"delta": math.nan}, "`delta` must be in (0, 1), got nan."),
    ({"delta": True}, "`delta` must be in (0, 1), got True."),
    ({"epsilons": [0.5, -1.0]}, "`epsilons` must be finite non-negative numbers, got [0.5, -1.0]."),
    ({"epsilons": math.nan}, "`epsilons` must be finite non-negative numbers, got nan."),
])
def test_bad_shuffle_arguments_are_named(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, Any] = {**_GOOD, **changes}
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        if "epsilons" in arguments:
            shuffle_delta_lower_bound(arguments.pop("epsilons"), **arguments)
        else:
            shuffle_epsilon_lower_bound(**{"delta": 1e-5, **arguments})


@pytest.mark.parametrize(("first", "second"), [(2000, 3000), (100, 7000)])
def test_the_fft_round_off_bound_covers_the_round_off(first: int, second: int) -> None:
    # The ℓ1 bound that _convolved subtracts, against a long-double direct convolution.
    from auditml.metrics.dp.accounting import _convolved

    rng = np.random.default_rng(7)
    a = np.exp(-0.5 * ((np.arange(first) - first / 2) / (first / 8)) ** 2)
    a *= rng.uniform(0.5, 1.5, first)
    b = rng.exponential(size=second) ** 3
    a, b = a / a.sum(), b / b.sum()
    weights, offset, bound = _convolved((a, 0, 0.0), (b, 0, 0.0))
    exact = np.convolve(a.astype(np.longdouble), b.astype(np.longdouble))
    kept = exact[offset:offset + len(weights)].astype(np.float64)
    assert 0 < np.abs(kept - weights).sum() <= bound
    assert exact.sum() - kept.sum() <= 2.01e-12  # the two cut ends: at most 1e-12 each
