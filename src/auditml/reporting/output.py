"""Where a report may be written: checks on the output directory, before any work.

A report directory is replaced as a whole (built under a temporary name, swapped in at the end),
so it must not be, hold or lie inside a run, and an existing one must be an earlier report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from auditml.reporting.rows import ReportError


def check_out_dir(out_dir: Path, run_dirs: Sequence[Path], *, marker: str) -> None:
    """Refuse ``out_dir`` unless it is new, empty, or an earlier report (holds ``marker``)."""
    target = out_dir.resolve()
    for run_dir in run_dirs:
        run = run_dir.resolve()
        if target == run or run in target.parents:
            raise ReportError(
                f"out_dir {out_dir} is inside run {run_dir}: the report would be mixed into the "
                "run's files; choose a directory outside every run, e.g. results/comparison"
            )
        if target in run.parents:
            raise ReportError(
                f"out_dir {out_dir} contains run {run_dir}: the report replaces its whole "
                "directory, which would delete the run; choose a directory that holds no run"
            )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ReportError(f"out_dir {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / marker).is_file():
            raise ReportError(
                f"out_dir {out_dir} is not empty and holds no earlier report ({marker}); the "
                "report replaces the whole directory, so choose a new or empty one"
            )
