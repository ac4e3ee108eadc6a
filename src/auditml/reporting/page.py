"""The HTML page of every report: one self-contained file, readable at any width.

Inline CSS, figures as inline SVG or ``data:`` URIs; no script, no font, no link, nothing loaded
from anywhere. Every text is escaped here: callers pass plain strings, and only the builders of
this module (and :func:`auditml.figures.plots.svg_element`) produce markup, typed :class:`Html`.

Layout: the summary comes first; tables are as wide as the page and wrap their headers, and
below 44rem each row becomes a card (label: value), so no table pushes the page sideways.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from auditml.reporting.glossary import Term


class Html(str):
    """Markup built by this module: safe to put in a page as it is."""


_STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1d2430; line-height: 1.5;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 76rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 2rem 0 .75rem; }
p, li, dd { overflow-wrap: anywhere; }
.subtitle { color: #4a5566; margin: 0 0 1rem; }
abbr[title] { text-decoration: underline dotted; cursor: help; }
.summary { background: #fff; border-left: .4rem solid #6b7685; border-radius: .4rem;
           padding: 1rem 1.25rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.summary.violation { border-color: #b3261e; background: #fdecea; }
.summary.consistent { border-color: #1e7d32; }
.summary.unverified { border-color: #8a6d00; }
.summary.leaks { border-color: #c25e00; }
.headline { font-size: 1.15rem; font-weight: 600; margin: 0 0 .75rem; }
.facts { display: grid; gap: .75rem; margin: 0;
         grid-template-columns: repeat(auto-fit, minmax(min(15rem, 100%), 1fr)); }
.fact { margin: 0; }
.fact dt { font-size: .85rem; color: #4a5566; }
.fact dd { margin: 0; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
.fact .note { display: block; font-size: .8rem; color: #4a5566; }
.table-box { max-width: 100%; overflow-x: auto; }
table { width: 100%; border-collapse: collapse; background: #fff; font-size: .92rem; }
caption { text-align: left; color: #4a5566; padding: .25rem 0; caption-side: bottom; }
th, td { padding: .45rem .5rem; border-bottom: 1px solid #dde1e6; vertical-align: top;
         text-align: left; }
th { background: #eceff3; font-weight: 600; }
td { overflow-wrap: anywhere; }  /* a long run name wraps instead of widening the table */
.number { text-align: right; font-variant-numeric: tabular-nums; }
td.number { white-space: nowrap; }
tr.violation td { background: #fdecea; }
.flag { color: #b3261e; font-weight: 700; }
.figures { display: grid; gap: 1rem;
           grid-template-columns: repeat(auto-fill, minmax(min(28rem, 100%), 1fr)); }
.figures.wide { grid-template-columns: 1fr; }
figure { margin: 0; background: #fff; padding: .75rem; border-radius: .4rem; }
figure svg, figure img { display: block; width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #4a5566; margin-top: .5rem; }
dl.glossary dt { font-weight: 600; margin-top: .6rem; }
dl.glossary dd { margin-left: 1.25rem; }
@media (max-width: 44rem) {
  table.cards thead { display: none; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { margin-bottom: .75rem; border: 1px solid #dde1e6; }
  table.cards td { display: flex; justify-content: space-between; gap: 1rem; text-align: right; }
  table.cards td::before { content: attr(data-label); font-weight: 600; text-align: left; }
}
"""


def text(value: str) -> Html:
    return Html(escape(value))


def join(parts: Iterable[str]) -> Html:
    """Concatenate; plain strings are escaped, :class:`Html` is kept."""
    return Html("".join(part if isinstance(part, Html) else escape(part) for part in parts))


def defined(term: Term, shown: str | None = None) -> Html:
    """The term's name (or ``shown``) with its definition on hover."""
    label = term.name if shown is None else shown
    return Html(f'<abbr title="{escape(term.definition)}">{escape(label)}</abbr>')


def paragraph(*parts: str, css_class: str | None = None) -> Html:
    attribute = f' class="{escape(css_class)}"' if css_class else ""
    return Html(f"<p{attribute}>{join(parts)}</p>")


def section(heading: str, *blocks: str) -> Html:
    return Html(f"<section><h2>{escape(heading)}</h2>{join(blocks)}</section>")


def bullet_list(items: Sequence[str]) -> Html:
    return Html("<ul>" + "".join(f"<li>{join([item])}</li>" for item in items) + "</ul>")


@dataclass(frozen=True)
class Fact:
    """One number of the summary: what it is (hover), its value, and a short qualifier."""

    term: Term
    value: str
    note: str = ""
    shown: str | None = None


def summary(kind: str, headline: str, facts: Sequence[Fact], *, extra: Sequence[str] = ()) -> Html:
    """The box a reader sees first: the verdict and the few numbers that support it."""
    items = "".join(
        f'<div class="fact"><dt>{defined(fact.term, fact.shown)}</dt>'
        f"<dd>{escape(fact.value)}"
        + (f'<span class="note">{escape(fact.note)}</span>' if fact.note else "")
        + "</dd></div>"
        for fact in facts
    )
    return Html(
        f'<section class="summary {escape(kind)}" aria-label="summary">'
        f'<p class="headline">{escape(headline)}</p>{join(extra)}<dl class="facts">{items}</dl>'
        "</section>"
    )


@dataclass(frozen=True)
class Column:
    term: Term
    numeric: bool
    shown: str | None = None


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    caption: str = "",
    flagged_rows: Sequence[int] = (),
) -> Html:
    """A table as wide as its column; a card per row on narrow screens."""
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row has {len(row)} cells but there are {len(columns)} columns")
    head = "".join(
        f'<th scope="col"{_number_class(column)}>{defined(column.term, column.shown)}</th>'
        for column in columns
    )
    flagged = set(flagged_rows)
    body = "".join(
        ('<tr class="violation">' if index in flagged else "<tr>")
        + "".join(
            f'<td{_number_class(column)} data-label="{escape(column.shown or column.term.name)}">'
            f"{_cell(cell)}</td>"
            for column, cell in zip(columns, row, strict=True)
        )
        + "</tr>"
        for index, row in enumerate(rows)
    )
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return Html(
        f'<div class="table-box"><table class="cards">{caption_html}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _number_class(column: Column) -> str:
    return ' class="number"' if column.numeric else ""


def _cell(cell: str) -> str:
    # The word VIOLATION inside a cell is the one thing a reader must not miss.
    return escape(cell).replace("VIOLATION", '<span class="flag">VIOLATION</span>')


def svg_figure(svg: str, caption: str) -> Html:
    """A figure from :func:`auditml.figures.plots.svg_element` (already safe markup)."""
    return Html(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>")


def png_figure(png: bytes, caption: str) -> Html:
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Html(
        f'<figure><img alt="{escape(caption)}" src="{source}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def figures(*items: Html, wide: bool = False) -> Html:
    """Figures side by side where the page is wide enough; ``wide``: one per row, full width."""
    return Html(f'<div class="figures{" wide" if wide else ""}">{"".join(items)}</div>')


def glossary(terms: Iterable[Term]) -> Html:
    unique = list(dict.fromkeys(terms))
    entries = "".join(
        f"<dt>{escape(term.name)}</dt><dd>{escape(term.definition)}</dd>" for term in unique
    )
    return section("Glossary", Html(f'<dl class="glossary">{entries}</dl>'))


def page(*, title: str, subtitle: str, blocks: Sequence[str]) -> str:
    """The whole document."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="subtitle">{escape(subtitle)}</p>\n{join(blocks)}\n</main>\n</body>\n</html>\n'
    )
