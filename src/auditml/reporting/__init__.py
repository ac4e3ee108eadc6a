"""Reports: one audited run (:func:`write_run_report`) or several side by side
(:func:`compare_runs`), as self-contained HTML, markdown, JSON and figures.

:class:`DPComparison` is the two-run shortcut the DP tutorial uses.
"""

from auditml.reporting.columns import comparison_table
from auditml.reporting.comparison import compare_runs
from auditml.reporting.dp_comparison import DPComparison
from auditml.reporting.rows import Comparison, ComparisonRow, ReportError
from auditml.reporting.run_report import RunReport, write_run_report

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
