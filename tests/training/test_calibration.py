"""ε and noise calibration in bounded time: equal to Opacus's accountants where they answer,
a one-line refusal where they would fail or run for minutes."""

from __future__ import annotations

import time

import pytest
from opacus.accountants import create_accountant

from auditml.training.calibration import (
    AccountingError,
    calibrate_noise,
    epsilon_spent,
)
from time_limit import finishes_within


def _opacus_epsilon(accountant: str, sigma: float, rate: float, steps: int, delta: float) -> float:
    reference = create_accountant(accountant)
    reference.history = [(sigma, rate, steps)]
    return reference.get_epsilon(delta)


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize(
    ("sigma", "rate", "steps", "delta"),
    [(1.0, 0.1, 20, 1e-5), (0.8, 0.05, 400, 2e-4), (0.5, 1.0, 20, 1e-5), (2.0, 0.01, 1000, 1e-6)],
)
def test_epsilon_equals_opacus_accountant(
    accountant: str, sigma: float, rate: float, steps: int, delta: float
) -> None:
    # The PRV computation is Opacus's, step for step; equality (not approx) shows it.
    mine = epsilon_spent(accountant, sigma, rate, steps, delta)
    assert mine == _opacus_epsilon(accountant, sigma, rate, steps, delta)


@pytest.mark.parametrize(
    ("accountant", "target", "rate", "steps", "delta"),
    [("prv", 1.0, 0.05, 400, 2e-4), ("prv", 0.05, 0.1, 20, 1e-5), ("prv", 50.0, 0.1, 20, 1e-5),
     ("rdp", 0.5, 0.1, 20, 1e-5), ("rdp", 500.0, 0.1, 20, 1e-5), ("rdp", 8.0, 1.0, 3, 1e-3)],
)
def test_calibration_reaches_target_from_below(
    accountant: str, target: float, rate: float, steps: int, delta: float
) -> None:
    with finishes_within(20):
        sigma = calibrate_noise(target, delta, rate, steps, accountant)
    epsilon = _opacus_epsilon(accountant, sigma, rate, steps, delta)
    assert target - 0.01 < epsilon <= target


@pytest.mark.parametrize(
    ("accountant", "target", "floor"),
    [("prv", 1e-3, "even noise_multiplier=1000 spends ε=0.00999 with the prv accountant"),
     ("rdp", 0.05, "the rdp accountant cannot certify less than ε=0.103 at δ=1e-05")],
)
def test_target_below_the_accountants_floor_says_so(
    accountant: str, target: float, floor: str
) -> None:
    # Opacus raises "The privacy budget is too low." here, with no hint of what is possible.
    with pytest.raises(AccountingError, match=floor):
        calibrate_noise(target, 1e-5, 0.1, 20, accountant)


def test_rdp_floor_is_refused_without_slow_evaluations() -> None:
    # q = 0.5 exactly: Opacus's RDP takes seconds per ε at large σ; the floor needs none.
    start = time.perf_counter()
    with pytest.raises(AccountingError, match="cannot certify less than"):
        calibrate_noise(1e-4, 1e-3, 0.5, 2, "rdp")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("target", [1e3, 1e6])
def test_huge_prv_target_is_refused_at_once(target: float) -> None:
    # Opacus's calibration ran for minutes on these (its bisection walks into huge PRV grids).
    start = time.perf_counter()
    with finishes_within(20), pytest.raises(AccountingError, match="would need a grid of"):
        calibrate_noise(target, 1e-5, 0.1, 20, "prv")
    assert time.perf_counter() - start < 1.0


def test_prv_target_just_beyond_its_grid_names_what_it_can_certify() -> None:
    with finishes_within(30), pytest.raises(AccountingError, match=r"can certify at most ε≈5\d"):
        calibrate_noise(60.0, 2e-4, 0.05, 400, "prv")


@pytest.mark.parametrize(
    ("sigma", "problem"),
    [(1e-9, "would need a grid of"), (1e-3, "would need a grid of"), (0.05, "would need a grid")],
)
def test_tiny_noise_is_refused_before_prv_builds_its_grid(sigma: float, problem: str) -> None:
    # Opacus: ValueError (1e-9), a 237 GiB allocation (1e-3), 33 s (0.05).
    with finishes_within(10), pytest.raises(AccountingError, match=problem):
        epsilon_spent("prv", sigma, 0.1, 20, 1e-5)


def test_accountant_failures_become_accounting_errors() -> None:
    with pytest.raises(AccountingError, match="the prv accountant fails: Floating point errors"):
        epsilon_spent("prv", 1.0, 0.1, 20, 1e-17)
    with pytest.raises(AccountingError, match="the rdp accountant gives ε=inf"):
        epsilon_spent("rdp", 0.0, 0.1, 20, 1e-5)



@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_negative_accountant_bounds_are_read_as_zero(accountant: str) -> None:
    # At δ=0.1 both accountants report ε < 0 for much noise (-0.09); found by the config fuzz:
    # calibration took the log of it (ValueError: math domain error).
    assert _opacus_epsilon(accountant, 1e3, 0.5, 3, 0.1) < 0
    assert epsilon_spent(accountant, 1e3, 0.5, 3, 0.1) == 0.0
    sigma = calibrate_noise(0.05, 0.1, 0.5, 3, accountant)
    assert 0.04 < _opacus_epsilon(accountant, sigma, 0.5, 3, 0.1) <= 0.05

