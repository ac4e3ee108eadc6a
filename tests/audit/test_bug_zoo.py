"""The bug zoo (``benchmarks/bug_zoo.py``), one seed each, at 4 epochs instead of 15: every bug
is caught by the check that names it, every correct loop passes every check it can run (the
clipping, which its canaries join after, is "not checked").

The loops are the benchmark's own code (loaded from its file), so what the README's table
reports at 10 seeds is what runs here. Each bug test fails if its check is removed or weakened
(the check would no longer be among ``failed_checks``); the correct loops fail if any check
misfires on them.
"""

from __future__ import annotations

import warnings

import pytest

from benchmark_scripts import load_benchmark

pytestmark = pytest.mark.slow

zoo = load_benchmark("bug_zoo")
SETTINGS = zoo.Settings(epochs=4)
CORRECT = [name for name, loop in zoo.LOOPS.items() if not loop.expected]
BUGS = [name for name, loop in zoo.LOOPS.items() if loop.expected]


def _run(name: str) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zoo.LOOPS[name].run(0, SETTINGS, True)


@pytest.mark.parametrize("name", CORRECT)
def test_a_correct_loop_keeps_every_assumption(name: str) -> None:
    result = _run(name).result
    assert result.failed_checks == () and result.violation is False, [
        (check.check, check.detail) for check in result.checks if check.status == "failed"]
    statuses = {check.check: check.status for check in result.checks}
    # Given the loader, the model and the engine, everything is checked but the clipping (the
    # zoo's canaries join after it: "not verified", never "consistent"); the engine's
    # non-secure generator is a warning only.
    assert statuses.pop("noise_source") == "warning"
    assert statuses.pop("clipping") == "not_checked"
    assert set(statuses.values()) == {"passed"}, statuses
    assert result.claim_applies is None and result.verdict == (
        "not verified (not checked: clipping)")


@pytest.mark.parametrize("name", BUGS)
def test_a_bug_is_caught_by_the_check_that_names_it(name: str) -> None:
    loop = zoo.LOOPS[name]
    run = _run(name)
    result = run.result
    assert set(loop.expected) <= set(result.failed_checks), [
        (check.check, check.status, check.detail) for check in result.checks]
    assert result.violation is True and not result.claim_applies
    for check in result.checks:
        if check.check in loop.expected:
            assert check.finding == "not_applicable" and check.detail


def test_shuffled_batches_are_said_at_step_zero_with_what_the_claim_should_have_been() -> None:
    run = _run("shuffled_batches")
    assert any("loader draws shuffled fixed-size batches of 128" in line for line in run.warnings)
    loader = next(check for check in run.result.checks if check.check == "loader")
    assert loader.epsilon_lower_bound is not None
    assert loader.epsilon_lower_bound > run.result.claimed_epsilon  # the claim understates ε
    assert f"claimed ε = {run.result.claimed_epsilon:.3g} (Poisson sampling)" in loader.detail


def test_a_resumed_audit_covers_the_whole_training() -> None:
    """With the accountant restored, the resumed audit's record and the accountant agree on
    every step of both halves."""
    result = _run("resume_with_accountant").result
    steps = next(check for check in result.checks if check.check == "steps")
    assert steps.detail.startswith(f"{4 * 15} noisy steps seen, all accounted")
    assert result.record.canaries == SETTINGS.canaries
