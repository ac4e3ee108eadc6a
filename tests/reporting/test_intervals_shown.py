"""Bootstrap intervals and the GDP lower bound reach every report: run page, its JSON, the
comparison (report.md and terminal) and the audit's terminal table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from auditml.formatting import format_auc, format_rate_interval
from auditml.reporting import compare_runs, comparison_table, write_run_report
from auditml.reporting.console import audit_table
from auditml.run_directory import RunDirectory

ATTACK = "mia_threshold"


def test_intervals_and_the_gdp_bound_are_shown_everywhere(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    run = make_run(tmp_path / "results", "baseline", val_acc=0.98, shift=1.0)
    add_audit(run, ATTACK, 1.0, intervals=True)
    record = RunDirectory(run).read_attack(ATTACK)
    intervals = record.membership_intervals()
    assert intervals is not None and record.gdp_lower_bound is not None
    metrics = record.membership_metrics()
    auc_cell = format_auc(metrics.auc, intervals.auc)
    tpr_cell = format_rate_interval(metrics.tpr_at_fpr[0.01], intervals.tpr_at_fpr[0.01])
    assert "[" in auc_cell and "[" in tpr_cell

    report = write_run_report(run, tmp_path / "page")
    page = report.report_html.read_text(encoding="utf-8")
    assert auc_cell in page and tpr_cell in page
    assert f"≥ {record.gdp_lower_bound.epsilon:.2f} if Gaussian" in page
    assert record.gdp_estimate.interval is not None
    low, high = record.gdp_estimate.interval
    gdp_cell = f"{record.gdp_estimate.epsilon:.2f} [{low:.2f}, {high:.2f}]"
    assert gdp_cell in page
    assert "bootstrap (BCa) interval" in page
    saved = json.loads(report.run_report_json.read_text(encoding="utf-8"))["attacks"][0]
    assert saved["auc_interval"] == list(intervals.auc)
    assert saved["gdp_epsilon_lower_bound"] == record.gdp_lower_bound.epsilon

    comparison = compare_runs([run], tmp_path / "comparison")
    markdown = comparison.report_md.read_text(encoding="utf-8")
    def escaped(cell: str) -> str:  # markdown escapes the brackets; they render as brackets
        return cell.replace("[", "\\[").replace("]", "\\]")

    assert escaped(auc_cell) in markdown and escaped(tpr_cell) in markdown
    console = Console(record=True, width=300)
    console.print(comparison_table(comparison))
    console.print(audit_table([record.model_dump(mode="json")]))
    text = console.export_text()
    assert text.count(auc_cell) == 2 and tpr_cell in text and gdp_cell in text
    assert "bootstrap (BCa) interval" in text


def test_records_from_before_the_intervals_are_read_and_shown(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    from auditml.records import AttackRecord

    run = make_run(tmp_path / "results", "baseline", val_acc=0.98, shift=1.0)
    add_audit(run, ATTACK, 1.0, intervals=True)
    data = RunDirectory(run).read_attack(ATTACK).model_dump(mode="json")
    # As written before 2026-12: μ measured at a threshold, no intervals, no GDP bound.
    older = {key: value for key, value in data.items()
             if key not in ("intervals", "gdp_lower_bound")}
    older["gdp_estimate"] = {"mu": 1.2, "epsilon": 5.1, "delta": 1e-5, "threshold": 0.3,
                             "note": "An estimate, not a bound"}
    record = AttackRecord.model_validate(older)
    assert record.membership_intervals() is None and record.gdp_lower_bound is None
    text_console = Console(record=True, width=300)
    text_console.print(audit_table([record.model_dump(mode="json")]))
    text = text_console.export_text()
    assert f"{record.membership_metrics().auc:.3f} " in text and "5.10" in text


def test_a_gdp_interval_that_does_not_hold_its_estimate_is_refused(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    """A run directory is untrusted: an edited interval would be shown as the audit's."""
    import pydantic

    from auditml.records import AttackRecord

    run = make_run(tmp_path / "results", "baseline", val_acc=0.98, shift=1.0)
    add_audit(run, ATTACK, 1.0, intervals=True)
    data = RunDirectory(run).read_attack(ATTACK).model_dump(mode="json")
    for bad in ([9.0, 10.0], [0.0], ["a", 1.0], [-1.0, 99.0]):
        data["gdp_estimate"]["interval"] = bad
        with pytest.raises(pydantic.ValidationError, match="interval"):
            AttackRecord.model_validate(data)
