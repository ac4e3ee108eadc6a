"""``data.dataset: csv``: a table of your own, one row per example, under a line of column names.

``data.label_column`` names the label (integer class indices, or class names numbered in
sorted order). Every other column is a feature, in the file's order:

- a column whose every cell is a number is numeric: one feature, standardised with the mean
  and standard deviation of the pool's rows (the held-out test rows use the pool's, so no
  statistic comes from them, as adult does; a constant column stays 0);
- any other column is categorical: one-hot (0 or 1), one feature per distinct value, in sorted
  order (the values come from every row, so a test row's value always has its column). More
  than :data:`MAX_CATEGORIES` distinct values is refused: such a column is an id or free text,
  whose one-hot features (one per row) would only let the model memorise rows and grow memory
  with rows squared; drop it or make it numeric.

``data.sensitive_column`` (optional) declares the attribute ``attribute_inference`` guesses.
It is one-hot whatever its cells hold (as adult declares ``sex``), its categories sorted
(numerically when they are numbers). Empty cells, NaN and infinities are refused (with their
column and line): fill them or drop the row. The test split is held out as
:mod:`auditml.data.files` says.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DataSource, SensitiveAttribute
from auditml.data.files import DecodedFile, FileFormat, class_indices, holdout_rows
from auditml.errors import DataError

# More categories than this is a measured quantity or an id, not an attribute to guess.
MAX_SENSITIVE_CATEGORIES = 100
# More distinct values than this in a categorical feature column is an id or free text, not a
# category (adult's widest, native-country, has 42): refused before its one-hot block, rows x
# values, is formed (30,000 ids took 3.6 GB).
MAX_CATEGORIES = 300
# An error lists this many of the file's columns (one line stays readable).
LISTED_COLUMNS = 40


def decode_csv(path: Path, content: bytes, source: DataSource) -> DecodedFile:
    label_column, sensitive_column = source.label_column, source.sensitive_column
    if label_column is None:  # FileFormat.bind refuses this first; kept for direct callers
        raise DataError("data.dataset: csv needs data.label_column: set it")
    header, rows, lines = _read_table(path, content)
    for option, column in (("label_column", label_column), ("sensitive_column", sensitive_column)):
        if column is not None and column not in header:
            shown = ", ".join(header[:LISTED_COLUMNS])
            hidden = len(header) - LISTED_COLUMNS
            more = f" and {hidden} more" if hidden > 0 else ""
            raise DataError(
                f"data.{option} {column!r} is not a column of {path.name}; its columns: "
                f"{shown}{more}"
            )
    if sensitive_column == label_column:
        raise DataError(
            f"data.sensitive_column {sensitive_column!r} is the label column; name a feature "
            "column (attribute inference guesses an input the model sees)"
        )
    columns = {name: [row[index] for row in rows] for index, name in enumerate(header)}
    for name, cells in columns.items():
        _check_cells(path, name, cells, lines)

    def line(index: int) -> str:
        return f"line {lines[index]}"

    label_cells = columns[label_column]
    where = f"{path.name}, label column {label_column!r}"
    numbers = [_number(cell) for cell in label_cells]
    text_at = next((index for index, number in enumerate(numbers) if number is None), None)
    if text_at is None:
        labels, num_classes, names = class_indices(
            np.asarray(numbers, dtype=np.float64), where, line
        )
    elif any(number is not None for number in numbers):
        number_at = next(index for index, number in enumerate(numbers) if number is not None)
        raise DataError(
            f"{where}: mixes numbers ({line(number_at)}: {label_cells[number_at]!r}) and text "
            f"({line(text_at)}: {label_cells[text_at]!r}); labels must be all class indices or "
            "all class names"
        )
    else:
        labels, num_classes, names = class_indices(np.asarray(label_cells, dtype=str), where, line)

    pool_rows, test_rows = holdout_rows(len(rows))
    blocks: list[np.ndarray] = []
    sensitive: SensitiveAttribute | None = None
    width = 0
    for name in header:
        if name == label_column:
            continue
        cells = columns[name]
        values = [_number(cell) for cell in cells]
        if name == sensitive_column:
            # Counted before the one-hot block (rows x values) is formed.
            distinct = len(set(cells))
            if distinct < 2 or distinct > MAX_SENSITIVE_CATEGORIES:
                raise DataError(
                    f"data.sensitive_column {name!r} has {distinct} distinct values; "
                    f"attribute inference guesses a category, so it needs 2 to "
                    f"{MAX_SENSITIVE_CATEGORIES} (bin a measured column into ranges first)"
                )
            block, categories = _one_hot(cells, values)
            sensitive = SensitiveAttribute(
                name=name, columns=tuple(range(width, width + len(categories))),
                values=np.eye(len(categories), dtype=np.float32), categories=categories,
            )
        elif all(value is not None for value in values):
            numeric = np.asarray(values, dtype=np.float64)
            # Scaled first, so values near the float64 limit (1e300) neither overflow the mean
            # or the variance nor standardise the column to zeros.
            scale = float(np.abs(numeric).max()) or 1.0
            scaled = numeric / scale
            mean, std = scaled[pool_rows].mean(), scaled[pool_rows].std()
            block = ((scaled - mean) / (std if std > 0 else 1.0))[:, None]
        else:
            distinct = len(set(cells))
            if distinct > MAX_CATEGORIES:
                raise DataError(
                    f"{path.name}, column {name!r}: {distinct} distinct values, not all numbers "
                    f"(more than {MAX_CATEGORIES} for a category, each of which would be a "
                    "one-hot feature); it looks like an id or free text: drop the column, or "
                    "make it numeric"
                )
            block, _ = _one_hot(cells, [None] * len(cells))
        blocks.append(block.astype(np.float32))
        width += block.shape[1]
    if not blocks:
        raise DataError(
            f"{path.name} has no feature columns besides the label {label_column!r}; add the "
            "columns the model should learn from"
        )
    features = ArrayDataset(np.hstack(blocks), labels)
    return DecodedFile(
        x=features.x[pool_rows], y=labels[pool_rows], num_classes=num_classes,
        test=features.subset(test_rows), sensitive=sensitive, class_names=names,
    )


def _read_table(path: Path, content: bytes) -> tuple[list[str], list[list[str]], list[int]]:
    """The header, the data rows (cells stripped of surrounding spaces) and each row's line."""
    try:
        text = content.decode("utf-8-sig")  # a byte-order mark (Excel's UTF-8) is no header
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path.name} is not UTF-8 text (byte {error.start}); save it as UTF-8 CSV"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue  # blank lines
            cells = [cell.strip() for cell in record]
            if header is None:
                header = cells
                _check_header(path, header)
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path.name}, line {reader.line_num}: {len(cells)} fields where the header "
                    f"has {len(header)}; every row needs one cell per column"
                )
            rows.append(cells)
            lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{path.name}, line {reader.line_num}: not valid CSV ({error})") from None
    if header is None:
        raise DataError(f"{path.name} is empty; it needs a header line naming the columns")
    if not rows:
        raise DataError(f"{path.name} has a header but no rows")
    return header, rows, lines


def _check_header(path: Path, header: list[str]) -> None:
    empty = next((index for index, name in enumerate(header) if not name), None)
    if empty is not None:
        raise DataError(
            f"{path.name}: column {empty + 1} of the header line has no name; name every column"
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path.name}: two columns are named {name!r}; rename one")
        seen.add(name)


def _check_cells(path: Path, name: str, cells: list[str], lines: list[int]) -> None:
    for index, cell in enumerate(cells):
        if not cell:
            raise DataError(
                f"{path.name}, column {name!r}, line {lines[index]}: empty cell; fill it or drop "
                "the row"
            )
        number = _number(cell)
        if number is not None and not math.isfinite(number):
            raise DataError(
                f"{path.name}, column {name!r}, line {lines[index]}: {cell!r} is not a finite "
                "number; fill it with a value or drop the row"
            )


def _number(cell: str) -> float | None:
    """The cell's value when it is a number (after :func:`_check_cells`, a finite one)."""
    try:
        return float(cell)
    except ValueError:
        return None


def _one_hot(cells: list[str], values: list[float | None]) -> tuple[np.ndarray, tuple[str, ...]]:
    """One column per distinct cell, sorted by value where every cell is a number, else as text."""
    numeric = all(value is not None for value in values)
    distinct = sorted(
        set(cells), key=(lambda cell: (float(cell), cell)) if numeric else (lambda cell: cell)
    )
    index = {cell: position for position, cell in enumerate(distinct)}
    block = np.zeros((len(cells), len(distinct)), dtype=np.float32)
    block[np.arange(len(cells)), [index[cell] for cell in cells]] = 1.0
    return block, tuple(distinct)


CSV_FILE = FileFormat(
    name="csv", decode=decode_csv, options=("label_column", "sensitive_column"),
    required=("label_column",),
)
