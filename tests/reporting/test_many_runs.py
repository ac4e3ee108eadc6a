"""Many-runs DP audits (audit-dp results) in a comparison: their own table in every format, the
verdict shown, and bad files refused in one line."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from auditml.cli import main
from auditml.errors import RunDirectoryError
from auditml.records import ManyRunsRecord
from auditml.reporting import ReportError, compare_runs
from auditml.run_directory import read_many_runs, write_many_runs


def _record(name: str, *, rejected: bool, bound: float) -> ManyRunsRecord:
    return ManyRunsRecord(
        experiment_name=name, runs=200, included=97, delta=1e-5, claimed_epsilon=2.0,
        confidence=0.95,
        epsilon_lower_bound={"epsilon": bound, "alpha": 0.05, "delta": 1e-5},
        claim_test={"violation": rejected, "confidence": 0.95, "threshold": 1.0,
                    "false_positive_upper": 0.1, "false_negative_upper": 0.2,
                    "allowed_false_negative": 0.5},
        violation=rejected, scores=[0.0, 1.0], coins=[False, True],
    )


@pytest.fixture
def runs(tmp_path: Path, make_run: Callable[..., Path]) -> list[Path]:
    return [make_run(tmp_path / "results", "baseline"),
            make_run(tmp_path / "results", "eps2", dp=True, epsilon=2.0, target_epsilon=2.0,
                     noise_multiplier=1.0, delta=1e-5)]


@pytest.fixture
def audits(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "results" / "correct_audit_dp.json",
             tmp_path / "results" / "broken_audit_dp.json"]
    write_many_runs(paths[0], _record("correct", rejected=False, bound=0.8))
    write_many_runs(paths[1], _record("broken", rejected=True, bound=3.1))
    return paths


def test_the_record_round_trips(audits: list[Path]) -> None:
    assert read_many_runs(audits[1]) == _record("broken", rejected=True, bound=3.1)


def test_each_format_shows_the_many_runs_audits_and_their_verdicts(
    runs: list[Path], audits: list[Path], tmp_path: Path
) -> None:
    comparison = compare_runs(runs, tmp_path / "report", dp_audits=audits)
    correct, broken = comparison.dp_audits
    assert correct.cells() == [
        "correct (correct_audit_dp.json)", "200 (97)", "2.00 at δ=1e-05", "0.80 (95%)",
        "not rejected (95%)", "consistent",
    ]
    assert broken.cells()[3:] == ["3.10 (95%)", "REJECTED (95%)", "VIOLATION"]
    markdown = comparison.report_md.read_text(encoding="utf-8")
    assert "## DP audits: many runs (auditml audit-dp) and one-run canary audits" in markdown
    assert "| broken (broken_audit_dp.json) | 200 (97) |" in markdown
    assert "**VIOLATION** in the many-runs audit of broken" in markdown
    assert "- **ε lower bound (many runs)** (DP audits: many runs" in markdown
    html = comparison.report_html.read_text(encoding="utf-8")
    assert "DP audits: many runs (auditml audit-dp) and one-run canary audits" in html
    assert "VIOLATION in broken (many-runs audit)" in html
    saved = json.loads(comparison.comparison_json.read_text(encoding="utf-8"))
    assert [row["recipe"] for row in saved["dp_audits"]] == ["correct", "broken"]
    assert saved["dp_audits"][1]["violation"] is True


def test_without_many_runs_audits_there_is_no_such_section(
    runs: list[Path], tmp_path: Path
) -> None:
    comparison = compare_runs(runs, tmp_path / "report")
    assert "DP audits: many runs" not in comparison.report_md.read_text(encoding="utf-8")
    assert "DP audits: many runs" not in comparison.report_html.read_text(encoding="utf-8")
    assert json.loads(comparison.comparison_json.read_text(encoding="utf-8"))["dp_audits"] == []


def test_bad_result_files_are_refused_before_writing(
    runs: list[Path], audits: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "report"
    with pytest.raises(RunDirectoryError, match=r"missing file .*auditml audit-dp"):
        compare_runs(runs, out, dp_audits=[tmp_path / "nope.json"])
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema_version": 1, "runs": "many"}', encoding="utf-8")
    with pytest.raises(RunDirectoryError, match="is corrupt"):
        compare_runs(runs, out, dp_audits=[corrupt])
    with pytest.raises(ReportError, match=r"audit-dp result .* is listed twice"):
        compare_runs(runs, out, dp_audits=[audits[0], audits[0]])
    with pytest.raises(TypeError, match="sequence"):
        compare_runs(runs, out, dp_audits=audits[0])  # type: ignore[arg-type]
    assert not out.exists()
    inside = compare_runs(runs, tmp_path / "report2").out_dir  # an earlier report
    kept = inside / "x_audit_dp.json"  # the user's file in it: read, and left where it is
    kept.write_text(audits[0].read_text(encoding="utf-8"), encoding="utf-8")
    again = compare_runs(runs, inside, dp_audits=[kept])
    assert len(again.dp_audits) == 1 and kept.read_text(encoding="utf-8") == audits[0].read_text(
        encoding="utf-8")


def test_the_cli_prints_the_table_and_refuses_a_bad_file_in_one_line(
    runs: list[Path], audits: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", *map(str, runs), "--out", str(tmp_path / "report")]
    assert main([*argv, "--dp-audit", *map(str, audits)]) == 0
    out = capsys.readouterr().out
    assert "DP audits: many runs" in out and "VIOLATION" in out
    assert main([*argv, "--dp-audit", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "auditml audit-dp" in err


def test_a_one_run_canary_audit_row_says_why_it_fails_or_what_it_did_not_check() -> None:
    """A saved CanaryAuditResult whose loop broke an assumption was summed up as "the runs
    contradict the privacy curve" beside "not rejected"; one with unchecked assumptions showed
    a bare "consistent"."""
    from auditml.reporting.many_runs import ManyRunsRow

    row = ManyRunsRow(
        source="results/my_loop", recipe="my_loop", runs=1, with_canary=500,
        claimed_epsilon=2.0, delta=1e-5, epsilon_lower_bound=0.1, bound_confidence=0.95,
        claim_rejected=False, claim_confidence=0.97, violation=True,
        canary_audit="dp_audit_all_iterates", canaries=1000, failed_checks=("loader",),
    )
    assert row.cells()[-1] == "VIOLATION (claim does not apply: loader)"
    assert "broke the accountant's assumptions (loader)" in row.why()
    bare = dataclasses.replace(row, violation=False, failed_checks=(),
                               unchecked=("loader", "hidden_state"))
    assert bare.cells()[-1] == "not verified (not checked: loader, hidden_state)"
    assert dataclasses.replace(bare, unchecked=()).cells()[-1] == "consistent"
