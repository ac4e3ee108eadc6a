"""The report of one audited run: ``auditml report RUN_DIR --out DIR``.

:func:`write_run_report` reads the run (:mod:`auditml.reporting.reading`) and writes::

    report.html        verdict, attacks, canary audit, ROC figure, most exposed examples,
                       glossary: one self-contained file
    run_report.json    the verdict and the numbers it rests on

The directory is built under a temporary name and swapped in whole, as for comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditml.fileio import write_json, write_text
from auditml.reporting.output import check_out_dir, report_directory
from auditml.reporting.reading import load_run_view
from auditml.reporting.rows import REPORT_HTML
from auditml.reporting.run_page import bounds, render_run_page, verdict
from auditml.reporting.verdict import Verdict
from auditml.reporting.views import RunView

RUN_REPORT_JSON = "run_report.json"


@dataclass(frozen=True)
class RunReport:
    """A written run report: what it says and where it lives."""

    view: RunView
    verdict: Verdict
    out_dir: Path

    @property
    def report_html(self) -> Path:
        return self.out_dir / REPORT_HTML

    @property
    def run_report_json(self) -> Path:
        return self.out_dir / RUN_REPORT_JSON

    def to_json(self) -> dict[str, Any]:
        """The content of ``run_report.json``."""
        facts = self.view.facts
        return {
            "run_dir": facts.run_dir,
            "run_name": facts.run_name,
            "verdict": self.verdict.kind.value,
            "headline": self.verdict.headline,
            "dp_enabled": facts.dp_enabled,
            "epsilon": facts.epsilon,
            "delta": facts.delta,
            "val_acc": facts.val_acc,
            "epsilon_lower_bounds": [
                {"source": b.source, "epsilon": b.epsilon, "confidence": b.confidence,
                 "tail": b.tail}
                for b in bounds(self.view)
            ],
            "attacks": [
                {
                    "attack": attack.name,
                    "auc": attack.auc,
                    "tpr_at_fpr": {repr(fpr): tpr for fpr, tpr in attack.tpr_at_fpr.items()},
                    "epsilon_lower_bound": attack.epsilon_lower_bound,
                    "epsilon_lower_bound_tail": attack.bound_tail,
                    "beats_chance": attack.beats_chance,
                    "gdp_epsilon_estimate": attack.gdp_epsilon_estimate,
                    "gdp_epsilon_lower_bound": attack.gdp_lower_bound,
                    "auc_interval": attack.auc_interval,
                    "tpr_at_fpr_interval": {
                        repr(fpr): pair for fpr, pair in attack.tpr_intervals.items()
                    },
                    "singled_out": None if attack.singled_out is None
                    else attack.singled_out.to_dict(),
                    "tied_at_top": attack.tied_at_top,
                    "tied_at_top_nonmembers": attack.tied_at_top_nonmembers,
                }
                for attack in self.view.attacks
            ],
            "strongest_attack": None if self.view.strongest is None else self.view.strongest.name,
            # The attack whose most exposed members the page shows (None: none beats chance).
            "exposed_from": None if self.view.exposing is None else self.view.exposing.name,
            "skipped": [{"audit": s.name, "reason": s.reason} for s in self.view.skipped],
        }


def write_run_report(run_dir: str | Path, out_dir: str | Path) -> RunReport:
    """Write the report of the trained and audited run in ``run_dir`` into ``out_dir``.

    The run needs at least one usable audit (``auditml audit``), otherwise a
    :class:`~auditml.errors.RunDirectoryError` names the command. ``out_dir`` must lie outside
    the run and, if it exists, be empty or hold an earlier run report: the report replaces the
    files that one wrote and leaves any other file alone (:mod:`auditml.reporting.output`).
    """
    run_path, out = Path(run_dir), Path(out_dir)
    check_out_dir(out, [run_path], kind="run_report")
    view = load_run_view(run_path)
    report = RunReport(view=view, verdict=verdict(view), out_dir=out)
    with report_directory(out, kind="run_report") as staging:
        write_text(staging / REPORT_HTML, render_run_page(view, report.verdict))
        write_json(staging / RUN_REPORT_JSON, report.to_json())
    return report
