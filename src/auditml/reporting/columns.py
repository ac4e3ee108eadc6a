"""The comparison table's columns: header and definition (from the glossary), alignment, and
how a :class:`~auditml.reporting.rows.ComparisonRow` fills each cell.

Every format shows the same cells: ``report.md``, ``report.html`` and the terminal table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from auditml.formatting import (
    format_auc,
    format_delta,
    format_epsilon,
    format_rate,
    format_rate_interval,
)
from auditml.reporting import glossary
from auditml.reporting.glossary import Term
from auditml.reporting.rows import Comparison, ComparisonRow
from auditml.reporting.verdict import bound_cell, claim_word


@dataclass(frozen=True)
class ComparisonColumn:
    term: Term
    numeric: bool
    cell: Callable[[ComparisonRow], str]

    @property
    def header(self) -> str:
        return self.term.name


def _epsilon(row: ComparisonRow) -> str:
    # Without DP there is no finite guarantee, whatever metrics.json holds under "epsilon".
    # None: a model audited in Python with no claim given (unknown, not "no DP").
    if row.dp_enabled is None:
        return "unknown"
    return format_epsilon(row.epsilon if row.dp_enabled else None)


def _delta(row: ComparisonRow) -> str:
    if row.dp_enabled is None:
        return "unknown"
    return format_delta(row.delta if row.dp_enabled else None)


def _canary(row: ComparisonRow) -> str:
    if row.canary_audit is None or row.canary_bound is None:
        return "—"
    where = (row.canary_threat_model or "").replace("_", " ")
    flag = " VIOLATION" if row.dp_enabled and row.canary_violation else ""
    if flag and row.canary_failed_checks:
        flag += f" (claim does not apply: {', '.join(row.canary_failed_checks)})"
    elif row.dp_enabled and row.canary_unchecked:
        flag = f" {claim_word(violated=False, unchecked=row.canary_unchecked)}"
    return f"{where}: ≥ {row.canary_bound:.2f}{flag}"


def _data(row: ComparisonRow) -> str:
    """The dataset and the members / non-members audited (one column: the table must fit a
    laptop screen)."""
    dataset = row.dataset or "unknown"
    if row.members is None or row.nonmembers is None:
        return dataset  # a row made without the counts
    return f"{dataset}, {row.members:,} / {row.nonmembers:,}"


def _bound(row: ComparisonRow) -> str:
    return bound_cell(row.epsilon_lower_bound, row.bound_tail, violation=row.violation)


def _strongest(row: ComparisonRow) -> str:
    # An attack at chance is only the best of several noisy figures: say so beside its name.
    return row.strongest_attack + (" (within noise)" if row.strongest_beats_chance is False
                                   else "")


def _attribute(row: ComparisonRow) -> str:
    if row.attribute_advantage is None or row.attribute_gap is None:
        return "—"
    flag = " LEAK" if row.attribute_leak else ""
    return (f"{row.attribute_advantage:+.1%} over imputation, {row.attribute_gap:+.1%} "
            f"members − non-members{flag}")


def _inversion(row: ComparisonRow) -> str:
    if row.inversion_recognised is None or row.inversion_member_closer is None:
        return "—"
    closer, compared, p_value = row.inversion_member_closer
    return (f"{row.inversion_recognised:.0%} recognised; {closer}/{compared} nearer a member "
            f"(p={p_value:.2g})")


COLUMNS: tuple[ComparisonColumn, ...] = (
    ComparisonColumn(glossary.MODEL, False, lambda row: row.label),
    ComparisonColumn(glossary.RUN, False, lambda row: row.run_name),
    ComparisonColumn(glossary.DATASET, False, _data),
    ComparisonColumn(glossary.EPSILON_CLAIMED, True, _epsilon),
    ComparisonColumn(glossary.DELTA, True, _delta),
    # Not numeric: the cell names its tail and must wrap on a phone.
    ComparisonColumn(glossary.EPSILON_LOWER_BOUND, False, _bound),
    ComparisonColumn(glossary.CANARY_AUDIT, False, _canary),
    ComparisonColumn(glossary.VAL_ACC, True, lambda row: "unknown" if row.val_acc is None
                     else format_rate(row.val_acc)),
    ComparisonColumn(glossary.AUC, True, lambda row: format_auc(row.auc, row.auc_interval)),
    ComparisonColumn(glossary.TPR_AT_1PCT_FPR, True,
                     lambda row: format_rate_interval(row.tpr_at_1pct_fpr,
                                                      row.tpr_at_1pct_fpr_interval)),
    ComparisonColumn(glossary.STRONGEST_ATTACK, False, _strongest),
    ComparisonColumn(glossary.STRONGEST_AUC, True, lambda row: f"{row.strongest_auc:.3f}"),
    ComparisonColumn(
        glossary.STRONGEST_TPR, True, lambda row: format_rate(row.strongest_tpr_at_1pct_fpr)
    ),
)

TABLE_HEADERS: tuple[str, ...] = tuple(column.header for column in COLUMNS)

# Shown only when some compared run has that audit (most comparisons are membership-only).
OPTIONAL_COLUMNS: tuple[tuple[ComparisonColumn, str], ...] = (
    (ComparisonColumn(glossary.VAL_PERPLEXITY, True,
                      lambda row: "—" if row.val_perplexity is None
                      else f"{row.val_perplexity:.2f}"), "val_perplexity"),
    (ComparisonColumn(glossary.BOUND_THRESHOLD, False,
                      lambda row: row.bound_threshold or "not recorded"), "bound_threshold"),
    (ComparisonColumn(glossary.ATTRIBUTE_INFERENCE, False, _attribute), "attribute_advantage"),
    (ComparisonColumn(glossary.MODEL_INVERSION, False, _inversion), "inversion_recognised"),
)


def columns_for(comparison: Comparison) -> tuple[ComparisonColumn, ...]:
    """:data:`COLUMNS`, plus each optional column some row of ``comparison`` has a value for."""
    extra = tuple(
        column for column, field in OPTIONAL_COLUMNS
        if any(getattr(row, field) is not None for row in comparison.rows)
    )
    return COLUMNS + extra


def table_cells(
    row: ComparisonRow, columns: tuple[ComparisonColumn, ...] = COLUMNS
) -> list[str]:
    """The row as the report shows it, one string per column (default: :data:`COLUMNS`)."""
    return [column.cell(row) for column in columns]


def comparison_cells(
    comparison: Comparison, columns: tuple[ComparisonColumn, ...]
) -> list[list[str]]:
    """Every row's cells as the report shows them: :func:`table_cells`, with each run named as
    :attr:`Comparison.run_labels` names it (runs that share a name, by their directory too)."""
    cells = [table_cells(row, columns) for row in comparison.rows]
    if glossary.RUN in [column.term for column in columns]:
        at = [column.term for column in columns].index(glossary.RUN)
        for row_cells, label in zip(cells, comparison.run_labels, strict=True):
            row_cells[at] = label
    return cells


def comparison_table(comparison: Comparison) -> Table:
    """The report's table as a rich Table, for the CLI to print; its caption says when the runs'
    datasets differ (:attr:`Comparison.dataset_note`)."""
    # Text, not str, for every string from the runs: it is data, never rich markup.
    table = Table(title=Text(
        f"Membership inference ({comparison.attack}) vs. differential privacy"))
    columns = columns_for(comparison)
    for column in columns:
        # fold: a long run name wraps onto a second line instead of being cut to "dp_tutorial_ba…".
        table.add_column(
            column.header, justify="right" if column.numeric else "left", overflow="fold"
        )
    for cells in comparison_cells(comparison, columns):
        table.add_row(*(Text(cell) for cell in cells))
    if comparison.dataset_note is not None:
        table.caption = Text(comparison.dataset_note)
    return table
