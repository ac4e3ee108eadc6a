"""The ceiling on assumption-free one-run audits: a closed form checked with scipy, the proof's
construction checked numerically, and the valid audits staying below it on the ideal mechanism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import optimize, stats

from auditml.metrics import MetricsInputError, fdp_audit, one_run_audit
from auditml.metrics.dp.one_run_limits import gaussian_one_run_ceiling
from auditml.metrics.dp.tradeoff import approximate_dp_tradeoff


def gaussian_delta(epsilon: float, mu: float) -> float:
    return float(stats.norm.cdf(-epsilon / mu + mu / 2)
                 - np.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2))


def gaussian_epsilon(mu: float, delta: float) -> float:
    return float(optimize.brentq(lambda e: gaussian_delta(e, mu) - delta, 0.0, 200.0,
                                 xtol=1e-12))


@pytest.mark.parametrize(("mu", "canaries", "delta"),
                         [(1.0, 1000, 1e-5), (0.5, 10_000, 1e-4), (3.0, 200, 0.0)])
def test_ceiling_matches_scipy_root(mu: float, canaries: int, delta: float) -> None:
    expected = gaussian_epsilon(mu, delta + (0.5 - 0.05) / canaries)
    assert gaussian_one_run_ceiling(mu, canaries, delta=delta) == pytest.approx(expected, 1e-8)


def test_ceiling_is_zero_when_few_canaries_cannot_see_anything() -> None:
    # δ_μ(0) = 2Φ(μ/2) - 1 ≈ 0.0399 at μ = 0.1, below 0.45 / 10: nothing can be shown in median.
    assert gaussian_one_run_ceiling(0.1, 10, delta=1e-5) == 0.0


def test_ceiling_is_zero_when_the_slack_reaches_one() -> None:
    # δ + (1/2 − β)/m = 1.05 ≥ 1 > δ_μ(0): no ε is needed, whatever μ.
    assert gaussian_one_run_ceiling(1.0, 1, delta=0.6) == 0.0
    assert gaussian_one_run_ceiling(50.0, 1, delta=0.55) == 0.0


def test_ceiling_grows_with_canaries_and_confidence_towards_the_true_epsilon() -> None:
    true = gaussian_epsilon(1.0, 1e-5)
    ceilings = [gaussian_one_run_ceiling(1.0, m, delta=1e-5) for m in (100, 1000, 10**4, 10**6)]
    assert all(a < b for a, b in itertools.pairwise(ceilings))
    assert ceilings[-1] < true and ceilings[-1] > 0.99 * true
    # A stricter audit (smaller β) can show less.
    assert gaussian_one_run_ceiling(1.0, 1000, delta=1e-5, confidence=0.99) < ceilings[1]
    # The figures quoted in the module docstring.
    assert ceilings[1] / true == pytest.approx(0.771, abs=1e-3)


@pytest.mark.parametrize(("mu", "epsilon_1", "delta"), [(1.0, 2.5, 1e-5), (2.0, 6.0, 1e-4)])
def test_the_proofs_channel_is_epsilon_delta_dp_and_close_to_the_gaussian(
    mu: float, epsilon_1: float, delta: float
) -> None:
    # Discretise N(0,1) and N(μ,1) on fine cells (exact cell masses), build (P', Q') as in the
    # proof, and check: (ε₁, δ)-DP in both directions, and total variation δ₁ - δ from (P, Q).
    edges = np.concatenate([[-np.inf], np.linspace(-12.0, 12.0 + mu, 400_001), [np.inf]])
    p, q = np.diff(stats.norm.cdf(edges)), np.diff(stats.norm.cdf(edges - mu))
    scale = np.exp(epsilon_1)
    delta_1 = float(np.maximum(q - scale * p, 0).sum())
    assert delta_1 == pytest.approx(gaussian_delta(epsilon_1, mu), rel=1e-3)
    assert np.maximum(p - scale * q, 0).sum() == pytest.approx(delta_1, rel=1e-9)  # symmetric
    upper, lower = q > scale * p, p > scale * q
    q_new, p_new = q.copy(), p.copy()
    q_new[upper] = scale * p[upper] + delta / delta_1 * (q[upper] - scale * p[upper])
    p_new[lower] = scale * q[lower] + delta / delta_1 * (p[lower] - scale * q[lower])
    q_new, p_new = np.append(q_new, q.sum() - q_new.sum()), np.append(p_new, p.sum() - p_new.sum())
    assert q_new[-1] == pytest.approx(delta_1 - delta, rel=1e-9)
    assert p_new[-1] == pytest.approx(delta_1 - delta, rel=1e-9)
    for first, second in ((q_new, p_new), (p_new, q_new)):
        assert np.maximum(first - scale * second, 0).sum() <= delta * (1 + 1e-9)
    assert 0.5 * np.abs(q_new - np.append(q, 0)).sum() == pytest.approx(delta_1 - delta, 1e-9)


def test_valid_audits_stay_below_the_ceiling_on_the_ideal_mechanism() -> None:
    # The theorem's consequence for the two assumption-free audits in auditml: their median
    # on the ideal mechanism is below the ceiling (measured: about 0.3 and 0.4 of it).
    mu, canaries, delta = 1.0, 1000, 1e-5
    ceiling = gaussian_one_run_ceiling(mu, canaries, delta=delta)
    rng = np.random.default_rng(0)
    steinke, f_dp = [], []
    for _ in range(15):
        included = rng.random(canaries) < 0.5
        scores = rng.normal(mu * included, 1.0)
        steinke.append(one_run_audit(scores, included, delta=delta).epsilon)
        f_dp.append(fdp_audit(scores, included, approximate_dp_tradeoff(1.0), delta=delta)
                    .epsilon_bound.epsilon)
    assert 0 < np.median(steinke) < ceiling
    assert 0 < np.median(f_dp) < ceiling


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mu": 0.0, "canaries": 10}, "`mu` must be in (0, 1e+06)"),
    ({"mu": float("nan"), "canaries": 10}, "`mu` must be in"),
    ({"mu": 1.0, "canaries": 0}, "`canaries` must be a positive integer, got 0."),
    ({"mu": 1.0, "canaries": 1.5}, "`canaries` must be a positive integer"),
    ({"mu": 1.0, "canaries": 10, "delta": 1.0}, "`delta` must be in [0, 1)"),
    ({"mu": 1.0, "canaries": 10, "confidence": 0.4}, "`confidence` must be in (0.5, 1)"),
])
def test_input_errors(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(MetricsInputError) as error:
        gaussian_one_run_ceiling(**kwargs)  # type: ignore[arg-type]
    assert message in str(error.value)
