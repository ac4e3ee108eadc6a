"""DPComparison: the DP tutorial's call, exactly as the tutorial writes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from auditml.errors import RunDirectoryError
from auditml.reporting import Comparison
from auditml.reporting.dp_comparison import DPComparison


@pytest.fixture
def tutorial_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_run: Callable[..., Path]
) -> None:
    monkeypatch.chdir(tmp_path)
    make_run(Path("results"), "dp_tutorial_baseline", val_acc=0.988, shift=1.0)
    make_run(
        Path("results"), "dp_tutorial_eps5", dp=True, epsilon=4.93, target_epsilon=5.0,
        noise_multiplier=0.9, delta=1e-5, val_acc=0.95, shift=0.1,
    )


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
    markdown = result.report_md.read_text(encoding="utf-8")
    assert "| No DP | dp_tutorial_baseline | digits, 200 / 200 | ∞ | — | " in markdown
    assert "| 98.8% |" in markdown


@pytest.mark.usefixtures("tutorial_runs")
def test_an_unaudited_dp_run_names_the_command(make_run: Callable[..., Path]) -> None:
    make_run(
        Path("results"), "dp_tutorial_eps1", dp=True, epsilon=0.9, delta=1e-5, val_acc=0.9,
        audit=False,
    )
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
