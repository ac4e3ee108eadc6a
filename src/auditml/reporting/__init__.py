"""Reports: one audited run (:func:`write_run_report`) or several side by side
(:func:`compare_runs`), as self-contained HTML, markdown, JSON and figures.

:class:`DPComparison` is the two-run shortcut the DP tutorial uses.

The names below are imported on first use: ``audit`` needs only small modules of this package
(the verdict rule) and must not pay for importing matplotlib with the report writers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditml.lazy import lazy_attributes

if TYPE_CHECKING:
    from auditml.reporting.columns import comparison_table
    from auditml.reporting.comparison import compare_runs
    from auditml.reporting.dp_comparison import DPComparison
    from auditml.reporting.rows import Comparison, ComparisonRow, ReportError
    from auditml.reporting.run_report import RunReport, write_run_report

_HOME = {
    "Comparison": "auditml.reporting.rows",
    "ComparisonRow": "auditml.reporting.rows",
    "DPComparison": "auditml.reporting.dp_comparison",
    "ReportError": "auditml.reporting.rows",
    "RunReport": "auditml.reporting.run_report",
    "compare_runs": "auditml.reporting.comparison",
    "comparison_table": "auditml.reporting.columns",
    "write_run_report": "auditml.reporting.run_report",
}

__all__ = [
    "Comparison",
    "ComparisonRow",
    "DPComparison",
    "ReportError",
    "RunReport",
    "compare_runs",
    "comparison_table",
    "write_run_report",
]


__getattr__ = lazy_attributes(__name__, _HOME)
