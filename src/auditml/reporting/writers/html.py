"""``report.html`` of a comparison: summary, table, vector figures and glossary in one file."""

from __future__ import annotations

from pathlib import Path

from auditml.fileio import write_text
from auditml.reporting import glossary, page
from auditml.reporting.columns import columns_for, table_cells
from auditml.reporting.figures import comparison_figures
from auditml.reporting.many_runs import TERMS as MANY_RUNS_TERMS
from auditml.reporting.many_runs import TITLE as MANY_RUNS_TITLE
from auditml.reporting.plots import svg_element
from auditml.reporting.rows import REPORT_HTML, ComparisonData, ComparisonRow
from auditml.reporting.verdict import BoundSource, StrongestAttack, Verdict, run_verdict
from auditml.reporting.writers.markdown import intro


def row_verdict(row: ComparisonRow, attack: str) -> Verdict:
    bounds = (
        [BoundSource(attack, row.epsilon_lower_bound, row.bound_confidence or 0.95)]
        if row.epsilon_lower_bound is not None
        else []
    )
    return run_verdict(
        dp_enabled=row.dp_enabled,
        claimed_epsilon=row.epsilon,
        bounds=bounds,
        strongest=StrongestAttack(
            row.strongest_attack, row.strongest_tpr_at_1pct_fpr, row.strongest_auc
        ),
    )


def _summary(data: ComparisonData) -> page.Html:
    comparison = data.comparison
    verdicts = [row_verdict(row, comparison.attack) for row in comparison.rows]
    violated = [row.run_name for row in comparison.rows if row.violation] + [
        f"{row.recipe} (many-runs audit)" for row in comparison.dp_audits if row.violation
    ]
    if violated:
        kind, headline = "violation", f"VIOLATION in {', '.join(violated)}: " + (
            "an audit contradicts the privacy the accountant claims"
        )
    else:
        kind, headline = "consistent", "No audit contradicts a run's claimed DP guarantee"
    leakiest = max(comparison.rows, key=lambda row: (row.strongest_tpr_at_1pct_fpr, row.auc))
    bounded = [row for row in comparison.rows if row.epsilon_lower_bound is not None]
    facts = [
        page.Fact(
            glossary.STRONGEST_TPR,
            f"{leakiest.strongest_tpr_at_1pct_fpr:.1%}",
            f"{leakiest.strongest_attack} against {leakiest.run_name} ({leakiest.label})",
            shown="Most leakage: TPR@1%FPR",
        ),
    ]
    if bounded:
        top = max(bounded, key=lambda row: row.epsilon_lower_bound or 0.0)
        facts.append(
            page.Fact(
                glossary.EPSILON_LOWER_BOUND,
                f"ε ≥ {top.epsilon_lower_bound:.2f}",
                f"{top.run_name}; holds with {top.bound_confidence or 0.95:.0%} confidence",
                shown="Largest ε lower bound",
            )
        )
    lines = [f"{row.run_name} ({row.label}): {verdict.headline}"
             for row, verdict in zip(comparison.rows, verdicts, strict=True)]
    return page.summary(kind, headline, facts, extra=[page.bullet_list(lines)])


def render_html(data: ComparisonData) -> str:
    """The content of ``report.html``."""
    comparison = data.comparison
    shown = columns_for(comparison)
    columns = [page.Column(column.term, column.numeric) for column in shown]
    table = page.table(
        columns,
        [table_cells(row, shown) for row in comparison.rows],
        caption="Hover a column header for its definition; all definitions are in the glossary.",
        flagged_rows=[index for index, row in enumerate(comparison.rows) if row.violation],
    )
    figures = [
        page.svg_figure(
            svg_element(named.figure, prefix=f"figure{index}", description=named.caption),
            named.caption,
        )
        for index, named in enumerate(comparison_figures(data))
    ]
    terms = [column.term for column in shown] + [glossary.VIOLATION]
    many_runs: list[page.Html] = []
    if comparison.dp_audits:
        many_runs = [page.section(MANY_RUNS_TITLE, page.table(
            [page.Column(term, index in (1, 2, 3)) for index, term in enumerate(MANY_RUNS_TERMS)],
            [row.cells() for row in comparison.dp_audits],
            caption="Each audits a recipe over many trainings, not one of the runs above.",
            flagged_rows=[i for i, row in enumerate(comparison.dp_audits) if row.violation],
        ))]
        terms += list(MANY_RUNS_TERMS)
    return page.page(
        title=f"Privacy comparison: {comparison.attack}",
        subtitle=intro(comparison),
        blocks=[
            _summary(data),
            page.section("Runs", table),
            *many_runs,
            page.section("Figures", page.figures(*figures)),
            page.glossary(terms),
        ],
    )


def write(directory: Path, data: ComparisonData) -> None:
    write_text(directory / REPORT_HTML, render_html(data))
