"""DPComparison: the DP tutorial's call, exactly as the tutorial writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from auditml.config import parse_config
from auditml.data.split import make_split
from auditml.errors import RunDirectoryError
from auditml.metrics import membership_metrics
from auditml.reporting import Comparison
from auditml.reporting.dp_comparison import DPComparison
from auditml.run_directory import RunDirectory

ATTACK = "mia_threshold"


def make_run(path: Path, *, dp: bool, val_acc: float, shift: float, audit: bool = True) -> None:
    run = RunDirectory(path)
    run.write_config(parse_config({"experiment_name": path.name}))
    run.write_model(torch.nn.Linear(2, 2), "mlp")
    run.write_split(make_split(np.arange(1797) % 10, 100, 0, validation_from_pool=True))
    metrics: dict[str, Any] = {
        "experiment_name": path.name,
        "dataset": "digits",
        "val_acc": val_acc,
        "train_acc": val_acc,
        "dp_enabled": dp,
        "epsilon": 4.93 if dp else None,
        "target_epsilon": 5.0 if dp else None,
        "delta": 1e-5 if dp else None,
        "noise_multiplier": 0.9 if dp else None,
        "accountant": "prv" if dp else None,
    }
    run.write_metrics(metrics)
    if not audit:
        return
    levels = np.linspace(-2.0, 2.0, 100)
    scores = np.concatenate([levels + shift, levels])
    is_member = np.repeat([True, False], 100)
    run.write_scores(ATTACK, scores, is_member)
    run.write_audit_result(
        ATTACK,
        {
            "attack": ATTACK,
            "settings": {"metric": "loss"},
            "counts": {"members": 100, "nonmembers": 100},
            "metrics": membership_metrics(scores, is_member).to_dict(),
            "scores_file": f"{ATTACK}_scores.npz",
            "roc_plot": f"{ATTACK}_roc.png",
            "run": {
                key: metrics[key]
                for key in ("experiment_name", "dp_enabled", "epsilon", "delta", "val_acc")
            },
        },
    )


@pytest.fixture
def tutorial_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_run(Path("results/dp_tutorial_baseline"), dp=False, val_acc=0.988, shift=1.0)
    make_run(Path("results/dp_tutorial_eps5"), dp=True, val_acc=0.95, shift=0.1)


@pytest.mark.usefixtures("tutorial_runs")
def test_the_tutorial_call_writes_the_report() -> None:
    cmp = DPComparison(
        baseline_dir="results/dp_tutorial_baseline", dp_dir="results/dp_tutorial_eps5"
    )
    result = cmp.generate_report("results/dp_comparison")

    assert isinstance(result, Comparison)
    assert result.out_dir == Path("results/dp_comparison")
    assert [row.label for row in result.rows] == ["No DP", "ε=5"]
    assert [row.run_name for row in result.rows] == ["dp_tutorial_baseline", "dp_tutorial_eps5"]
    assert result.rows[1].epsilon == 4.93
    for path in (
        result.report_md,
        result.report_html,
        result.comparison_json,
        result.roc_overlay_png,
        result.accuracy_vs_leakage_png,
    ):
        assert path.is_file()
    assert "| No DP | dp_tutorial_baseline | ∞ | — | — | 98.8% |" in result.report_md.read_text(
        encoding="utf-8"
    )


@pytest.mark.usefixtures("tutorial_runs")
def test_an_unaudited_dp_run_names_the_command(tmp_path: Path) -> None:
    make_run(Path("results/dp_tutorial_eps1"), dp=True, val_acc=0.9, shift=0.0, audit=False)
    cmp = DPComparison(
        baseline_dir="results/dp_tutorial_baseline", dp_dir="results/dp_tutorial_eps1"
    )
    with pytest.raises(RunDirectoryError) as error:
        cmp.generate_report("results/dp_comparison")
    assert (
        "`auditml audit --config results/dp_tutorial_eps1/config.yaml --attack mia_threshold`"
        in str(error.value)
    )
    assert not Path("results/dp_comparison").exists()


def test_constructing_reads_nothing(tmp_path: Path) -> None:
    cmp = DPComparison(baseline_dir=tmp_path / "missing", dp_dir=tmp_path / "also_missing")
    assert cmp.baseline_dir == tmp_path / "missing"
    assert "DPComparison(baseline_dir=" in repr(cmp)
