"""The VIOLATION rule (one function) and the verdict lines built on it."""

from __future__ import annotations

from typing import Any

import pytest

from auditml.reporting.console import canary_summary
from auditml.reporting.verdict import (
    BoundSource,
    StrongestAttack,
    VerdictKind,
    exceeds_claim,
    joint_confidence,
    run_verdict,
)


@pytest.mark.parametrize(
    ("dp_enabled", "claimed", "bound", "expected"),
    [
        (True, 1.0, 1.01, True),
        (True, 1.0, 1.0, False),  # equal is not above the claim
        (True, 1.0, 0.3, False),
        (False, None, 9.0, False),  # no DP: no claim to contradict
        (False, 1.0, 9.0, False),  # a stray epsilon without DP claims nothing
        (True, None, 9.0, False),
        (True, 1.0, None, False),
    ],
)
def test_exceeds_claim(
    dp_enabled: bool, claimed: float | None, bound: float | None, expected: bool
) -> None:
    assert exceeds_claim(
        dp_enabled=dp_enabled, claimed_epsilon=claimed, epsilon_lower_bound=bound
    ) is expected


STRONGEST = StrongestAttack("mia_lira", 0.123, 0.701)


def test_a_bound_above_the_claim_is_a_violation_naming_its_source() -> None:
    verdict = run_verdict(
        dp_enabled=True, claimed_epsilon=1.0,
        bounds=[BoundSource("mia_lira", 0.4, 0.95), BoundSource("dp_audit", 1.7, 0.95)],
        strongest=STRONGEST,
    )
    assert verdict.kind is VerdictKind.VIOLATION
    assert verdict.headline.startswith("VIOLATION — DP ε=1.00 claimed, but the dp_audit audit")
    # Two bounds were searched for a violation: the union bound is what the headline may claim.
    assert "ε ≥ 1.70 (95% confidence for that bound, 90% for the largest of 2)" in (
        verdict.headline
    )


def test_joint_confidence_is_the_union_bound() -> None:
    bounds = [BoundSource("a", 1.0, 0.95), BoundSource("b", 2.0, 0.95), BoundSource("c", 0.0, 0.99)]
    assert joint_confidence(bounds) == pytest.approx(0.89)
    assert joint_confidence(bounds[:1]) == pytest.approx(0.95)
    assert joint_confidence([BoundSource(str(i), 1.0, 0.5) for i in range(3)]) == 0.0


def test_a_dp_run_within_its_claim_is_consistent() -> None:
    verdict = run_verdict(
        dp_enabled=True, claimed_epsilon=4.87, bounds=[BoundSource("mia_lira", 0.4, 0.95)],
        strongest=STRONGEST,
    )
    assert verdict.kind is VerdictKind.CONSISTENT
    assert verdict.headline == (
        "DP ε=4.87 claimed; audit lower bound 0.40 (mia_lira, 95% confidence) — consistent; "
        "strongest attack mia_lira: TPR@1%FPR 12.3%, AUC 0.701"
    )


def test_without_dp_a_positive_bound_means_leaks() -> None:
    leaks = run_verdict(
        dp_enabled=False, claimed_epsilon=None, bounds=[BoundSource("mia_lira", 2.3, 0.95)],
        strongest=STRONGEST,
    )
    assert leaks.kind is VerdictKind.LEAKS
    assert leaks.headline.startswith("No DP guarantee — leaks: strongest attack mia_lira")
    quiet = run_verdict(
        dp_enabled=False, claimed_epsilon=None, bounds=[BoundSource("mia_lira", 0.0, 0.95)],
        strongest=STRONGEST,
    )
    assert quiet.kind is VerdictKind.NO_LEAK_FOUND


def _canary(bound: float, *, dp_enabled: bool, epsilon: float | None) -> dict[str, object]:
    return {
        "attack": "dp_audit", "canaries": 1000, "included": 497, "delta": 1e-5,
        "confidence": 0.95,
        "epsilon_lower_bound": bound, "best_score": "loss", "max_epsilon": 3.1,
        "by_score": {"loss": {"correct": 40, "guesses": 42}},
        "run": {"dp_enabled": dp_enabled, "epsilon": epsilon},
    }


def test_canary_summary_uses_the_same_rule() -> None:
    assert canary_summary(_canary(1.2, dp_enabled=True, epsilon=1.0)).endswith(
        "accountant's ε=1.00: VIOLATION"
    )
    assert canary_summary(_canary(0.8, dp_enabled=True, epsilon=1.0)).endswith(
        "accountant's ε=1.00: consistent"
    )
    # An epsilon recorded for a run without DP is no claim (the old check flagged it).
    assert "accountant" not in canary_summary(_canary(1.2, dp_enabled=False, epsilon=1.0))


def test_canary_summary_shows_a_rejected_claimed_curve_as_a_violation() -> None:
    # A white-box audit whose f-DP test rejects the claim, with its bound below the claimed ε.
    test = {"violation": True, "p_value": 7.7e-7, "confidence": 0.95, "correct": 190,
            "guesses": 200, "allowed_correct": 171, "family_epsilon_lower_bound": 2.4,
            "family": "DP-SGD at sample rate 0.3333, 90 steps, any noise (prv accountant)"}
    record = {
        **_canary(0.75, dp_enabled=True, epsilon=1.0), "attack": "dp_audit_all_iterates",
        "confidence": 0.95, "threat_model": "all_iterates", "violation": True,
        "claim_test": test,
    }
    summary = canary_summary(record)
    assert summary.startswith("dp_audit_all_iterates (one run, threat model: all iterates,")
    assert "at 95% confidence" in summary
    assert ("claimed privacy curve: REJECTED (p=7.7e-07, 95% confidence; 190 of 200 guesses "
            "correct, the claim allows 171)") in summary
    assert ("ε lower bound 2.40 if the run's privacy curve is that of DP-SGD at sample rate "
            "0.3333, 90 steps, any noise (prv accountant) (an assumption") in summary
    assert summary.endswith("accountant's ε=1.00: VIOLATION")
    # A record of an older auditml has no counts and no family bound: still readable.
    older = {**record, "claim_test": {"violation": True, "p_value": 7.7e-7, "confidence": 0.975}}
    assert "REJECTED (p=7.7e-07, 97.5% confidence)" in canary_summary(older)


def test_the_audit_s_own_verdict_decides_even_when_its_bound_passes_the_claim() -> None:
    # The white-box verdict is its claim test alone (95 %); OR-ing in the ε bound would make it
    # a second test and double the false alarms. A bound above the claim without a rejection
    # cannot come out of the audit, but a record on disk is untrusted: its verdict is shown.
    record = {
        **_canary(1.2, dp_enabled=True, epsilon=1.0), "attack": "dp_audit_all_iterates",
        "threat_model": "all_iterates", "violation": False,
        "claim_test": {"violation": False, "p_value": 0.3, "confidence": 0.95},
    }
    assert canary_summary(record).endswith("accountant's ε=1.00: consistent")
    # Without a verdict of its own (a black-box record), the bound decides.
    assert canary_summary({**record, "violation": None}).endswith("VIOLATION")


def test_a_rejected_claimed_curve_is_a_violation_even_below_the_claimed_epsilon() -> None:
    # The f-DP test can reject the whole curve while every ε bound stays under the claimed ε.
    verdict = run_verdict(
        dp_enabled=True, claimed_epsilon=1.0, bounds=[BoundSource("dp_audit_all_iterates", 0.75,
                                                                  0.975)],
        strongest=STRONGEST, rejections=["dp_audit_all_iterates"],
    )
    assert verdict.kind is VerdictKind.VIOLATION
    assert ("dp_audit_all_iterates audit contradicts the privacy the accountant claims"
            in verdict.headline)
    without = run_verdict(
        dp_enabled=True, claimed_epsilon=1.0,
        bounds=[BoundSource("dp_audit_all_iterates", 0.75, 0.975)], strongest=STRONGEST,
    )
    assert without.kind is VerdictKind.CONSISTENT


def test_canary_summary_shows_the_mechanism_check() -> None:
    check = {"violation": True, "confidence": 0.99,
             "noise": {"claimed": 1.0, "estimate": 1.008, "upper": 1.014, "observations": 101300,
                       "confidence": 0.995},
             "sample_rate": {"claimed": 0.025, "estimate": 0.05113, "lower": 0.04935,
                             "batches": 100, "dataset_size": 1000, "confidence": 0.995},
             "family_epsilon_lower_bound": 3.35,
             "family": "DP-SGD with Poisson sampling at a rate ≥ 0.04935, 100 steps, clipping "
                       "norm 1 and noise multiplier ≤ 1.014 (true ε from below: PRV)"}
    record = {**_canary(0.75, dp_enabled=True, epsilon=2.19), "threat_model": "all_iterates",
              "violation": True, "mechanism_check": check}
    summary = canary_summary(record)
    assert ("mechanism check (99% confidence): noise multiplier ≤ 1.014 (estimate 1.008 from "
            "101300 observations; the accountant assumed 1.000); sampling rate ≥ 0.04935 "
            "(estimate 0.05113 from 100 batches; the accountant assumed 0.025): VIOLATION"
            ) in summary
    assert ("ε lower bound 3.35 if the run is DP-SGD with Poisson sampling at a rate ≥ 0.04935, "
            "100 steps, clipping norm 1 and noise multiplier ≤ 1.014 (true ε from below: PRV) "
            "(an assumption") in summary
    no_rate = canary_summary({**record, "mechanism_check": {**check, "sample_rate": None}})
    assert "the accountant assumed 1.000): VIOLATION" in no_rate and "batches" not in no_rate
    assert "mechanism check" not in canary_summary({**record, "mechanism_check": None})
    escaped = {"tensor": 3, "tensors": 4, "canaries": 5, "estimate": 9.25, "lower": 7.73,
               "p_value": 3e-6, "sampled": 32, "observations": 500, "confidence": 0.998}
    shown = canary_summary({**record, "mechanism_check": {**check, "sensitivity": escaped}})
    assert ("the accountant assumed 0.025); a sampled canary moves the sum by ≥ 7.73 × the "
            "clipping norm (estimate 9.25 from 32 sampled pairs, trainable tensor 3 of 4; "
            "clipping allows 1): VIOLATION") in shown
    pooled = canary_summary({**record, "mechanism_check": {
        **check, "sensitivity": {**escaped, "tensor": None}}})
    assert "32 sampled pairs; clipping allows 1)" in pooled
    probed = canary_summary({**record, "mechanism_check": {
        **check, "sensitivity": {**escaped, "tensor": None, "probe": True, "estimate": 2.14,
                                 "lower": 1.82, "sampled": 196}}})
    assert ("the accountant assumed 0.025); the clipping probe moves the sum by ≥ 1.82 × the "
            "clipping norm (estimate 2.14 from 196 probed steps; per-example clipping allows 1, "
            "clipping the summed gradient allows 2): VIOLATION") in probed


def test_canary_summary_lists_the_assumptions_and_names_the_broken_ones(
    shuffled_checks: list[Any],
) -> None:
    checks = [check.model_dump() for check in shuffled_checks]
    record = {**_canary(0.3, dp_enabled=True, epsilon=2.0), "violation": True,
              "assumptions": checks}
    lines = canary_summary(record).splitlines()
    assert lines[-1] == ("  accountant's ε=2.00: VIOLATION — the claim does not apply (loader)")
    assert ("  the accountant's assumptions (1 passed, 1 FAILED, 1 warning, 1 not checked); "
            "passed: steps") in lines
    assert "    FAILED loader: the loader draws shuffled fixed-size batches of 128 <b>" in lines
    assert any(line.startswith("    warning noise_source:") for line in lines)
    assert any(line.startswith("    not checked hidden_state:") for line in lines)
    assert not any("steps:" in line for line in lines)  # a passed check is named, not detailed
    plain = canary_summary({**record, "assumptions": None, "violation": False})
    assert "assumptions" not in plain and plain.endswith("consistent")


@pytest.mark.parametrize(("bound", "words"), [
    ({"threshold_policy": "bonferroni_hull", "candidates": 6},
     "level shared among the 6 corners of the ROC curve's convex hull"),
    ({"threshold_policy": "bonferroni", "candidates": 438},
     "level shared among 438 candidate thresholds"),
    ({"threshold_policy": "split"},
     "threshold chosen on one half of the examples, bound on the other"),
    ({"threshold_policy": "multi_split",
      "threshold_strategy": {"name": "multi_split", "splits": 100}},
     "median over 100 random splits"),
    ({"threshold_policy": "explicit"}, "a threshold fixed in advance"),
    ({}, None),
])
def test_threshold_words_say_how_each_bound_chose_its_threshold(
    bound: dict[str, object], words: str | None
) -> None:
    """The default changed from split halves to the ROC hull's corners; a page that said 'chosen
    on one half' for every bound would misdescribe most of them."""
    from auditml.reporting.verdict import threshold_words

    assert threshold_words(bound) == words
