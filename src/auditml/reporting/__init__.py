"""Reports that compare runs: tables (markdown, HTML, terminal), JSON and figures.

:func:`compare_runs` compares any number of trained and audited runs;
:class:`DPComparison` is the two-run shortcut the DP tutorial uses.
"""

from auditml.reporting.comparison import (
    Comparison,
    ComparisonRow,
    ReportError,
    compare_runs,
    comparison_table,
)
from auditml.reporting.dp_comparison import DPComparison

__all__ = [
    "Comparison",
    "ComparisonRow",
    "DPComparison",
    "ReportError",
    "compare_runs",
    "comparison_table",
]
