"""Each assumption of the accountant, checked on hand-made evidence
(:mod:`auditml.audit.canaries.assumptions`): what passes, what fails and why, what is not
checked, and the statistical checks' error rate on loops that keep every assumption."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from auditml.audit.canaries.assumptions import (
    ASSUMPTION_CHECK_LEVEL,
    attach_time_findings,
    check_assumptions,
    statistical_checks,
)
from auditml.audit.canaries.base import PrivacyClaim
from auditml.audit.canaries.white_box import CONFIDENCE, MECHANISM_CHECK_LEVEL, claim_test_level
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics.dp.accounting import shuffle_epsilon_lower_bound
from auditml.metrics.dp.mechanism_check import RateBound
from auditml.records import AssumptionCheck, HiddenStateProbe, LoopFacts

N, Q, SIGMA = 1000, 0.1, 1.0
POISSON = LoopFacts(loader="Poisson sampling (UniformWithReplacementSampler) at rate 0.1",
                    sampling="poisson", loader_rate=Q, dataset_size=N, steps_per_epoch=10,
                    secure_rng=True, clipping="through",
                    probe=HiddenStateProbe(ran=True, reason="the first training batch", batch=100,
                                           mixing=False, max_change=0.0))


def _record(sizes: np.ndarray, *, divisors: np.ndarray | None = None,
            facts: LoopFacts | None = POISSON, dataset_size: int = 0) -> GradientCanaryRecord:
    steps, m = len(sizes), 20
    rng = np.random.default_rng(0)
    return GradientCanaryRecord(
        direction="dirac", seed=0, coordinates=np.arange(m, dtype=np.int64), dimension=100,
        included=np.arange(m) % 2 == 0, sample_rate=Q, noise_multiplier=SIGMA,
        max_grad_norm=1.0, observations=rng.normal(size=(steps, m)).astype(np.float32),
        sampled=np.zeros((steps, m), bool), initial=np.zeros(m, np.float32),
        final=np.zeros(m, np.float32), batch_sizes=np.asarray(sizes, np.int64),
        dataset_size=dataset_size,
        divisors=np.full(steps, N * Q) if divisors is None else divisors, loop_facts=facts,
        changed_outside=np.zeros(steps + 1, bool), changed_tensors=np.zeros(2, np.int64),
    )


def _claim(steps: int, *, rate: float = Q, accountant: str = "prv") -> PrivacyClaim:
    return PrivacyClaim(accountant=accountant, history=[(SIGMA, rate, steps)], epsilon=2.0,
                        delta=1e-5)


def _by_name(checks: list[AssumptionCheck]) -> dict[str, AssumptionCheck]:
    return {check.check: check for check in checks}


def _poisson_sizes(steps: int, seed: int = 0, rate: float = Q) -> np.ndarray:
    return np.random.default_rng(seed).binomial(N, rate, steps)


def test_a_loop_that_keeps_every_assumption_passes_them_all() -> None:
    checks = check_assumptions(_record(_poisson_sizes(100)), _claim(100))
    assert [check.check for check in checks] == [
        "loader", "batch_sizes", "rate", "steps", "updates", "normalisation", "clipping",
        "hidden_state", "noise_source", "accountant"]
    assert {check.check: check.status for check in checks} == dict.fromkeys(
        [check.check for check in checks], "passed")
    found = _by_name(checks)
    assert found["batch_sizes"].p_value is not None and found["batch_sizes"].p_value > 0.01
    assert "rate ≥" in found["rate"].detail and found["steps"].finding is None


def test_shuffled_fixed_size_batches_fail_with_the_shuffled_epsilon_beside_the_claim() -> None:
    facts = POISSON.model_copy(update={
        "loader": "shuffled fixed-size batches of 100 (RandomSampler)", "sampling": "shuffled",
        "loader_rate": None})
    sizes = np.tile([100] * 9 + [95], 20)  # 20 epochs of 10 batches, the last one short
    found = _by_name(check_assumptions(_record(sizes, facts=facts), _claim(len(sizes))))
    expected = shuffle_epsilon_lower_bound(noise_multiplier=SIGMA, steps_per_epoch=10, epochs=20,
                                           delta=1e-5)
    for name in ("loader", "batch_sizes"):
        check = found[name]
        assert check.status == "failed" and check.finding == "not_applicable"
        assert check.epsilon_lower_bound == pytest.approx(expected)
        assert "claimed ε = 2" in check.detail and "Chua et al. 2024" in check.detail
    assert expected > 2.0  # what the loop really did is less private than claimed
    assert found["batch_sizes"].detail.startswith("fixed-size batches: 180 of 200 steps")
    assert found["batch_sizes"].p_value is not None and found["batch_sizes"].p_value < 1e-50


def test_batches_in_a_fixed_order_are_bounded_as_the_gaussian_mechanism() -> None:
    facts = POISSON.model_copy(update={"loader": "in-order fixed-size batches of 100 "
                                       "(SequentialSampler)", "sampling": "in_order"})
    sizes = np.full(100, 100)
    loader = _by_name(check_assumptions(_record(sizes, facts=facts), _claim(100)))["loader"]
    gaussian = shuffle_epsilon_lower_bound(noise_multiplier=SIGMA, steps_per_epoch=1,
                                           epochs=10, delta=1e-5)
    assert loader.epsilon_lower_bound == pytest.approx(gaussian)
    assert "same order every epoch" in loader.detail
    weighted = POISSON.model_copy(update={"loader": "weighted-sampler fixed-size batches of 100 "
                                          "(WeightedRandomSampler)", "sampling": "weighted"})
    unbounded = _by_name(check_assumptions(_record(sizes, facts=weighted), _claim(100)))
    assert unbounded["loader"].status == "failed"
    assert unbounded["loader"].epsilon_lower_bound is None  # no bound known for weights


def test_a_rate_other_than_the_accounted_one_fails() -> None:
    sizes = _poisson_sizes(100, rate=2 * Q)  # the loader draws twice the accounted rate
    rate = _by_name(check_assumptions(_record(sizes), _claim(100)))["rate"]
    assert rate.status == "failed" and "accountant was told 0.1" in rate.detail
    told = POISSON.model_copy(update={"loader_rate": 0.2})
    exact = _by_name(check_assumptions(_record(_poisson_sizes(100), facts=told),
                                       _claim(100)))["rate"]
    assert exact.status == "failed" and exact.confidence is None  # read off the sampler
    assert exact.detail == ("the Poisson loader draws at rate 0.2; the accountant was told 0.1")
    unknown = POISSON.model_copy(update={"dataset_size": None})
    blind = _by_name(check_assumptions(_record(sizes, facts=unknown), _claim(100)))["rate"]
    assert blind.status == "not_checked" and "dataset_size=" in blind.detail


def test_a_rate_bound_made_elsewhere_is_used_instead_of_a_new_test() -> None:
    given = RateBound(estimate=0.25, lower=0.2, batches=7, dataset_size=N, confidence=0.9975)
    record = _record(_poisson_sizes(100))
    rate = _by_name(check_assumptions(record, _claim(100), rate=given))["rate"]
    assert rate.status == "failed" and "7 batches" in rate.detail
    assert statistical_checks(record, _claim(100)) == 2
    assert statistical_checks(record, _claim(100), rate_measured=True) == 1


def test_noisy_steps_outside_the_accountant_fail_and_accounted_extra_ones_pass() -> None:
    sizes = _poisson_sizes(100)
    lost = _by_name(check_assumptions(_record(sizes), _claim(50)))["steps"]
    assert lost.status == "failed" and lost.detail.startswith(
        "the optimiser added noise in 100 steps, the accountant accounts for 50")
    extra = _by_name(check_assumptions(_record(sizes), _claim(120)))["steps"]
    assert extra.status == "passed" and "accounts 20 more" in extra.detail


def test_a_learning_rate_that_follows_the_batch_size_fails_normalisation() -> None:
    """lr = c / len(batch) divides the update by the real batch size as surely as the divisor
    does, and passed: the divisor itself (read from the gradient) was constant."""
    sizes = _poisson_sizes(100)
    by_size = dataclasses.replace(_record(sizes), learning_rates=0.5 * N * Q / sizes)
    found = _by_name(check_assumptions(by_size, _claim(100)))["normalisation"]
    assert found.status == "failed" and "learning rate falls as the batch" in found.detail
    # A schedule (a step decay), constant or not at all: the divisor's verdict stands.
    decay = np.where(np.arange(100) < 50, 0.5, 0.05)
    for rates in (np.full(100, 0.5), decay, np.full(100, np.nan)):
        scheduled = dataclasses.replace(_record(sizes), learning_rates=rates)
        assert _by_name(check_assumptions(scheduled, _claim(100)))[
            "normalisation"].status == "passed"


def test_normalisation_by_the_real_batch_size_fails_a_schedule_passes() -> None:
    sizes = _poisson_sizes(100)
    real = _by_name(check_assumptions(_record(sizes, divisors=sizes.astype(float)),
                                      _claim(100)))["normalisation"]
    assert real.status == "failed" and "follows the batch's real size" in real.detail
    constant = _by_name(check_assumptions(_record(sizes), _claim(100)))["normalisation"]
    assert constant.status == "passed" and "divided by 100, a constant" in constant.detail
    # Opacus divides accumulated steps by the micro-batches accumulated: a schedule.
    micro = np.where(np.arange(100) % 7 == 0, 3, 2)
    schedule = _by_name(check_assumptions(
        _record(sizes * micro, divisors=100.0 * micro), _claim(100)))["normalisation"]
    assert schedule.status == "passed" and "schedule" in schedule.detail
    unknown = _record(np.full(100, -1), divisors=np.linspace(90, 110, 100))
    assert _by_name(check_assumptions(unknown, _claim(100)))["normalisation"].status == "warning"
    unseen = _record(sizes, divisors=np.full(100, np.nan))
    assert _by_name(check_assumptions(unseen, _claim(100)))["normalisation"].status == (
        "not_checked")


def test_hidden_state_fails_on_mixing_or_buffers_and_says_what_it_could_not_see() -> None:
    sizes = _poisson_sizes(100)
    mixing = POISSON.model_copy(update={
        "mixing_layers": ["1: BatchNorm1d"],
        "probe": HiddenStateProbe(ran=True, reason="r", batch=100, mixing=True, max_change=0.01,
                                  buffers_updated=["1.running_mean"])})
    found = _by_name(check_assumptions(_record(sizes, facts=mixing), _claim(100)))
    assert found["hidden_state"].status == "failed"
    assert "mixes the examples" in found["hidden_state"].detail
    assert "1.running_mean" in found["hidden_state"].detail
    not_run = POISSON.model_copy(update={
        "mixing_layers": ["1: BatchNorm1d"],
        "probe": HiddenStateProbe(ran=False, reason="the model's first input is not a tensor")})
    blind = _by_name(check_assumptions(_record(sizes, facts=not_run), _claim(100)))
    assert blind["hidden_state"].status == "not_checked"
    assert "not a tensor" in blind["hidden_state"].detail
    assert "1: BatchNorm1d" in blind["hidden_state"].detail
    moved = POISSON.model_copy(update={"buffers_changed": ["ema.weight"]})
    assert _by_name(check_assumptions(_record(sizes, facts=moved), _claim(100)))[
        "hidden_state"].status == "warning"
    # A BatchNorm put back in training mode after the probe: its statistics moved later.
    retrained = POISSON.model_copy(update={"buffers_changed": ["1.running_mean", "ema.weight"]})
    later = _by_name(check_assumptions(_record(sizes, facts=retrained), _claim(100)))
    assert later["hidden_state"].status == "failed"
    assert "running statistics 1.running_mean changed" in later["hidden_state"].detail


def test_clipping_is_checked_only_through_it() -> None:
    sizes = _poisson_sizes(100)
    statuses = {
        where: _by_name(check_assumptions(
            _record(sizes, facts=POISSON.model_copy(update={"clipping": where})),
            _claim(100)))["clipping"]
        for where in ("through", "auditml", "after", None)
    }
    assert statuses["through"].status == statuses["auditml"].status == "passed"
    assert statuses["after"].status == statuses[None].status == "not_checked"
    assert "through_clipping=True" in statuses["after"].detail


def test_what_was_not_given_is_not_checked_and_never_passes() -> None:
    sizes = np.full(100, -1)  # ghost clipping without the model: no batch sizes
    found = _by_name(check_assumptions(_record(sizes, facts=None, divisors=np.full(100, np.nan)),
                                       _claim(100)))
    for name in ("loader", "batch_sizes", "rate", "normalisation", "clipping", "hidden_state",
                 "noise_source"):
        assert found[name].status == "not_checked", name
    assert "data_loader=" in found["loader"].detail and "model=" in found["hidden_state"].detail
    assert statistical_checks(_record(sizes, facts=None), _claim(100)) == 0


def test_the_engine_findings_are_warnings_not_failures() -> None:
    insecure = POISSON.model_copy(update={"secure_rng": False})
    found = _by_name(check_assumptions(_record(_poisson_sizes(100), facts=insecure),
                                       _claim(100, accountant="gdp")))
    assert found["noise_source"].status == "warning" and "secure_mode" in found[
        "noise_source"].detail
    assert found["accountant"].status == "warning" and "not a bound" in found["accountant"].detail
    assert not any(check.status == "failed" for check in found.values())


def test_the_statistical_checks_keep_their_share_of_the_error_level() -> None:
    """On loops that keep every assumption (Poisson batch sizes, the accounted rate) the two
    statistical checks together fail in at most ASSUMPTION_CHECK_LEVEL of runs (1 %): 600
    simulated runs may fail at most 14 times (binomial 99.9 % upper quantile at 1 %)."""
    failures = 0
    for seed in range(600):
        steps = 50 + seed % 150
        checks = check_assumptions(_record(_poisson_sizes(steps, seed=seed)), _claim(steps))
        failures += any(check.status == "failed" for check in checks)
    assert failures <= 14


def test_the_verdict_splits_its_error_level_between_the_tests_that_run() -> None:
    assert claim_test_level(mechanism_check=False, assumption_checks=False) == pytest.approx(
        1 - CONFIDENCE)
    assert claim_test_level(mechanism_check=True, assumption_checks=True) == pytest.approx(
        1 - CONFIDENCE - MECHANISM_CHECK_LEVEL - ASSUMPTION_CHECK_LEVEL)
    assert claim_test_level(mechanism_check=True, assumption_checks=True) > 0


def test_what_is_visible_before_the_first_step_is_said_then() -> None:
    shuffled = LoopFacts(loader="shuffled fixed-size batches of 128 (RandomSampler)",
                         sampling="shuffled", mixing_layers=["0: BatchNorm2d"],
                         secure_rng=False)
    lines = attach_time_findings(shuffled, accountant="gdp", accounted_rate=0.1)
    assert len(lines) == 4
    assert lines[0].startswith("the accountant's ε will not apply: the loader draws shuffled")
    assert "poisson_sampling=True" in lines[0]
    assert "0: BatchNorm2d" in lines[1] and "ModuleValidator.fix" in lines[1]
    assert lines[2].startswith("warning: the noise comes from") and "gdp" in lines[3]
    rate = attach_time_findings(POISSON, accountant="prv", accounted_rate=0.05)
    assert rate == ["the accountant's ε will not apply: the loader draws at rate 0.1, the "
                    "accountant was told 0.05"]
    assert attach_time_findings(POISSON, accountant="prv", accounted_rate=Q) == []


def test_weights_changed_outside_the_updates_fail_the_claim_and_unwatched_is_not_checked(
) -> None:
    import dataclasses

    record = _record(_poisson_sizes(10))
    changed = np.zeros(11, bool)
    changed[[3, 4]] = True
    broken = dataclasses.replace(record, changed_outside=changed,
                                 changed_tensors=np.array([0, 2], np.int64))
    check = _by_name(check_assumptions(broken, _claim(10)))["updates"]
    assert check.status == "failed" and check.finding == "not_applicable"
    assert "at 2 of 10 updates (trainable tensors 1 of 2)" in check.detail
    unwatched = dataclasses.replace(record, changed_outside=None, changed_tensors=None)
    check = _by_name(check_assumptions(unwatched, _claim(10)))["updates"]
    assert check.status == "not_checked" and "older auditml" in check.detail
