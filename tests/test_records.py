"""The audit records are typed all the way down: every part a writer produces is declared and
read back key for key, and a tampered value is refused when a run directory is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.audit.results import summarize_attack
from auditml.metrics import (
    claimed_tradeoff,
    epsilon_lower_bound,
    fdp_epsilon_audit,
    members_singled_out,
)
from auditml.metrics.dp.thresholds import BonferroniAllScores, Explicit, MultiSplit, Split
from auditml.metrics.dp.trials_claim_test import tradeoff_claim_test
from auditml.records import (
    AttackRecord,
    CanaryClaimTestRecord,
    CanaryRecord,
    EpsilonBoundRecord,
    GdpEstimateRecord,
    GdpLowerBoundRecord,
    IntervalsRecord,
    ManyRunsClaimTestRecord,
    ManyRunsRecord,
    MechanismCheckRecord,
    MembershipMetricsRecord,
    OneRunBoundRecord,
    RunFacts,
    SingledOutRecord,
)
from auditml.run_directory import RunDirectory, RunDirectoryError, read_many_runs

_FACTS = RunFacts(experiment_name="x", dp_enabled=True, epsilon=2.0, delta=1e-5)


def _scores(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_member = rng.random(n) < 0.5
    return rng.normal(size=n) + 1.5 * is_member, is_member


class _Attack:
    name = "mia_threshold"

    def settings(self) -> dict[str, Any]:
        return {"metric": "loss", "fprs": [0.001, 0.01], "nested": {"k": 3}}

    def fitted_values(self) -> dict[str, Any]:
        return {"variance": "global", "variance_reason": None}


def _attack(run: RunDirectory) -> AttackRecord:
    """An attack record as the audit writes it (summarize_attack, then the run directory)."""
    scores, is_member = _scores()
    outcome = summarize_attack(
        _Attack(), scores, is_member,  # type: ignore[arg-type]
        labels=np.zeros(len(scores), np.int64), example_ids=np.arange(len(scores)), seed=0,
        compute={"seconds": 0.1, "reference_models": 0}, delta=1e-5, run_facts=_FACTS,
    )
    run.path.mkdir(parents=True, exist_ok=True)
    return run.write_attack(outcome.record, scores, is_member)


_CLAIM = {"violation": False, "p_value": 0.4, "confidence": 0.9, "correct": 40, "guesses": 50,
          "allowed_correct": 45, "candidates": 1, "claim": "ε=2 curve",
          "epsilon_lower_bound": 0.5, "family_epsilon_lower_bound": 0.7,
          "family": "DP-SGD", "family_noise_scale": None}
_CHECK = {"violation": False, "confidence": 0.99,
          "noise": {"claimed": 1.0, "estimate": 1.0, "upper": 1.01, "observations": 500,
                    "confidence": 0.995},
          "sample_rate": {"claimed": 0.05, "estimate": 0.051, "lower": 0.049, "batches": 100,
                          "dataset_size": 1000, "confidence": 0.995},
          "sensitivity": {"tensor": None, "canaries": 0, "tensors": 4, "tests": 5, "probe": True,
                          "estimate": 1.0, "lower": 0.9, "p_value": 0.01, "sampled": 32,
                          "observations": 64, "confidence": 0.998},
          "family_epsilon_lower_bound": 0.2, "family": "DP-SGD with Poisson sampling"}


def _canary(run: RunDirectory) -> CanaryRecord:
    """A white-box canary record with every key the writers produce."""
    scores, included = _scores(300, seed=1)
    bound = fdp_epsilon_audit(scores, included, delta=1e-5, confidence=0.95).to_dict()
    record = CanaryRecord(
        attack="dp_audit_all_iterates", canaries=300, included=int(included.sum()), delta=1e-5,
        confidence=0.95, epsilon_lower_bound=bound["epsilon"], best_score="all_iterates",
        max_epsilon=bound["max_epsilon"], by_score={"all_iterates": bound}, run=_FACTS,
        threat_model="all_iterates", claim_test=_CLAIM, mechanism_check=_CHECK, violation=False,
    )
    run.write_canary(record.attack, record)
    return record


def _many_runs(path: Path) -> ManyRunsRecord:
    scores, included = _scores(60, seed=2)
    curve = claimed_tradeoff([(1.0, 1.0, 1)], mechanism="prv")
    record = ManyRunsRecord(
        experiment_name="x", runs=60, included=int(included.sum()), delta=1e-5,
        claimed_epsilon=2.0, confidence=0.95,
        epsilon_lower_bound=epsilon_lower_bound(scores, included, delta=1e-5,
                                                threshold=Split(seed=0)).to_dict(),
        claim_test=tradeoff_claim_test(scores, included, curve, confidence=0.95,
                                       threshold=Split(seed=0)).to_dict(),
        violation=False, scores=scores.tolist(), coins=included.tolist(),
    )
    path.write_text(record.model_dump_json())
    return record


def test_the_parts_are_typed_and_read_back_key_for_key(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run")
    _attack(run)
    raw = json.loads(run.attack_path("mia_threshold").read_text())
    record = run.read_attack("mia_threshold")
    assert isinstance(record.epsilon_lower_bound, EpsilonBoundRecord)
    assert isinstance(record.gdp_estimate, GdpEstimateRecord)
    assert isinstance(record.gdp_lower_bound, GdpLowerBoundRecord)
    assert isinstance(record.intervals, IntervalsRecord)
    assert isinstance(record.singled_out, SingledOutRecord)
    scores, is_member = _scores()
    assert record.members_singled_out() == members_singled_out(scores, is_member)
    metrics = record.membership_metrics()
    assert (metrics.tied_at_top, metrics.tied_at_top_nonmembers) == (1, 0)
    assert record.epsilon_lower_bound.threshold_strategy is not None
    assert record.settings == _Attack().settings()
    assert record.model_dump(mode="json") == raw  # the same keys, the same values
    assert json.dumps(record.model_dump(mode="json")) == json.dumps(raw)  # and the same order

    canary = _canary(run)
    raw = json.loads(run.canary_path(canary.attack).read_text())
    read = run.read_canary(canary.attack)
    assert isinstance(read.by_score["all_iterates"], OneRunBoundRecord)
    assert isinstance(read.claim_test, CanaryClaimTestRecord)
    assert isinstance(read.mechanism_check, MechanismCheckRecord)
    assert read.mechanism_check.sensitivity is not None and read.mechanism_check.sensitivity.probe
    assert raw["claim_test"] == _CLAIM and raw["mechanism_check"] == _CHECK
    assert read.model_dump(mode="json") == raw

    path = tmp_path / "audit_dp.json"
    _many_runs(path)
    raw = json.loads(path.read_text())
    many = read_many_runs(path)
    assert isinstance(many.claim_test, ManyRunsClaimTestRecord)
    assert many.model_dump(mode="json") == raw


@pytest.mark.parametrize("strategy", [BonferroniAllScores(), Split(seed=3), MultiSplit(splits=9),
                                      Explicit(threshold=0.5)])
def test_every_threshold_strategy_is_recorded_as_written(strategy: Any) -> None:
    scores, is_member = _scores()
    written = epsilon_lower_bound(scores, is_member, delta=1e-5, threshold=strategy).to_dict()
    assert EpsilonBoundRecord.model_validate(written).as_written() == json.loads(
        json.dumps(written))


def test_records_of_older_versions_still_read() -> None:
    older_bound = {"epsilon": 0.4, "alpha": 0.05, "delta": 1e-5, "method": "clopper_pearson",
                   "threshold_policy": "split", "threshold": 0.3, "false_positives": 3,
                   "negatives": 100, "false_negatives": 40, "positives": 100}
    assert EpsilonBoundRecord.model_validate(older_bound).as_written() == older_bound
    older_gdp = {"mu": 1.2, "epsilon": 5.1, "delta": 1e-5, "threshold": 0.3, "note": "estimate"}
    assert GdpEstimateRecord.model_validate(older_gdp).model_dump(mode="json") == older_gdp
    older_test = {"violation": True, "p_value": 7.7e-7, "confidence": 0.975}
    assert CanaryClaimTestRecord.model_validate(older_test).model_dump() == older_test
    older_metrics = {"auc": 0.6, "tpr_at_fpr": {"0.01": 0.05}, "advantage": 0.1,
                     "calibrated_accuracy": {"threshold": 0.5, "accuracy": 0.55,
                                             "calibration_size": 100, "evaluation_size": 100},
                     "members": 100, "nonmembers": 100}  # before the tie at the top was counted
    older = MembershipMetricsRecord.model_validate(older_metrics)
    assert older.model_dump() == older_metrics and older.membership_metrics().tied_at_top is None
    older_check = {key: value for key, value in _CHECK.items()
                   if key not in ("sample_rate", "sensitivity")}
    assert MechanismCheckRecord.model_validate(older_check).model_dump() == older_check


@pytest.mark.parametrize(("where", "value", "says"), [
    (["claim_test", "p_value"], "x", "claim_test.p_value"),
    (["claim_test", "p_value"], 1.5, "claim_test.p_value"),
    (["claim_test", "violation"], "yes", "claim_test.violation"),
    (["claim_test", "correct"], 4.5, "claim_test.correct"),
    (["by_score", "all_iterates", "epsilon"], None, "by_score.all_iterates.epsilon"),
    (["by_score", "all_iterates", "correct"], "40", "by_score.all_iterates.correct"),
    (["by_score", "all_iterates", "surprise"], 1, "by_score.all_iterates.surprise"),
    (["best_score"], "loss", "best_score .loss. is not one of"),
    (["mechanism_check", "sample_rate", "lower"], "0.05", "mechanism_check.sample_rate.lower"),
    (["mechanism_check", "sensitivity", "probe"], "yes", "mechanism_check.sensitivity.probe"),
    (["mechanism_check", "noise"], None, "mechanism_check.noise"),
])
def test_a_tampered_canary_record_is_refused(
    tmp_path: Path, where: list[str], value: Any, says: str
) -> None:
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    record = _canary(run)
    path = run.canary_path(record.attack)
    data = json.loads(path.read_text())
    part = data
    for key in where[:-1]:
        part = part[key]
    if value is None and where[-1] == "epsilon":
        del part[where[-1]]
    else:
        part[where[-1]] = value
    path.write_text(json.dumps(data))
    with pytest.raises(RunDirectoryError, match=f"is corrupt \\(.*{says}") as error:
        run.read_canary(record.attack)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("where", "value", "says"), [
    (["epsilon_lower_bound", "epsilon"], "1.5", "epsilon_lower_bound.epsilon"),
    (["epsilon_lower_bound", "alpha"], -0.05, "epsilon_lower_bound.alpha"),
    (["epsilon_lower_bound", "tail"], "both", "epsilon_lower_bound.tail"),
    (["epsilon_lower_bound", "threshold_strategy", "splits"], "9",
     "epsilon_lower_bound.threshold_strategy.splits"),
    (["gdp_estimate", "interval"], [0.0, 0.0001], "gdp_estimate"),
    (["gdp_estimate", "interval"], [0.1], "gdp_estimate"),
    (["gdp_lower_bound", "epsilon"], float("nan"), "gdp_lower_bound.epsilon"),
    (["intervals", "auc"], [0.9, 0.1], "intervals"),
    (["singled_out", "members_found"], 10_000, "singled_out"),
    (["singled_out", "tpr_interval"], [0.5], "singled_out"),
    (["singled_out", "fpr_interval"], [0.2, 0.1], "singled_out"),
    (["metrics", "tied_at_top_nonmembers"], 2, "metrics"),
    (["metrics", "tied_at_top"], 0, "metrics.tied_at_top"),
    (["settings", "metric"], {1, 2}, "settings"),
])
def test_a_tampered_attack_record_is_refused(
    tmp_path: Path, where: list[str], value: Any, says: str
) -> None:
    run = RunDirectory(tmp_path / "run")
    _attack(run)
    path = run.attack_path("mia_threshold")
    data = json.loads(path.read_text())
    data["epsilon_lower_bound"]["threshold_strategy"] = {"name": "multi_split", "splits": 9,
                                                         "fraction": 0.5, "seed": 0}
    part = data
    for key in where[:-1]:
        part = part[key]
    part[where[-1]] = value
    if isinstance(value, set):  # not JSON: a record given in Python
        with pytest.raises(ValueError, match=says):
            AttackRecord.model_validate(data)
        return
    path.write_text(json.dumps(data))
    with pytest.raises(RunDirectoryError, match=f"is corrupt \\({says}"):
        run.read_attack("mia_threshold")


@pytest.mark.parametrize(("where", "value"), [
    (["claim_test", "confidence"], 2.0), (["claim_test", "violation"], "no"),
    (["epsilon_lower_bound", "epsilon"], "0.3"), (["epsilon_lower_bound", "alpha"], -1),
])
def test_a_tampered_many_runs_record_is_refused(
    tmp_path: Path, where: list[str], value: Any
) -> None:
    path = tmp_path / "audit_dp.json"
    _many_runs(path)
    data = json.loads(path.read_text())
    data[where[0]][where[1]] = value
    path.write_text(json.dumps(data))
    with pytest.raises(RunDirectoryError, match=".".join(where)):
        read_many_runs(path)
