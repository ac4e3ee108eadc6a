"""What the terminal prints is the text itself: rich reads "[...]" in a plain string as a markup
tag and drops it, so every table there holds Text and every line of data is printed without
markup. The audit table printed ": 95% bootstrap (BCa) interval of the AUC or TPR" (its
"[low, high]" eaten), and run names, settings and paths lost their brackets the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from auditml.reporting.console import attribute_table, audit_table
from auditml.run_directory import RunDirectory
from cli_helpers import run_cli

ATTACK = "mia_threshold"


def _terminal(table: Table) -> str:
    console = Console(record=True, width=400)
    console.print(table)
    return console.export_text()


def test_the_audit_table_keeps_every_bracket(
    tmp_path: Path, make_run: Callable[..., Path], add_audit: Callable[..., None]
) -> None:
    run = make_run(tmp_path, "x", experiment_name="[bold]mine[/bold]")
    add_audit(run, ATTACK, 1.0, intervals=True)
    result = RunDirectory(run).read_attack(ATTACK).model_dump(mode="json")
    result["settings"] = {"metric": "[link]loss"}
    text = _terminal(audit_table([result]))
    assert "[low, high]: 95% bootstrap (BCa) interval of the AUC or TPR" in text
    assert "[bold]mine[/bold] (no DP): 200 members" in text
    assert "metric=[link]loss" in text


def test_the_attribute_table_keeps_every_bracket() -> None:
    found: dict[str, Any] = {
        "members": {"accuracy": 0.6, "accuracy_interval": [0.5, 0.7], "auc": 0.6},
        "nonmembers": {"accuracy": 0.55},
        "advantage_members": None,
        "member_gap": {"gap": 0.05, "p_value": 0.2},
    }
    result = {"attribute": "[sex]", "categories": ["a", "b"], "auxiliary_records": 10,
              "confidence": 0.95, "baseline": "imputation",
              "attacks": {"imputation": found, "[b]query": found},
              "beyond_imputation": False, "member_specific": False}
    text = _terminal(attribute_table(result))
    assert "attribute_inference of '[sex]'" in text
    assert "[b]query" in text and "members: accuracy [95% CI]" in text


def test_report_and_compare_print_their_paths_as_they_are(
    tmp_path: Path, make_run: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "results", "x")
    out = tmp_path / "[red]reports"
    code, printed, err = run_cli(capsys, "compare", str(run), "--out", str(out / "cmp"))
    assert code == 0, err
    assert f"report: {out / 'cmp' / 'report.html'}" in "".join(printed.splitlines())
    code, printed, err = run_cli(capsys, "report", str(run), "--out", str(out / "run"))
    assert code == 0, err
    assert f"report: {out / 'run' / 'report.html'}" in "".join(printed.splitlines())
