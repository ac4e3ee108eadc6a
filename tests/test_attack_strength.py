"""``benchmarks/attack_strength.py``: its aggregation over seeds, and one tiny run end to end.

The figures themselves are not checked (they depend on training), only that each cell is the
mean of its seeds' values recomputed from the scores, inside its interval, and that the tables
hold every registered attack and every swept model count.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from rich.console import Console

from auditml.attacks import ATTACKS, attacks_of
from auditml.metrics import roc_auc, tpr_at_fprs
from benchmark_scripts import load_benchmark


def _benchmark() -> ModuleType:
    return load_benchmark("attack_strength")


def _check_summaries(summaries: list, measurements: list) -> None:  # type: ignore[type-arg]
    for summary in summaries:
        group = [m for m in measurements if (m.target, m.variant, m.models) == (
            summary.target, summary.variant, summary.models)]
        assert sorted(summary.seeds) == sorted(m.seed for m in group)
        aucs = [roc_auc(m.scores, m.is_member) for m in group]
        assert summary.auc.mean == pytest.approx(np.mean(aucs), abs=1e-12)
        assert summary.auc.low <= summary.auc.mean <= summary.auc.high
        for fpr, estimate in summary.tpr_at_fpr.items():
            tprs = [tpr_at_fprs(m.scores, m.is_member, [fpr])[0] for m in group]
            assert estimate.mean == pytest.approx(np.mean(tprs), abs=1e-12)
            assert estimate.low <= estimate.mean <= estimate.high


def test_summaries_are_means_over_seeds_inside_their_intervals() -> None:
    bench = _benchmark()
    rng = np.random.default_rng(0)
    is_member = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    measurements = []
    for seed, strength in enumerate((0.2, 0.8, 1.5)):  # three seeds of different strength
        for variant, shift in ((bench.Variant("mia_a", {}, False), 0.0),
                               (bench.Variant("mia_a", {"k": 1}, True), 0.5)):
            scores = rng.normal(size=600) + (strength + shift) * is_member
            measurements.append(bench.Measurement(
                "toy", variant, 4, seed, roc_auc(scores, is_member),
                dict(zip(bench.FPRS, tpr_at_fprs(scores, is_member, bench.FPRS), strict=True)),
                scores, is_member, 0.0, {}))
    summaries = bench.summarize(measurements, resamples=200)
    assert [(s.variant.label, s.seeds) for s in summaries] == [
        ("default", [0, 1, 2]), ("k=1", [0, 1, 2])]
    _check_summaries(summaries, measurements)
    # The tuned variant is stronger on every seed, and its mean shows it.
    assert summaries[1].auc.mean > summaries[0].auc.mean
    with pytest.raises(ValueError, match="different seeds"):
        bench.summarize(measurements[:-1], resamples=200)


@pytest.mark.slow
def test_a_tiny_digits_run_gives_every_attack_and_model_count(tmp_path: Path) -> None:
    bench = _benchmark()
    setting = bench.TargetSetting("digits", "cnn_8x8", train_size=40, epochs=2,
                                  population_size=200)
    result = bench.run_benchmark(
        {"digits": setting}, [0, 1], [2, 4], work_dir=tmp_path, data_dir=tmp_path,
        shadow_models=2, console=Console(quiet=True), resamples=100,
    )
    _check_summaries(result.summaries, result.measurements)
    defaults = {s.variant.attack for s in result.summaries if not s.variant.tuned}
    assert defaults == set(attacks_of("classification"))
    for summary in result.summaries:
        assert summary.seeds == [0, 1]
    swept = [s for s in result.summaries if "reference" in ATTACKS.get(s.variant.attack).requires]
    assert swept and all(
        {s.models for s in swept if s.variant == variant} == {2, 4}
        for variant in {(s.variant.attack, s.variant.label): s.variant for s in swept}.values()
    )
    first, sweep = bench.target_tables("digits", result.summaries, [2, 4])
    assert [column.header for column in first.columns] == [
        "attack", "setting", "models", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "s"]
    # One row per variant: those without reference models once, the others at 4 (the largest).
    assert first.row_count == len({(s.variant.attack, s.variant.label) for s in result.summaries})
    assert [column.header for column in sweep.columns] == [
        "attack", "setting", "2 models", "4 models"]
    assert sweep.row_count == len({(s.variant.attack, s.variant.label) for s in swept})
    # The run directories are kept: a rerun trains nothing and measures the same.
    again = bench.run_benchmark(
        {"digits": setting}, [0, 1], [2, 4], work_dir=tmp_path, data_dir=tmp_path,
        shadow_models=2, console=Console(quiet=True), resamples=100,
    )
    assert all(seconds["target"] == 0.0 for seconds in again.seconds["digits"].values())
    assert [s.auc.mean for s in again.summaries] == pytest.approx(
        [s.auc.mean for s in result.summaries])
