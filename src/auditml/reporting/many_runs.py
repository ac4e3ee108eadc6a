"""Many-runs DP audits (``auditml audit-dp``) beside the runs of a comparison.

An ``audit-dp`` result audits a DP *recipe* (K trainings of one config, one gradient canary
each), not one trained run, so it is its own table in the report: one :class:`ManyRunsRow` per
result file given to ``auditml compare --dp-audit FILE``, with the same cells in every format.
The numbers are copied from the file (read through :func:`auditml.run_directory.read_many_runs`),
never recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from auditml.formatting import format_delta
from auditml.metrics.epsilon import epsilon_bound_tail
from auditml.reporting import glossary
from auditml.reporting.verdict import TAIL_NAMES
from auditml.run_directory import read_many_runs

TITLE = "Many-runs DP audits (auditml audit-dp)"
TERMS = glossary.MANY_RUNS


@dataclass(frozen=True)
class ManyRunsRow:
    """One ``audit-dp`` result, as the report shows it."""

    source: str
    recipe: str
    runs: int
    with_canary: int
    claimed_epsilon: float
    delta: float
    epsilon_lower_bound: float
    bound_confidence: float
    claim_rejected: bool
    claim_confidence: float
    violation: bool
    # Which tail gave the bound (auditml.metrics.epsilon.BoundTail; None: a bound of 0 or not
    # known).
    bound_tail: str | None = None

    def cells(self) -> list[str]:
        """The row's cells, in the order of :data:`TERMS`."""
        return [
            f"{self.recipe} ({Path(self.source).name})",
            f"{self.runs} ({self.with_canary})",
            f"{self.claimed_epsilon:.2f} at δ={format_delta(self.delta)}",
            f"{self.epsilon_lower_bound:.2f} ({self.bound_confidence:.0%}"
            + (f", {TAIL_NAMES[self.bound_tail]})" if self.bound_tail in TAIL_NAMES else ")"),
            f"{'REJECTED' if self.claim_rejected else 'not rejected'} "
            f"({self.claim_confidence:.0%})",
            "VIOLATION" if self.violation else "consistent",
        ]


def load_many_runs_rows(paths: Sequence[Path]) -> list[ManyRunsRow]:
    """Read each result file; a missing or corrupt one is one :class:`RunDirectoryError`."""
    rows = []
    for path in paths:
        record = read_many_runs(path)
        bound = record.epsilon_lower_bound
        rows.append(ManyRunsRow(
            source=str(path), recipe=record.experiment_name, runs=record.runs,
            with_canary=record.included, claimed_epsilon=record.claimed_epsilon,
            delta=record.delta, epsilon_lower_bound=float(bound["epsilon"]),
            bound_confidence=1 - float(bound["alpha"]),
            claim_rejected=bool(record.claim_test["violation"]),
            claim_confidence=float(record.claim_test["confidence"]),
            violation=record.violation,
            bound_tail=epsilon_bound_tail(bound) if float(bound["epsilon"]) > 0 else None,
        ))
    return rows


def many_runs_table(rows: Sequence[ManyRunsRow]) -> Table:
    """The table as a rich Table, for the CLI to print."""
    table = Table(title=TITLE)
    for index, term in enumerate(TERMS):
        table.add_column(term.name, justify="left" if index in (0, 4, 5) else "right",
                         overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row.cells()))
    return table
