"""The Poisson-sampling test on batch sizes: it rejects Poisson-sampled sizes no more often than
its confidence allows (by simulation: two of its forms are asymptotic), it rejects the loops
that break Poisson sampling and names how, its exact form is the union bound computed by hand
and by enumeration, its permutation variance is the brute-force one, and it refuses bad
input."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from auditml.metrics import MetricsInputError
from auditml.metrics.dp.sampling import (
    FORMS,
    _lag1_permutation_variance,
    poisson_batch_test,
)

SIMULATIONS = 1000

# (N, q, T): a digits-sized run, a small one, an MNIST-sized one, and one whose batches are
# often empty (mean size 2).
SCENARIOS = [
    (1797, 128 / 1797, 225),
    (600, 0.1, 100),
    (60000, 256 / 60000, 2350),
    (50, 0.04, 500),
]


def _false_rejections(
    population: int, rate: float, batches: int, *, given: bool, seed: int
) -> tuple[float, dict[str, float]]:
    """Share of Poisson-sampled runs the test rejects at 95 %, and each form's share below its
    Bonferroni level (0.05 / 3)."""
    rng = np.random.default_rng(seed)
    rejected = 0
    below = dict.fromkeys(FORMS, 0)
    for _ in range(SIMULATIONS):
        sizes = rng.binomial(population, rate, batches)
        result = poisson_batch_test(
            sizes, sample_rate=rate, dataset_size=population if given else None, confidence=0.95
        )
        rejected += result.rejected
        for name in FORMS:
            below[name] += result.forms[name] < 0.05 / len(FORMS)
    return rejected / SIMULATIONS, {name: count / SIMULATIONS for name, count in below.items()}


def _allowed(level: float) -> float:
    return level + 3 * math.sqrt(level * (1 - level) / SIMULATIONS)


@pytest.mark.parametrize("given", [True, False], ids=["N given", "N estimated"])
@pytest.mark.parametrize(("population", "rate", "batches"), SCENARIOS)
def test_poisson_sampled_sizes_are_rejected_at_most_at_the_level(
    population: int, rate: float, batches: int, given: bool
) -> None:
    # Measured (seed 0; N given / estimated): 0.050 / 0.050, 0.023 / 0.024, 0.046 / 0.046,
    # 0.058 / 0.057 (0.044 in 10 000 runs of the last). Each form at 0.05/3: at most 0.020.
    overall, forms = _false_rejections(population, rate, batches, given=given, seed=0)
    assert overall <= _allowed(0.05)
    for name in FORMS:
        assert forms[name] <= _allowed(0.05 / len(FORMS)), name


def test_the_level_is_not_reached_by_never_rejecting() -> None:
    # A test that never rejects passes the test above; this one rejects about 5 % of the time
    # where its asymptotic forms are accurate (many steps, large batches).
    overall, forms = _false_rejections(60000, 256 / 60000, 2350, given=True, seed=1)
    assert overall >= 0.025
    assert min(forms.values()) >= 0.004


# --- loops that break Poisson sampling -----------------------------------------------------

DIGITS, BATCH = 1797, 128


def _epoch_loop() -> np.ndarray:
    # DataLoader(shuffle=True, batch_size=128) over 1797 examples, 15 epochs: 14 full batches
    # and one of 5 per epoch (the order of the examples never shows in the sizes).
    return np.array(([BATCH] * 14 + [DIGITS - 14 * BATCH]) * 15)


def _reused_batches(rng: np.random.Generator) -> np.ndarray:
    return np.repeat(rng.binomial(DIGITS, BATCH / DIGITS, 225), 2)


def _over_dispersed(rng: np.random.Generator) -> np.ndarray:
    rate = BATCH / DIGITS
    low = rng.random(225) < 0.5
    return np.where(
        low, rng.binomial(DIGITS, rate / 2, 225), rng.binomial(DIGITS, 3 * rate / 2, 225)
    )


@pytest.mark.parametrize("given", [True, False], ids=["N given", "N estimated"])
def test_an_epoch_loop_of_fixed_size_batches_is_rejected_as_fixed_size(given: bool) -> None:
    result = poisson_batch_test(
        _epoch_loop(), sample_rate=1 / 15, dataset_size=DIGITS if given else None
    )
    assert result.rejected and result.failed_form == "fixed_size"
    assert (result.modal_size, result.modal_count, result.batches) == (128, 210, 225)
    # Its p-value is about 1e-276; the dispersion form (the one batch of 5) rejects too, at 1e-261.
    assert result.p_value < 1e-250 and result.forms["dispersion"] < 1e-200
    assert result.describe().startswith(
        "fixed-size batches: 210 of 225 steps had exactly 128 examples"
    )
    assert "at most 3.8% of the time (p = 3.6e-276)" in result.describe()


@pytest.mark.parametrize("given", [True, False], ids=["N given", "N estimated"])
def test_drop_last_is_rejected_for_its_fixed_size(given: bool) -> None:
    result = poisson_batch_test(
        np.full(14 * 15, BATCH), sample_rate=BATCH / DIGITS,
        dataset_size=DIGITS if given else None,
    )
    # Both forms see it (either name would be right); a variance of exactly 0 puts the
    # dispersion form's p-value at 0.0, below the fixed_size form's 4e-302, so it is named.
    assert result.rejected and result.failed_form == "dispersion"
    assert result.forms["fixed_size"] < 1e-200 and result.forms["dispersion"] < 1e-200
    assert result.lag1_correlation is None and result.forms["dependence"] == 1.0
    assert "vary too little: their variance over 210 steps is 0" in result.describe()
    assert "(p < 1e-300)" in result.describe()


@pytest.mark.parametrize("given", [True, False], ids=["N given", "N estimated"])
def test_a_batch_used_for_two_steps_is_rejected_for_dependence(given: bool) -> None:
    result = poisson_batch_test(
        _reused_batches(np.random.default_rng(4)), sample_rate=BATCH / DIGITS,
        dataset_size=DIGITS if given else None,
    )
    # Consecutive pairs are equal, so r ≈ 1/2 against a standard error of 1/√450: over 300
    # seeds the dependence form's p-value was below 1e-18 every time and always the smallest.
    # Each size is still Binomial(N, q), so the spread looks right; the fixed_size form is
    # sometimes moved (every count doubles, and with it the modal count: its p-value was
    # below 0.0033 in 9 % of those seeds, median 0.13), never as far.
    assert result.rejected and result.failed_form == "dependence"
    assert result.lag1_correlation is not None and result.lag1_correlation > 0.4
    assert result.forms["dependence"] < 1e-15 < result.forms["fixed_size"]
    assert result.describe().startswith("consecutive batch sizes are correlated")


@pytest.mark.parametrize("given", [True, False], ids=["N given", "N estimated"])
def test_over_dispersed_sizes_are_rejected_for_dispersion(given: bool) -> None:
    result = poisson_batch_test(
        _over_dispersed(np.random.default_rng(5)), sample_rate=BATCH / DIGITS,
        dataset_size=DIGITS if given else None,
    )
    assert result.rejected and result.failed_form == "dispersion"
    assert result.variance > 10 * result.expected_variance
    assert "vary too much" in result.describe()


def test_a_wrong_rate_alone_is_not_what_it_tests() -> None:
    # Poisson sampling at twice the rate the accountant was told: the scheme is right, so no
    # form rejects (the fixed_size form looks at how often the commonest size occurs, not
    # where; the dispersion form at the spread around the observed mean). The rate is
    # sample_rate_lower_bound's to see.
    rate = BATCH / DIGITS
    sizes = np.random.default_rng(6).binomial(DIGITS, 2 * rate, 225)
    for dataset_size in (DIGITS, None):
        result = poisson_batch_test(sizes, sample_rate=rate, dataset_size=dataset_size)
        assert not result.rejected and result.mean > 1.8 * BATCH


# --- the forms against direct computations ------------------------------------------------


def _tail_at_least_three_of_five(p: Fraction) -> Fraction:
    return 10 * p**3 * (1 - p) ** 2 + 5 * p**4 * (1 - p) + p**5


def test_the_fixed_size_p_value_is_the_union_bound_by_hand() -> None:
    # N = 4, q = 1/2: p_v = (1, 4, 6, 4, 1) / 16. Size 2 occurs 3 times in 5 steps, and the
    # union bound is Σ_v P(Binomial(5, p_v) >= 3).
    sizes = np.array([2, 2, 2, 1, 3])
    result = poisson_batch_test(sizes, sample_rate=0.5, dataset_size=4)
    by_hand = sum(_tail_at_least_three_of_five(Fraction(c, 16)) for c in (1, 4, 6, 4, 1))
    with_scipy = sum(stats.binom.sf(2, 5, stats.binom.pmf(v, 4, 0.5)) for v in range(5))
    assert (result.modal_size, result.modal_count) == (2, 3)
    assert result.forms["fixed_size"] == pytest.approx(float(by_hand), rel=1e-12)
    assert result.forms["fixed_size"] == pytest.approx(with_scipy, rel=1e-12)

    # It bounds the exact probability that some size occurs 3 or more times (all 5^5 runs),
    # and is close to it: the events rarely overlap.
    pmf = [Fraction(c, 16) for c in (1, 4, 6, 4, 1)]
    exact = sum(
        math.prod(pmf[v] for v in run)
        for run in itertools.product(range(5), repeat=5)
        if max(run.count(v) for v in set(run)) >= 3
    )
    assert exact <= by_hand < 1.05 * exact


def test_a_tail_too_small_for_a_float_stays_finite_and_exact_when_representable() -> None:
    # 400 steps of one size among a spread of ~11: scipy's log tail underflows to -inf, and the
    # geometric bound takes over; one fewer repeated step is still scipy's own value.
    rate = BATCH / DIGITS
    fixed = poisson_batch_test(np.full(400, 128), sample_rate=rate, dataset_size=DIGITS)
    assert 0 <= fixed.forms["fixed_size"] < 1e-300
    few = np.array([128] * 30 + list(range(100, 170)))
    result = poisson_batch_test(few, sample_rate=rate, dataset_size=DIGITS)
    values = np.arange(DIGITS + 1)
    direct = float(np.sum(stats.binom.sf(29, 100, stats.binom.pmf(values, DIGITS, rate))))
    assert result.forms["fixed_size"] == pytest.approx(direct, rel=1e-9)


@pytest.mark.parametrize("batches", [3, 4, 5, 6, 7])
def test_the_lag1_variance_is_the_brute_force_permutation_variance(batches: int) -> None:
    values = np.random.default_rng(batches).poisson(3.0, batches).astype(float)
    values[0] += 5  # never all equal
    deviations = values - values.mean()
    squares = float(deviations @ deviations)
    correlations = [
        float(deviations[list(order)][:-1] @ deviations[list(order)][1:]) / squares
        for order in itertools.permutations(range(batches))
    ]
    assert np.mean(correlations) == pytest.approx(-1 / batches)
    fourth = float(np.sum(deviations**4)) / squares**2
    assert _lag1_permutation_variance(batches, fourth) == pytest.approx(np.var(correlations))


def test_the_dispersion_form_is_the_corrected_chi_squared_one() -> None:
    sizes = np.array([3, 7, 5, 5])
    result = poisson_batch_test(sizes, sample_rate=0.5, dataset_size=100)
    statistic = 8 / (5 * 0.5)
    inflation = 1 + (1.5 - 2) / (2 * 100 * 0.5)
    law = stats.chi2(3 / inflation, scale=inflation)
    half_step = 1 / (5 * 0.5)
    expected = 2 * min(law.cdf(statistic + half_step), law.sf(statistic - half_step))
    assert result.forms["dispersion"] == pytest.approx(expected)
    assert result.variance == pytest.approx(8 / 3) and result.expected_variance == 2.5


def test_the_result_is_json_ready_and_combines_the_forms_by_bonferroni() -> None:
    sizes = np.random.default_rng(8).binomial(DIGITS, BATCH / DIGITS, 225)
    result = poisson_batch_test(sizes, sample_rate=BATCH / DIGITS)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["forms"] == result.forms and record["dataset_size_estimated"] is True
    assert result.p_value == min(1.0, 3 * min(result.forms.values()))
    assert not result.rejected and result.failed_form is None
    assert result.describe().startswith("batch sizes consistent with Poisson sampling")
    # All empty: nothing varies, and a dataset of one is the estimate.
    empty = poisson_batch_test(np.zeros(5, dtype=int), sample_rate=0.1)
    assert empty.dataset_size == 1 and empty.forms["dispersion"] == 1.0
    assert empty.lag1_correlation is None


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "settings", "argument"),
    [
        ([], {}, "batch_sizes"),
        ([5], {}, "batch_sizes"),
        ([[1, 2], [3, 4]], {}, "batch_sizes"),
        ([1.5, 2.0], {}, "batch_sizes"),
        ([True, False], {}, "batch_sizes"),
        ([-1, 2], {}, "batch_sizes"),
        ([5, 11], {"dataset_size": 10}, "batch_sizes"),
        ([1, 2], {"sample_rate": 0.0}, "sample_rate"),
        ([1, 2], {"sample_rate": 1.0}, "sample_rate"),
        ([1, 2], {"sample_rate": float("nan")}, "sample_rate"),
        ([1, 2], {"sample_rate": "0.1"}, "sample_rate"),
        ([1, 2], {"sample_rate": True}, "sample_rate"),
        ([1, 2], {"confidence": 0.5}, "confidence"),
        ([1, 2], {"confidence": 1.0}, "confidence"),
        ([1, 2], {"confidence": True}, "confidence"),
        ([1, 2], {"dataset_size": 0}, "dataset_size"),
        ([1, 2], {"dataset_size": 100.0}, "dataset_size"),
        ([1, 2], {"dataset_size": True}, "dataset_size"),
        ([1, 2], {"dataset_size": "100"}, "dataset_size"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(
    sizes: list[object], settings: dict[str, object], argument: str
) -> None:
    keywords: dict[str, object] = {"sample_rate": 0.1, **settings}
    with pytest.raises(MetricsInputError, match=f"`{argument}`"):
        poisson_batch_test(np.asarray(sizes), **keywords)  # type: ignore[arg-type]


def test_the_confidence_message_says_the_interval() -> None:
    message = r"^`confidence` must be in \(0\.5, 1\), got 0\.3\.$"
    with pytest.raises(MetricsInputError, match=message):
        poisson_batch_test([1, 2], sample_rate=0.1, confidence=0.3)
