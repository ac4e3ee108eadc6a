"""Many-runs DP audits (``auditml audit-dp``) beside the runs of a comparison.

An ``audit-dp`` result audits a DP *recipe* (K trainings of one config, one gradient canary
each), not one trained run, so it is its own table in the report: one :class:`ManyRunsRow` per
result file given to ``auditml compare --dp-audit FILE``, with the same cells in every format.
The numbers are copied from the file (read through :func:`auditml.run_directory.read_many_runs`),
never recomputed.

``--dp-audit`` also takes a run directory holding white-box canary audits of one run (a
``CanaryAuditResult.save`` of the caller's own loop, or ``auditml audit --attack
dp_audit_all_iterates``): one row per audit, marked as one run, its bound the one-run bound of
its canaries (:mod:`auditml.audit.canaries.white_box`), its claim test that of the whole
claimed curve against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text

from auditml.errors import RunDirectoryError
from auditml.formatting import format_confidence, format_delta
from auditml.metrics.dp.trials_epsilon import epsilon_bound_tail
from auditml.reporting import glossary
from auditml.reporting.verdict import TAIL_NAMES, claim_word
from auditml.run_directory import RunDirectory, read_many_runs

TITLE = "DP audits: many runs (auditml audit-dp) and one-run canary audits"
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
    # Which tail gave the bound (auditml.metrics.dp.trials_epsilon.BoundTail; None: a bound of 0
    # or not known).
    bound_tail: str | None = None
    # A one-run canary audit (a run directory): its name and how many canaries it had.
    canary_audit: str | None = None
    canaries: int | None = None
    # A one-run canary audit's checks of the accountant's assumptions: those the loop broke,
    # and those it could not check (a CanaryAudit not given the loop's model or loader).
    failed_checks: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    def why(self) -> str:
        """What makes the row a VIOLATION, in words (the end of a sentence)."""
        if self.failed_checks:
            return (f"the loop broke the accountant's assumptions "
                    f"({', '.join(self.failed_checks)}): the claim does not apply")
        if self.canary_audit is not None:
            return "its canaries contradict the privacy the accountant claims"
        return "the runs contradict the privacy curve the recipe's accountant claims"

    def cells(self) -> list[str]:
        """The row's cells, in the order of :data:`TERMS`."""
        where = (Path(self.source).name if self.canary_audit is None
                 else f"{self.canary_audit}, {Path(self.source).name}")
        return [
            f"{self.recipe} ({where})",
            f"{self.runs} ({self.with_canary})" if self.canaries is None
            else f"1 run, {self.canaries} canaries ({self.with_canary} in)",
            f"{self.claimed_epsilon:.2f} at δ={format_delta(self.delta)}",
            f"{self.epsilon_lower_bound:.2f} ({format_confidence(self.bound_confidence)}"
            + (f", {TAIL_NAMES[self.bound_tail]})" if self.bound_tail in TAIL_NAMES else ")"),
            f"{'REJECTED' if self.claim_rejected else 'not rejected'} "
            f"({format_confidence(self.claim_confidence)})",
            claim_word(violated=self.violation, unchecked=self.unchecked) + (
                f" (claim does not apply: {', '.join(self.failed_checks)})"
                if self.violation and self.failed_checks else ""),
        ]


def load_many_runs_rows(paths: Sequence[Path]) -> list[ManyRunsRow]:
    """Read each result file (or run directory of canary audits); a missing or corrupt one is
    one :class:`RunDirectoryError`."""
    rows: list[ManyRunsRow] = []
    for path in paths:
        if Path(path).is_dir():
            rows += _canary_rows(Path(path))
            continue
        record = read_many_runs(path)
        bound = record.epsilon_lower_bound
        rows.append(ManyRunsRow(
            source=str(path), recipe=record.experiment_name, runs=record.runs,
            with_canary=record.included, claimed_epsilon=record.claimed_epsilon,
            delta=record.delta, epsilon_lower_bound=bound.epsilon,
            bound_confidence=1 - bound.alpha,
            claim_rejected=record.claim_test.violation,
            claim_confidence=record.claim_test.confidence,
            violation=record.violation,
            bound_tail=epsilon_bound_tail(bound.as_written()) if bound.epsilon > 0 else None,
        ))
    return rows


def _canary_rows(path: Path) -> list[ManyRunsRow]:
    """A row per current white-box canary audit of the run at ``path`` that tested a claim."""
    run = RunDirectory(path)
    training_id = run.require_audited().training_id
    rows = []
    for name in run.canary_names():
        record = run.read_canary(name)
        test = record.claim_test
        if record.run.training_id not in (None, training_id) or test is None or (
                record.run.epsilon is None):
            continue  # stale, or no claim was tested: nothing to show in this table
        rows.append(ManyRunsRow(
            source=str(path), recipe=record.run.experiment_name, runs=1,
            with_canary=record.included, claimed_epsilon=record.run.epsilon,
            delta=record.delta, epsilon_lower_bound=record.epsilon_lower_bound,
            bound_confidence=record.confidence,
            claim_rejected=test.violation,
            claim_confidence=test.confidence,
            violation=bool(record.violation), canary_audit=name, canaries=record.canaries,
            failed_checks=tuple(record.failed_checks),
            unchecked=tuple(record.unchecked_checks),
        ))
    if not rows:
        raise RunDirectoryError(
            f"--dp-audit {path} holds no canary audit that tested a DP claim: give an `auditml "
            "audit-dp` result file, or a run directory audited with dp_audit_all_iterates (or "
            "a saved CanaryAuditResult)"
        )
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
