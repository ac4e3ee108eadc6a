"""``report.md``: the table, what each column means, and the figures as PNG files beside it."""

from __future__ import annotations

from pathlib import Path

from auditml.figures.plots import png_bytes
from auditml.fileio import write_bytes, write_text
from auditml.reporting import glossary
from auditml.reporting.columns import columns_for, comparison_cells
from auditml.reporting.figures import comparison_figures
from auditml.reporting.many_runs import TERMS as MANY_RUNS_TERMS
from auditml.reporting.many_runs import TITLE as MANY_RUNS_TITLE
from auditml.reporting.rows import REPORT_MD, Comparison, ComparisonData
from auditml.run_directory import METRICS_FILE


def intro(comparison: Comparison) -> str:
    count = len(comparison.rows)
    return (
        f"Membership-inference attack {comparison.attack} against {count} "
        f"run{'s' * (count != 1)}. Every number is read from the run's {METRICS_FILE} and "
        f"audit/{comparison.attack}.json; the ROC curves are drawn from the saved scores."
    )


# Inside a table cell (never at a line's start) these are the characters Markdown acts on; an
# underscore inside a word (dp_tutorial_eps5) does nothing in CommonMark and stays readable.
_MARKDOWN_SPECIAL = set("\\`*[]|~")


def _markdown_cell(text: str) -> str:
    """``text`` (a run's name or label, a number) shown as itself in any Markdown viewer: HTML
    in it is escaped as entities (it would render, links and scripts alike) and Markdown's own
    punctuation with a backslash (it would format or break the table)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in escaped)


def render_markdown(comparison: Comparison, figure_captions: dict[str, str]) -> str:
    """The content of ``report.md``; ``figure_captions`` maps figure file names to captions."""
    columns = columns_for(comparison)
    lines = [
        f"# Privacy comparison: {comparison.attack}",
        "",
        intro(comparison),
        "",
    ]
    if comparison.dataset_note is not None:
        lines += [f"**Note**: {_markdown_cell(comparison.dataset_note)}", ""]
    lines += [
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + "|".join("---:" if column.numeric else "---" for column in columns) + "|",
    ]
    for cells in comparison_cells(comparison, columns):
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    violations = [label for row, label in zip(comparison.rows, comparison.run_labels,
                                              strict=True) if row.violation]
    if violations:
        lines += ["", f"**VIOLATION** in {', '.join(map(_markdown_cell, violations))}: "
                  f"{glossary.VIOLATION.definition}"]
    lines += _many_runs_lines(comparison)
    lines += ["", "## Columns", ""]
    lines += [f"- **{column.header}**: {column.term.definition}" for column in columns]
    if comparison.dp_audits:
        lines += [f"- **{term.name}** ({MANY_RUNS_TITLE}): {term.definition}"
                  for term in MANY_RUNS_TERMS]
    lines += ["", "## Figures", ""]
    for file_name, caption in figure_captions.items():
        lines += [f"![{caption}]({file_name})", ""]
    return "\n".join(lines)


def _many_runs_lines(comparison: Comparison) -> list[str]:
    if not comparison.dp_audits:
        return []
    lines = ["", f"## {MANY_RUNS_TITLE}", "",
             "| " + " | ".join(term.name for term in MANY_RUNS_TERMS) + " |",
             "|---|---:|---:|---:|---|---|"]
    for row in comparison.dp_audits:
        lines.append("| " + " | ".join(_markdown_cell(cell) for cell in row.cells()) + " |")
    for row in comparison.dp_audits:
        if row.violation:
            lines += ["", f"**VIOLATION** in the {'canary' if row.canary_audit else 'many-runs'} "
                      f"audit of {_markdown_cell(row.recipe)}: {_markdown_cell(row.why())}."]
    return lines


def write(directory: Path, data: ComparisonData) -> None:
    captions = {}
    for named in comparison_figures(data):
        write_bytes(directory / named.file_name, png_bytes(named.figure))
        captions[named.file_name] = named.caption
    write_text(directory / REPORT_MD, render_markdown(data.comparison, captions))
