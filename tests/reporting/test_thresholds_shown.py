"""The comparison and the terminal's audit table say how each ε lower bound chose its threshold,
as the run page does (from the strategy recorded beside the bound)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from auditml.reporting import compare_runs
from auditml.reporting.console import audit_table
from auditml.run_directory import RunDirectory

ATTACK = "mia_threshold"
SPLIT_WORDS = "threshold chosen on one half of the examples, bound on the other"


def test_the_comparison_and_the_terminal_say_how_the_threshold_was_chosen(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    runs = [make_run(tmp_path / "results", name, shift=1.0) for name in ("a", "b")]
    for run in runs:
        add_audit(run, ATTACK, 1.0)  # the bound's strategy: Split (see conftest.write_audit)
    comparison = compare_runs(runs, tmp_path / "comparison")
    assert all(row.bound_threshold == SPLIT_WORDS for row in comparison.rows)
    markdown = comparison.report_md.read_text(encoding="utf-8")
    assert "ε bound's threshold" in markdown and markdown.count(SPLIT_WORDS) >= 2
    assert SPLIT_WORDS in comparison.report_html.read_text(encoding="utf-8")

    result = RunDirectory(runs[0]).read_attack(ATTACK).model_dump(mode="json")
    console = Console(record=True, width=400)
    console.print(audit_table([result]))
    text = console.export_text()
    assert f"† threshold of every ε lower bound: {SPLIT_WORDS}" in text

    # A record that does not say (written before strategies were recorded): no column.
    older = {**result, "epsilon_lower_bound": {
        key: value for key, value in result["epsilon_lower_bound"].items()
        if key not in ("threshold_policy", "threshold_strategy", "candidates")}}
    console = Console(record=True, width=400)
    console.print(audit_table([older]))
    text = console.export_text()
    assert "threshold of every" not in text and SPLIT_WORDS not in text
