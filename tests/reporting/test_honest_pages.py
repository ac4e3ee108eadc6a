"""Pages say only what the audit can tell apart from noise, which tail a bound comes from, and
every rate in one unit (issue 25, "honest pages"): one test per reported fault."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from tests.reporting.conftest import ATTACK, planted_scores

from auditml.reporting import compare_runs, comparison_table, write_run_report
from auditml.reporting.console import audit_table
from auditml.run_directory import RunDirectory

MakeRun = Callable[..., Path]
AddAudit = Callable[..., None]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def _summary(html: str) -> str:
    [box] = re.findall(r'<section class="summary.*?</section>', html, flags=re.S)
    return _text(box)


def _record(run: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        RunDirectory(run).attack_path(ATTACK).read_text(encoding="utf-8"))
    return loaded


def _terminal(renderable: Any) -> str:
    console = Console(width=400, record=True)
    console.print(renderable)
    return console.export_text()


def _nonmember_tail_scores() -> tuple[np.ndarray, np.ndarray]:
    """Members and non-members alike, but 40 of 200 non-members far below everyone: the ROC
    curve is on the diagonal at low FPR (AUC 0.52), and low scores flag non-members."""
    scores, is_member = planted_scores(0.0)
    scores[np.flatnonzero(~is_member)[:40]] -= 10
    return scores, is_member


def test_runs_at_chance_are_not_ranked(tmp_path: Path, make_run: MakeRun) -> None:
    # The issue: every TPR@1%FPR at chance, and the 'Most leakage' tile named the ε = 1 run.
    runs = tmp_path / "results"
    baseline = make_run(runs, "baseline", shift=0.05)
    private = make_run(runs, "eps1", dp=True, epsilon=1.0, target_epsilon=1.0, delta=2e-4,
                       shift=0.1)
    comparison = compare_runs([baseline, private], tmp_path / "report")
    summary = _summary(comparison.report_html.read_text(encoding="utf-8"))
    assert "against" not in summary.split("Most leakage")[1], summary
    assert "all within noise" in summary
    # The terminal table does not call either run's best attack 'strongest' without saying so.
    assert _terminal(comparison_table(comparison)).count("(within noise)") == 2
    # A run that leaks beyond noise is still named.
    leaky = make_run(runs, "leaky", shift=4.0)
    clear = compare_runs([baseline, leaky], tmp_path / "clear")
    summary = _summary(clear.report_html.read_text(encoding="utf-8"))
    assert "mia_threshold against leaky (No DP); beyond noise" in summary


def test_every_bound_says_which_tail_it_comes_from(
    tmp_path: Path, make_run: MakeRun, add_audit: AddAudit
) -> None:
    # The issue: "leaks, ε ≥ 1.85" from the non-member tail over an ROC curve on the diagonal.
    run = make_run(tmp_path / "results", "baseline", audit=False)
    add_audit(run, ATTACK, 0.0, scores=_nonmember_tail_scores())
    report = write_run_report(run, tmp_path / "report")
    assert "leaks" in report.verdict.headline
    assert "non-member tail: low scores flag non-members" in report.verdict.headline
    page = _text(report.report_html.read_text(encoding="utf-8"))
    assert "It can hold while the ROC curve lies on the diagonal" in page
    compared = compare_runs([run], tmp_path / "comparison")
    assert "(non-member tail)" in compared.report_md.read_text(encoding="utf-8")
    assert "(non-member tail)" in _terminal(audit_table([_record(run)]))
    # A record written before the tail was recorded says it too (derived from its counts).
    older = make_run(tmp_path / "results", "older", audit=False)
    add_audit(older, ATTACK, 0.0, scores=_nonmember_tail_scores(), older_bound=True)
    assert "tail" not in _record(older)["epsilon_lower_bound"]
    assert "non-member tail" in write_run_report(older, tmp_path / "older").verdict.headline
    assert "(non-member tail)" in _terminal(audit_table([_record(older)]))


def test_no_exposed_examples_from_an_attack_at_chance(
    tmp_path: Path, make_run: MakeRun, add_audit: AddAudit
) -> None:
    # The issue: 'Most exposed examples' of an attack at AUC 0.5 shown as meaningful.
    run = make_run(tmp_path / "results", "baseline", audit=False)
    add_audit(run, ATTACK, 0.05, gallery=True)
    html = write_run_report(run, tmp_path / "report").report_html.read_text(encoding="utf-8")
    assert f"Most exposed training examples ({ATTACK})" not in html
    assert "data:image/png" not in html
    assert "None shown: no attack finds members beyond chance" in _text(html)


def test_a_rate_has_one_unit_on_every_page_and_in_the_terminal(
    tmp_path: Path, make_run: MakeRun
) -> None:
    # The issue: TPR@1%FPR 0.006 in one table, 0.9% in the tile.
    run = make_run(tmp_path / "results", "baseline", shift=1.0)
    tpr = _record(run)["metrics"]["tpr_at_fpr"]["0.01"]
    percent, fraction = f"{tpr:.1%}", f"{tpr:.3f}"
    comparison = compare_runs([run], tmp_path / "comparison")
    markdown = comparison.report_md.read_text(encoding="utf-8")
    header, _, row = markdown.split("\n")[4:7]
    cells = dict(zip(header.strip("| ").split(" | "), row.strip("| ").split(" | "), strict=True))
    assert cells["TPR@1%FPR"] == cells["Its TPR@1%FPR"] == percent
    comparison_html = _text(comparison.report_html.read_text(encoding="utf-8"))
    run_page = _text(write_run_report(run, tmp_path / "report").report_html.read_text(
        encoding="utf-8"))
    terminal = _terminal(comparison_table(comparison)) + _terminal(audit_table([_record(run)]))
    for shown in (markdown, comparison_html, run_page, terminal):
        assert percent in shown
        assert fraction not in shown
    assert f"{tpr:.2%}" not in terminal  # one number of decimals too
