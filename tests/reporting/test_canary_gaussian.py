"""The bound under the Gaussian assumption is shown labelled, and never changes the verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auditml.records import GaussianBoundRecord
from auditml.reporting import write_run_report
from auditml.reporting.console import canary_summary
from auditml.reporting.verdict import VerdictKind
from auditml.run_directory import RunDirectory


def _bound() -> GaussianBoundRecord:
    return GaussianBoundRecord(
        kind="bound under the Gaussian assumption", score="loss", epsilon=3.25, mu=0.8,
        mu_estimate=0.9, confidence=0.95, delta=1e-5, canaries=1000, included=497,
        excluded=503, t_statistic=14.2, normality_p_included=0.41, normality_p_excluded=0.03,
        normality_test="shapiro_wilk", equal_variance_p=0.73,
    )


def test_the_page_and_terminal_show_it_labelled_beside_an_unchanged_verdict(
    tmp_path: Path, make_run: Callable[..., Path], add_canary_audit: Callable[..., None]
) -> None:
    run = make_run(tmp_path / "results", "eps1", dp=True, epsilon=1.0, target_epsilon=1.0,
                   delta=1e-5, shift=0.1)
    add_canary_audit(run, 0.4, violation=False)
    directory = RunDirectory(run)
    record = directory.read_canary("dp_audit").model_copy(update={"gaussian_bound": _bound()})
    directory.write_canary("dp_audit", record)
    # 3.25 is above the claimed ε = 1, but only under an assumption: the verdict stays.
    report = write_run_report(run, tmp_path / "report")
    page = report.report_html.read_text(encoding="utf-8")
    assert report.verdict.kind is not VerdictKind.VIOLATION
    expected = ("ε ≥ 3.25 under the Gaussian assumption (95% confidence, loss score; "
                "normality p = 0.03, equal variances p = 0.73)")
    assert expected in page and "not part of the verdict" in page
    summary = canary_summary(directory.read_canary("dp_audit").model_dump(mode="json"))
    assert expected + ", not in the verdict" in summary
    # Records written before the field existed read and show as before.
    directory.write_canary("dp_audit", record.model_copy(update={"gaussian_bound": None}))
    assert "Gaussian" not in canary_summary(
        directory.read_canary("dp_audit").model_dump(mode="json"))
