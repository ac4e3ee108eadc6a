"""``comparison.json``: the attack, the run directories and every row's fields."""

from __future__ import annotations

from pathlib import Path

from auditml.fileio import write_json
from auditml.reporting.rows import COMPARISON_JSON, ComparisonData


def write(directory: Path, data: ComparisonData) -> None:
    write_json(directory / COMPARISON_JSON, data.comparison.to_json())
