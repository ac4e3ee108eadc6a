"""compare_runs: rows copied from the run files, the report written whole or not at all."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from tests.reporting.conftest import planted_scores

from auditml.errors import AuditMLError, RunDirectoryError
from auditml.records import DataFileRecord
from auditml.reporting import (
    Comparison,
    ComparisonRow,
    ReportError,
    compare_runs,
    comparison_table,
)
from auditml.reporting.columns import TABLE_HEADERS, columns_for, table_cells
from auditml.run_directory import RunDirectory

ATTACK = "mia_threshold"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def two_runs(tmp_path: Path, make_run: Callable[..., Path]) -> list[Path]:
    baseline = make_run(tmp_path / "results", "baseline", val_acc=0.9876, shift=1.0)
    private = make_run(
        tmp_path / "results",
        "eps5",
        dp=True,
        epsilon=4.87,
        target_epsilon=5.0,
        noise_multiplier=1.1,
        delta=2e-4,
        val_acc=0.93,
        shift=0.2,
    )
    return [baseline, private]


@pytest.fixture
def comparison(two_runs: list[Path], tmp_path: Path) -> Comparison:
    return compare_runs(two_runs, tmp_path / "report")


# -- rows ---------------------------------------------------------------------------------------


def test_rows_copy_the_numbers_in_the_run_files(
    comparison: Comparison, two_runs: list[Path]
) -> None:
    assert [row.label for row in comparison.rows] == ["No DP", "ε=5"]
    for row, path in zip(comparison.rows, two_runs, strict=True):
        run = RunDirectory(path)
        metrics = run.read_metrics()
        audit = run.audit_results()[ATTACK]["metrics"]
        assert row.run_name == metrics["experiment_name"]
        assert row.run_dir == str(path)
        assert row.dp_enabled == metrics["dp_enabled"]
        assert row.epsilon == metrics["epsilon"]
        assert row.delta == metrics["delta"]
        assert row.val_acc == metrics["val_acc"]
        assert row.auc == audit["auc"]
        assert row.tpr_at_1pct_fpr == audit["tpr_at_fpr"]["0.01"]


def test_a_dp_run_without_target_epsilon_is_labelled_by_its_noise(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    run = make_run(tmp_path, "sigma", dp=True, epsilon=7.5, noise_multiplier=1.1, delta=1e-5)
    [row] = compare_runs([run], tmp_path / "report").rows
    assert row.label == "σ=1.1"


def test_any_number_of_runs_keeps_the_given_order(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    runs = [
        make_run(tmp_path, "c", dp=True, epsilon=0.9, target_epsilon=1, delta=1e-5),
        make_run(tmp_path, "a"),
        make_run(tmp_path, "b", dp=True, epsilon=7.9, target_epsilon=8, delta=1e-5),
    ]
    result = compare_runs([str(path) for path in runs], tmp_path / "report")
    assert [row.run_name for row in result.rows] == ["c", "a", "b"]
    assert [row.label for row in result.rows] == ["ε=1", "No DP", "ε=8"]
    assert result.run_dirs == runs


# -- the table ----------------------------------------------------------------------------------


def _row(**changes: Any) -> ComparisonRow:
    values: dict[str, Any] = {
        "label": "ε=5",
        "run_name": "eps5",
        "run_dir": "results/eps5",
        "dp_enabled": True,
        "epsilon": 4.8712,
        "delta": 2e-4,
        "val_acc": 0.98765,
        "auc": 0.63249,
        "tpr_at_1pct_fpr": 0.0304,
        "strongest_attack": "mia_lira",
        "strongest_auc": 0.7012,
        "strongest_tpr_at_1pct_fpr": 0.1234,
        "epsilon_lower_bound": 0.3104,
        "dataset": "digits",
        "members": 1200,
        "nonmembers": 800,
    }
    return ComparisonRow(**{**values, **changes})


def test_table_cells_are_formatted_as_documented() -> None:
    assert TABLE_HEADERS == (
        "Model", "Run", "Data (audited)", "ε (accountant)", "δ", "ε lower bound (audit)",
        "Canary audit", "Val Acc", "MIA AUC", "TPR@1%FPR", "Strongest attack", "Its AUC",
        "Its TPR@1%FPR",
    )
    assert table_cells(_row()) == [
        "ε=5", "eps5", "digits, 1,200 / 800", "4.87", "2e-04", "0.31", "—", "98.8%", "0.632",
        "3.0%", "mia_lira", "0.701", "12.3%",
    ]
    # A model audited in Python: its dataset is not known; a row made without the counts.
    assert table_cells(_row(dataset=None, members=None))[2] == "unknown"


def test_a_lower_bound_above_the_claimed_epsilon_is_flagged() -> None:
    assert not _row().violation
    broken = _row(epsilon_lower_bound=5.2)
    assert broken.violation
    assert table_cells(broken)[5] == "5.20 VIOLATION"
    # Without DP there is no claim to violate, and a missing bound flags nothing.
    assert not _row(dp_enabled=False, epsilon=None, epsilon_lower_bound=9.0).violation
    assert table_cells(_row(epsilon_lower_bound=None))[5] == "—"


def test_runs_without_dp_show_no_guarantee() -> None:
    cells = table_cells(_row(label="No DP", dp_enabled=False, epsilon=None, delta=None))
    assert cells[3:5] == ["∞", "—"]


def test_delta_keeps_its_value_when_one_digit_is_not_enough() -> None:
    assert table_cells(_row(delta=2.5e-5))[4] == "2.5e-05"
    assert table_cells(_row(delta=1e-5))[4] == "1e-05"


def test_rich_table_has_the_report_columns_and_rows(comparison: Comparison) -> None:
    table = comparison_table(comparison)
    columns = columns_for(comparison)  # the ε bound's threshold too: its records say
    assert [column.header for column in table.columns] == [column.header for column in columns]
    assert [column.header for column in columns[:len(TABLE_HEADERS)]] == list(TABLE_HEADERS)
    console = Console(record=True, width=400)
    console.print(table)
    text = console.export_text()
    for row in comparison.rows:
        for cell in table_cells(row, columns):
            assert cell in text


# -- report files -------------------------------------------------------------------------------


def test_markdown_report_has_the_table_explanations_and_images(comparison: Comparison) -> None:
    text = comparison.report_md.read_text(encoding="utf-8")
    assert text.startswith(f"# Privacy comparison: {ATTACK}\n")
    assert "| " + " | ".join(TABLE_HEADERS) + " |" in text
    for row in comparison.rows:
        assert "| " + " | ".join(table_cells(row)) + " |" in text
    assert "98.8%" in text and "| ∞ | — |" in text and "2e-04" in text
    assert "](roc_overlay.png)" in text and "](accuracy_vs_leakage.png)" in text
    for header in TABLE_HEADERS:
        assert f"- **{header}**: " in text


def test_html_report_is_self_contained(comparison: Comparison) -> None:
    page = comparison.report_html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for row in comparison.rows:
        for cell in table_cells(row):
            assert f">{cell}</td>" in page
    # Both figures are inline vector graphics; nothing is loaded from anywhere.
    assert page.count("<svg") == 2
    assert "src=" not in page and "<link" not in page and "<script" not in page
    assert "@import" not in page and "url(http" not in page
    assert all(target.startswith("#") for target in re.findall(r'href="([^"]*)"', page))


def test_the_largest_bound_says_with_what_confidence_all_runs_bounds_hold(
    comparison: Comparison, two_runs: list[Path], tmp_path: Path,
) -> None:
    assert all(row.bound_confidence == 0.95 for row in comparison.rows)
    page = comparison.report_html.read_text(encoding="utf-8")
    # Two bounds at 95% each: the larger of the two holds with 90% (union bound), not 95%.
    assert ("holds with 95% confidence for that bound, 90% for the largest of 2 bounds, one per "
            "run") in page
    alone = compare_runs(two_runs[:1], tmp_path / "alone").report_html.read_text(
        encoding="utf-8")
    assert "holds with 95% confidence" in alone and "for the largest of" not in alone


def test_html_escapes_text_from_the_run_files(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    run = make_run(tmp_path, "odd", experiment_name="<script>alert(1)</script>&")
    page = compare_runs([run], tmp_path / "report").report_html.read_text(encoding="utf-8")
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in page


def test_comparison_json_round_trips(comparison: Comparison, two_runs: list[Path]) -> None:
    saved = json.loads(comparison.comparison_json.read_text(encoding="utf-8"))
    assert saved["attack"] == ATTACK
    assert saved["run_dirs"] == [str(path) for path in two_runs]
    assert saved == comparison.to_json()
    assert [row.pop("violation") for row in saved["rows"]] == [
        row.violation for row in comparison.rows
    ]
    assert [ComparisonRow(**row) for row in saved["rows"]] == comparison.rows


def test_figures_are_png_files(comparison: Comparison) -> None:
    for path in (comparison.roc_overlay_png, comparison.accuracy_vs_leakage_png):
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_report_directory_holds_exactly_the_documented_files(comparison: Comparison) -> None:
    assert sorted(path.name for path in comparison.out_dir.iterdir()) == [
        ".auditml-report.json",  # which files the report wrote, with their SHA-256
        "accuracy_vs_leakage.png",
        "comparison.json",
        "report.html",
        "report.md",
        "roc_overlay.png",
    ]
    leftovers = [p.name for p in comparison.out_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_a_second_report_replaces_the_first(two_runs: list[Path], tmp_path: Path) -> None:
    compare_runs(two_runs, tmp_path / "report")
    again = compare_runs(two_runs[:1], tmp_path / "report")
    saved = json.loads(again.comparison_json.read_text(encoding="utf-8"))
    assert len(saved["rows"]) == 1


# -- errors -------------------------------------------------------------------------------------


def test_a_run_without_the_audit_says_which_command_makes_it(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    run = make_run(tmp_path / "results", "x", audit=False)
    with pytest.raises(RunDirectoryError) as error:
        compare_runs([run], tmp_path / "report")
    assert str(error.value) == (
        f"run {run} has no mia_threshold audit: run "
        f"`auditml audit --config {run / 'config.yaml'} --attack mia_threshold` first"
    )
    assert not (tmp_path / "report").exists()


def test_a_missing_scores_file_counts_as_a_missing_audit(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    run = make_run(tmp_path, "x")
    RunDirectory(run).scores_path(ATTACK).unlink()
    with pytest.raises(RunDirectoryError,
                       match=r"run `auditml audit --config .*config.yaml --attack mia_threshold`"):
        compare_runs([run], tmp_path / "report")


def test_the_audit_of_another_attack_does_not_count(
    tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    run = make_run(tmp_path, "x")
    with pytest.raises(RunDirectoryError, match="--attack mia_lira"):
        compare_runs([run], tmp_path / "report", attack="mia_lira")


def test_a_directory_that_is_not_a_trained_run_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match="auditml train --config"):
        compare_runs([tmp_path / "nowhere"], tmp_path / "report")
    (tmp_path / "half").mkdir()
    with pytest.raises(RunDirectoryError, match="incomplete"):
        compare_runs([tmp_path / "half"], tmp_path / "report")


def test_a_stale_audit_is_refused(tmp_path: Path, make_run: Callable[..., Path]) -> None:
    run = RunDirectory(make_run(tmp_path, "x", val_acc=0.9))
    # Retrained after the audit: a new training record and manifest, the old audit left behind.
    run.write_training(run.read_training().model_copy(update={"val_acc": 0.8}))
    run.write_manifest()
    with pytest.raises(RunDirectoryError, match=r"stale.*auditml audit --config"):
        compare_runs([run.path], tmp_path / "report")


def test_a_failed_report_leaves_the_previous_one_untouched(
    two_runs: list[Path], tmp_path: Path,
    make_run: Callable[..., Path],
) -> None:
    out_dir = tmp_path / "report"
    compare_runs(two_runs, out_dir)
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}
    unaudited = make_run(tmp_path / "results", "unaudited", audit=False)
    with pytest.raises(RunDirectoryError, match="has no mia_threshold audit"):
        compare_runs([two_runs[0], unaudited], out_dir)
    assert {path.name: path.read_bytes() for path in out_dir.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failure_while_writing_leaves_the_previous_report_untouched(
    two_runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "report"
    compare_runs(two_runs, out_dir)
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}

    def fail(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr("auditml.reporting.writers.html.render_html", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        compare_runs(two_runs, out_dir)
    assert {path.name: path.read_bytes() for path in out_dir.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_out_dir_inside_or_equal_to_a_run_is_refused(two_runs: list[Path]) -> None:
    for out_dir in (two_runs[1], two_runs[1] / "report"):
        with pytest.raises(ReportError, match="is inside run"):
            compare_runs(two_runs, out_dir)
    assert not (two_runs[1] / "report").exists()


def test_out_dir_holding_a_run_is_refused(two_runs: list[Path]) -> None:
    results = two_runs[0].parent
    with pytest.raises(ReportError, match="contains run"):
        compare_runs(two_runs, results)
    assert all(path.is_dir() for path in two_runs)


def test_out_dir_that_is_not_an_earlier_report_is_refused(
    two_runs: list[Path], tmp_path: Path
) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(ReportError, match="holds no earlier report"):
        compare_runs(two_runs, other)
    assert (other / "todo.txt").read_text(encoding="utf-8") == "keep me"


def test_bad_run_lists_are_refused(two_runs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="at least one"):
        compare_runs([], tmp_path / "report")
    with pytest.raises(ReportError, match="listed twice"):
        compare_runs([two_runs[0], two_runs[0]], tmp_path / "report")
    with pytest.raises(TypeError, match="wrap it in a list"):
        compare_runs(str(two_runs[0]), tmp_path / "report")  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="plain attack name"):
        compare_runs(two_runs, tmp_path / "report", attack="../metrics")


def test_every_error_is_an_auditml_error() -> None:
    assert issubclass(ReportError, AuditMLError)


def test_strongest_attack_is_shown_next_to_the_compared_one(
    tmp_path: Path,
    make_run: Callable[..., Path],
    add_audit: Callable[..., None],
) -> None:
    run_dir = make_run(tmp_path / "results", "baseline", shift=0.5)
    only = compare_runs([run_dir], tmp_path / "first")
    assert only.rows[0].strongest_attack == ATTACK
    assert only.rows[0].strongest_auc == only.rows[0].auc
    add_audit(run_dir, "mia_lira", shift=2.0)
    add_audit(run_dir, "mia_weak", shift=0.1)
    row = compare_runs([run_dir], tmp_path / "second").rows[0]
    assert row.strongest_attack == "mia_lira"
    lira = RunDirectory(run_dir).audit_results()["mia_lira"]["metrics"]
    assert row.strongest_auc == lira["auc"]
    assert row.strongest_tpr_at_1pct_fpr == lira["tpr_at_fpr"]["0.01"]
    assert row.auc < row.strongest_auc


def test_a_canary_audit_that_rejects_the_claim_flags_the_row(
    tmp_path: Path, make_run: Callable[..., Path], add_canary_audit: Callable[..., None]
) -> None:
    runs = [
        make_run(tmp_path / "results", name, dp=True, epsilon=1.0, target_epsilon=1.0,
                 delta=1e-5, shift=0.1)
        for name in ("correct", "broken")
    ]
    for run, violation in zip(runs, (False, True), strict=True):
        # Both bounds are below the claimed ε=1; only the broken run's curve test rejects it.
        add_canary_audit(run, 0.2, name="dp_audit", threat_model="black_box",
                         violation=False)
        add_canary_audit(run, 0.7, name="dp_audit_all_iterates", threat_model="all_iterates",
                         violation=violation)
    rows = compare_runs(runs, tmp_path / "report").rows
    assert [row.violation for row in rows] == [False, True]
    assert [row.canary_audit for row in rows] == ["dp_audit_all_iterates"] * 2
    cells = [table_cells(row)[TABLE_HEADERS.index("Canary audit")] for row in rows]
    assert cells == ["all iterates: ≥ 0.70", "all iterates: ≥ 0.70 VIOLATION"]
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "**VIOLATION** in broken" in markdown


def test_a_canary_audit_with_a_broken_assumption_flags_the_row_and_names_it(
    tmp_path: Path, shuffled_run: Path,
) -> None:
    row = compare_runs([shuffled_run], tmp_path / "report").rows[0]
    assert row.violation and row.canary_failed_checks == ["loader"]
    assert table_cells(row)[TABLE_HEADERS.index("Canary audit")] == (
        "all iterates: ≥ 0.30 VIOLATION (claim does not apply: loader)")


def test_report_md_shows_names_as_text_not_markup(comparison: Comparison) -> None:
    """Run names and labels went into report.md raw: HTML in them (a run directory's metrics
    are untrusted) rendered in a Markdown viewer."""
    from auditml.reporting.writers.markdown import _markdown_cell, render_markdown

    assert _markdown_cell('<img src=x onerror="alert(1)"> *bold* [a](b) | c') == (
        '&lt;img src=x onerror="alert(1)"&gt; \\*bold\\* \\[a\\](b) \\| c')
    assert _markdown_cell("dp_tutorial_eps5: ≥ 0.70 VIOLATION") == (
        "dp_tutorial_eps5: ≥ 0.70 VIOLATION")
    row = dataclasses.replace(comparison.rows[0], run_name="<script>x()</script>",
                              label="*big*")
    hostile = dataclasses.replace(comparison, rows=[row])
    markdown = render_markdown(hostile, {})
    assert "<script>" not in markdown and "&lt;script&gt;x()&lt;/script&gt;" in markdown
    assert "| \\*big\\* |" in markdown


def test_a_rows_verdict_line_follows_its_canary_audit() -> None:
    """A run's line in the comparison summary says what its canary audit found: a VIOLATION
    (its contradiction or the assumptions the loop broke), "not verified" when the audit could
    not check some assumptions, consistent only when it checked them all."""
    from auditml.reporting.verdict import VerdictKind
    from auditml.reporting.writers.html import row_verdict

    canary = {"canary_audit": "dp_audit_all_iterates", "canary_threat_model": "all_iterates",
              "canary_bound": 0.2}
    assert row_verdict(_row(**canary, canary_violation=False), "x").kind is (
        VerdictKind.CONSISTENT)
    contradicted = row_verdict(_row(**canary, canary_violation=True), "x")
    assert contradicted.kind is VerdictKind.VIOLATION
    assert "dp_audit_all_iterates audit contradicts" in contradicted.headline
    broken = row_verdict(_row(**canary, canary_violation=True,
                              canary_failed_checks=["loader"]), "x")
    assert broken.kind is VerdictKind.VIOLATION and "assumptions (loader)" in broken.headline
    unverified = row_verdict(_row(**canary, canary_violation=False,
                                  canary_unchecked=["hidden_state", "rate"]), "x")
    assert unverified.kind is VerdictKind.UNVERIFIED
    assert "hidden_state, rate were not checked" in unverified.headline
    cells = table_cells(_row(**canary, canary_violation=False, canary_unchecked=["rate"]))
    assert any(cell.endswith("≥ 0.20 not verified (not checked: rate)") for cell in cells), cells


# -- what was compared --------------------------------------------------------------------------


def _data_file(path: str, content: str) -> DataFileRecord:
    return DataFileRecord(path=path, sha256=hashlib.sha256(content.encode()).hexdigest())


def test_each_row_names_its_dataset_and_audit_size_and_mixed_data_is_said(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    """Runs on different datasets and of different audit sizes stood side by side with
    nothing to say so: report.md and report.html named no dataset and no member count."""
    digits = make_run(tmp_path, "digits_run")
    tabular = make_run(tmp_path, "csv_run", dataset="csv",
                       data_file=_data_file("/data/adult.csv", "a,b"))
    add_audit(tabular, ATTACK, 0.5, scores=planted_scores(0.5, count=50))
    comparison = compare_runs([digits, tabular], tmp_path / "report")
    assert [(row.dataset, row.members, row.nonmembers) for row in comparison.rows] == [
        ("digits", 200, 200), ("csv (adult.csv)", 50, 50)]
    note = ("The runs were trained and audited on different datasets (digits: digits_run; "
            "csv (adult.csv): csv_run): their leakage numbers are not comparable like for like.")
    assert comparison.dataset_note == note
    markdown = comparison.report_md.read_text(encoding="utf-8")
    assert "| digits, 200 / 200 |" in markdown and "| csv (adult.csv), 50 / 50 |" in markdown
    assert f"**Note**: {note}" in markdown
    page = comparison.report_html.read_text(encoding="utf-8")
    assert 'data-label="Data (audited)">csv (adult.csv), 50 / 50</td>' in page
    summary = page[page.index('aria-label="summary"'):page.index("</section>")]
    assert f"Note: {note}" in summary
    console = Console(record=True, width=400)
    console.print(comparison_table(comparison))
    assert note in console.export_text()

    # One dataset: nothing to say. The same file name with other content is other data.
    same = compare_runs([digits, make_run(tmp_path, "digits_too")], tmp_path / "same")
    assert same.dataset_note is None
    assert "**Note**" not in same.report_md.read_text(encoding="utf-8")
    other = make_run(tmp_path, "csv_other", dataset="csv",
                     data_file=_data_file("/elsewhere/adult.csv", "c,d"))
    note = compare_runs([tabular, other], tmp_path / "files").dataset_note
    assert note is not None and note.startswith("The runs were trained and audited on "
                                                "different datasets (csv (adult.csv), SHA-256 ")


def test_a_model_audited_in_python_has_an_unknown_dataset_and_the_report_says_so() -> None:
    rows = [_row(run_name="a", dataset="digits"), _row(run_name="mine", dataset=None)]
    comparison = Comparison(attack=ATTACK, run_dirs=[], rows=rows, out_dir=Path("x"))
    assert table_cells(rows[1])[2] == "unknown, 1,200 / 800"
    assert comparison.dataset_note == (
        "The dataset of mine is not known (audited in Python): compare its leakage with the "
        "other runs' (on digits) only if it was audited on the same data.")
    both = dataclasses.replace(comparison, rows=[rows[1], _row(run_name="b", dataset=None)])
    assert both.dataset_note is not None and both.dataset_note.startswith(
        "The datasets of mine, b are not known")


def test_runs_that_share_a_name_are_told_apart_by_their_directory(
    tmp_path: Path, make_run: Callable[..., Path]
) -> None:
    """Two runs of one name (written to two output_dirs) showed as identical rows."""
    first = make_run(tmp_path / "monday", "baseline")
    second = make_run(tmp_path / "tuesday", "baseline", shift=1.5)
    other = make_run(tmp_path / "monday", "eps5")
    comparison = compare_runs([first, second, other], tmp_path / "report")
    labels = ["baseline (monday/baseline)", "baseline (tuesday/baseline)", "eps5"]
    assert comparison.run_labels == labels
    markdown = comparison.report_md.read_text(encoding="utf-8")
    page = comparison.report_html.read_text(encoding="utf-8")
    console = Console(record=True, width=600)
    console.print(comparison_table(comparison))
    terminal = console.export_text()
    for label in labels:
        assert f"| No DP | {label} |" in markdown
        assert f'data-label="Run">{label}</td>' in page
        assert f"<li>{label} (No DP): " in page
        assert label in terminal
    # The largest bound (the run with the larger shift) is named by its label too.
    largest = max(comparison.rows, key=lambda row: row.epsilon_lower_bound or 0.0)
    assert largest.run_dir == str(second)
    assert re.search(r'<dd>ε ≥ [0-9.]+<span class="note">baseline \(tuesday/baseline\) ', page)
