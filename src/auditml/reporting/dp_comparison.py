"""The DP tutorial's front door: one run without DP, one with, one report.

::

    from auditml.reporting.dp_comparison import DPComparison

    cmp = DPComparison(
        baseline_dir="results/dp_tutorial_baseline", dp_dir="results/dp_tutorial_eps5"
    )
    cmp.generate_report("results/dp_comparison")

It is a thin wrapper over :func:`auditml.reporting.comparison.compare_runs`, which takes any
number of runs.
"""

from __future__ import annotations

from pathlib import Path

from auditml.reporting.comparison import DEFAULT_ATTACK, Comparison, compare_runs


class DPComparison:
    """A baseline run (usually trained without DP) against a DP-SGD run of the same model.

    Constructing it only stores the paths; :meth:`generate_report` reads the runs. Each row's
    label comes from the run's own ``metrics.json``, so swapping the arguments only swaps the
    order of the rows.
    """

    def __init__(
        self, baseline_dir: str | Path, dp_dir: str | Path, *, attack: str = DEFAULT_ATTACK
    ) -> None:
        self.baseline_dir = Path(baseline_dir)
        self.dp_dir = Path(dp_dir)
        self.attack = attack

    def __repr__(self) -> str:
        return (
            f"DPComparison(baseline_dir={str(self.baseline_dir)!r}, "
            f"dp_dir={str(self.dp_dir)!r}, attack={self.attack!r})"
        )

    def generate_report(self, out_dir: str | Path) -> Comparison:
        """Write the report (``report.md``, ``report.html``, ``comparison.json``, the figures)
        into ``out_dir`` and return the :class:`Comparison`: baseline row first, then DP.

        ``comparison.report_html`` and friends are the written paths.
        """
        return compare_runs([self.baseline_dir, self.dp_dir], out_dir, attack=self.attack)
