"""The comparison's formats: each registered writer writes its file; a new one is one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from auditml.errors import UnknownNameError
from auditml.fileio import write_text
from auditml.reporting import compare_runs
from auditml.reporting.rows import ComparisonData
from auditml.reporting.writers import WRITERS


def test_the_three_formats_are_registered() -> None:
    assert WRITERS.available() == ["html", "json", "markdown"]
    with pytest.raises(UnknownNameError, match="did you mean 'html'"):
        WRITERS.get("htm")


def test_a_registered_format_is_written_with_the_others(
    tmp_path: Path, make_run: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def write_csv(directory: Path, data: ComparisonData) -> None:
        rows = [f"{row.run_name},{row.auc}" for row in data.comparison.rows]
        write_text(directory / "comparison.csv", "\n".join(rows))

    entries = {**WRITERS._entries, "csv": write_csv}
    monkeypatch.setattr(WRITERS, "_entries", entries)
    run = make_run(tmp_path / "results", "a")
    comparison = compare_runs([run], tmp_path / "report")
    assert (comparison.out_dir / "comparison.csv").read_text(encoding="utf-8") == (
        f"a,{comparison.rows[0].auc}"
    )
    assert comparison.report_html.is_file() and comparison.report_md.is_file()
