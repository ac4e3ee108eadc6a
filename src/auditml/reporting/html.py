"""``report.html``: one self-contained file (inline CSS, images as base64 ``data:`` URIs).

The renderer takes ready-formatted strings, so the HTML table shows exactly what ``report.md``
shows. Every piece of text is escaped with :func:`html.escape`; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.35rem 0.7rem; }
th { background: #f3f3f3; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
dt { font-weight: 600; margin-top: 0.5rem; }
dd { margin-left: 1.5rem; }
"""


@dataclass(frozen=True)
class InlineImage:
    """A PNG embedded in the page; ``caption`` doubles as the alt text."""

    caption: str
    png: bytes


def render_html(
    *,
    title: str,
    intro: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric_columns: Sequence[int],
    notes: Sequence[tuple[str, str]],
    images: Sequence[InlineImage],
) -> str:
    """The whole page as a string. ``notes`` are (column, explanation) pairs shown under the
    table; ``numeric_columns`` are right-aligned."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells but there are {len(headers)} headers")
    numeric = set(numeric_columns)
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="number">{escape(cell)}</td>'
            if index in numeric
            else f"<td>{escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    definitions = "\n".join(
        f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in notes
    )
    figures = "\n".join(
        f'<figure><img alt="{escape(image.caption)}" src="{_data_uri(image.png)}">'
        f"<figcaption>{escape(image.caption)}</figcaption></figure>"
        for image in images
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>{escape(intro)}</p>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody>
</table>
<h2>Columns</h2>
<dl>
{definitions}
</dl>
<h2>Figures</h2>
{figures}
</body>
</html>
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
