"""The comparison report's formats, one module each, behind one registry.

A writer takes the staging directory and the :class:`~auditml.reporting.rows.ComparisonData`
and writes its files there. Adding a format is one module here and one ``register`` line below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auditml.registry import Registry
from auditml.reporting.rows import ComparisonData
from auditml.reporting.writers import html, json, markdown

ComparisonWriter = Callable[[Path, ComparisonData], None]

WRITERS: Registry[ComparisonWriter] = Registry("report format")
WRITERS.register("markdown", markdown.write)
WRITERS.register("html", html.write)
WRITERS.register("json", json.write)

__all__ = ["WRITERS", "ComparisonWriter"]
