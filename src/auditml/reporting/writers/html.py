"""``report.html`` of a comparison: summary, table, vector figures and glossary in one file."""

from __future__ import annotations

from pathlib import Path

from auditml.figures.plots import svg_element
from auditml.fileio import write_text
from auditml.formatting import format_confidence, format_rate
from auditml.metrics.noise import leakiest_beyond_noise
from auditml.reporting import glossary, page
from auditml.reporting.columns import columns_for, comparison_cells
from auditml.reporting.figures import comparison_figures
from auditml.reporting.many_runs import TERMS as MANY_RUNS_TERMS
from auditml.reporting.many_runs import TITLE as MANY_RUNS_TITLE
from auditml.reporting.rows import ONE_PERCENT_FPR, REPORT_HTML, ComparisonData, ComparisonRow
from auditml.reporting.verdict import (
    NONMEMBER_TAIL_MEANING,
    BoundSource,
    StrongestAttack,
    Verdict,
    VerdictKind,
    joint_confidence,
    run_verdict,
    tail_words,
)
from auditml.reporting.writers.markdown import intro


def row_verdict(row: ComparisonRow, attack: str) -> Verdict:
    bounds = (
        [BoundSource(attack, row.epsilon_lower_bound, row.bound_confidence or 0.95,
                     row.bound_tail)]
        if row.epsilon_lower_bound is not None
        else []
    )
    canary_violated = bool(row.canary_violation) and row.canary_audit is not None
    return run_verdict(
        dp_enabled=row.dp_enabled,
        claimed_epsilon=row.epsilon,
        bounds=bounds,
        strongest=StrongestAttack(
            row.strongest_attack, row.strongest_tpr_at_1pct_fpr, row.strongest_auc,
            row.strongest_beats_chance,
        ),
        rejections=[row.canary_audit] if canary_violated and not row.canary_failed_checks
        else [],
        broken=list(row.canary_failed_checks) if canary_violated else [],
        unchecked=list(row.canary_unchecked),
    )


def _leakage_fact(rows: list[ComparisonRow], labels: list[str]) -> page.Fact:
    """The run that leaks most, only when that is beyond noise: above chance and above every
    other run (:func:`auditml.metrics.noise.leakiest_beyond_noise`); otherwise that in words.
    ``labels`` name the rows (:attr:`~auditml.reporting.rows.Comparison.run_labels`)."""
    shown = "Most leakage: TPR@1%FPR"
    counted = all(row.strongest_members and row.strongest_nonmembers for row in rows)
    index = leakiest_beyond_noise(
        [row.strongest_tpr_at_1pct_fpr for row in rows], ONE_PERCENT_FPR,
        [row.strongest_members or 0 for row in rows],
        [row.strongest_nonmembers or 0 for row in rows],
    ) if counted else None
    if index is not None:
        top = rows[index]
        others = " and above every other run's" if len(rows) > 1 else ""
        return page.Fact(
            glossary.STRONGEST_TPR, format_rate(top.strongest_tpr_at_1pct_fpr),
            f"{top.strongest_attack} against {labels[index]} ({top.label}); beyond noise above "
            f"chance{others} (95%)", shown=shown,
        )
    tprs = sorted(row.strongest_tpr_at_1pct_fpr for row in rows)
    span = (format_rate(tprs[0]) if tprs[0] == tprs[-1]
            else f"{format_rate(tprs[0])} to {format_rate(tprs[-1])}")
    beyond = [label for row, label in zip(rows, labels, strict=True)
              if row.strongest_beats_chance]
    if not counted:
        note = "the rows lack the counts that say whether these differ beyond noise"
    elif not beyond:
        note = ("no run's attack finds members beyond the noise of an attack at chance (95%): "
                "all within noise")
    else:
        note = ("no run leaks measurably more than the others: the differences are within the "
                f"noise of TPR at 1% FPR on this many examples (95%); beyond chance: "
                f"{', '.join(beyond)}")
    return page.Fact(glossary.STRONGEST_TPR, span, note, shown=shown)


def _bound_fact(bounded: list[tuple[ComparisonRow, str]]) -> page.Fact:
    """The largest ε lower bound of the rows that have one, each given with its label
    (:attr:`~auditml.reporting.rows.Comparison.run_labels`)."""
    top, top_label = max(bounded, key=lambda pair: pair[0].epsilon_lower_bound or 0.0)
    bound = top.epsilon_lower_bound or 0.0
    if bound <= 0:
        return page.Fact(glossary.EPSILON_LOWER_BOUND, "none above 0",
                         "no run's audit shows ε > 0 at its confidence",
                         shown="Largest ε lower bound")
    tail = tail_words(top.bound_tail)
    meaning = f". {NONMEMBER_TAIL_MEANING}" if top.bound_tail == "nonmember" else ""
    confidence = f"holds with {format_confidence(top.bound_confidence or 0.95)} confidence"
    if len(bounded) > 1:
        # The largest of several bounds is only as sure as all of them together (union bound).
        joint = joint_confidence([
            BoundSource(label, row.epsilon_lower_bound or 0.0, row.bound_confidence or 0.95)
            for row, label in bounded])
        confidence += (f" for that bound, {format_confidence(joint)} for the largest of "
                       f"{len(bounded)} bounds, one per run")
    return page.Fact(
        glossary.EPSILON_LOWER_BOUND, f"ε ≥ {bound:.2f}",
        f"{top_label}{' (' + tail + ')' if tail else ''}; {confidence}{meaning}",
        shown="Largest ε lower bound",
    )


def _summary(data: ComparisonData) -> page.Html:
    comparison = data.comparison
    verdicts = [row_verdict(row, comparison.attack) for row in comparison.rows]
    labels = comparison.run_labels
    violated = [label for row, label in zip(comparison.rows, labels, strict=True)
                if row.violation] + [
        f"{row.recipe} ({'canary' if row.canary_audit else 'many-runs'} audit)"
        for row in comparison.dp_audits if row.violation
    ]
    unverified = [label for label, verdict in zip(labels, verdicts, strict=True)
                  if verdict.kind is VerdictKind.UNVERIFIED] + [
        f"{row.recipe} (canary audit)" for row in comparison.dp_audits
        if row.unchecked and not row.violation
    ]
    if violated:
        kind, headline = "violation", f"VIOLATION in {', '.join(violated)}: " + (
            "an audit contradicts the claimed DP guarantee (below: how)"
        )
    elif unverified:
        kind, headline = "unverified", (
            "No audit contradicts a run's claimed DP guarantee, but some are not verified: "
            f"{', '.join(unverified)} (assumptions of the accountant not checked)"
        )
    else:
        kind, headline = "consistent", "No audit contradicts a run's claimed DP guarantee"
    bounded = [(row, label) for row, label in zip(comparison.rows, labels, strict=True)
               if row.epsilon_lower_bound is not None]
    facts = [_leakage_fact(comparison.rows, labels)]
    if bounded:
        facts.append(_bound_fact(bounded))
    lines = [f"{label} ({row.label}): {verdict.headline}"
             for row, label, verdict in zip(comparison.rows, labels, verdicts, strict=True)]
    note = ([] if comparison.dataset_note is None
            else [page.paragraph(f"Note: {comparison.dataset_note}")])
    return page.summary(kind, headline, facts, extra=[*note, page.bullet_list(lines)])


def render_html(data: ComparisonData) -> str:
    """The content of ``report.html``."""
    comparison = data.comparison
    shown = columns_for(comparison)
    columns = [page.Column(column.term, column.numeric) for column in shown]
    table = page.table(
        columns,
        comparison_cells(comparison, shown),
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
