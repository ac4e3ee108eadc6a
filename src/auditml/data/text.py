"""``data.dataset: text``: text for causal language models, as byte-level token ids.

Rows are encoded by :mod:`auditml.data.text_tokens` (``x``: int64 ``(N, max_length)``, BOS,
the text's UTF-8 bytes, EOS, right padding; ``y``: int64 ``(N,)`` a category label, used only
to stratify the member/non-member split). The default model is ``gpt2_tiny``.

Without ``data.path``, the **embedded** data: 4,000 synthetic customer-service records in four
categories (:mod:`auditml.data.synthetic_text`), generated offline and deterministically,
``max_length`` :data:`EMBEDDED_MAX_LENGTH` (0.5% of the records are longer and are cut), no
official test split (validation comes from the pool).

With ``data.path``, your own file, chosen by its suffix:

- ``.txt``: one example per line; blank lines (nothing but white space) are skipped, and every
  other line is an example as it is (only the line break is removed). No labels: every row's
  label is 0.
- ``.jsonl``: one JSON object per line, ``{"text": "..."}``, with an optional ``"label"``
  (an integer class index >= 0, or a class name, numbered in sorted order) on every line or on
  none. Blank lines are skipped.

The file must be UTF-8 (a byte-order mark is ignored); an empty text, a line that is not such
an object, or a file of fewer than :data:`MIN_EXAMPLES` examples ends in one error naming the
file and line. ``max_length`` comes from the data: the 99th percentile of the texts' UTF-8
lengths in bytes (the smallest length at least 99% of the texts fit) plus 2 for BOS and EOS,
capped at :data:`MAX_FILE_LENGTH`; the longer texts (at most 1% unless the cap bites) are cut.
As for the other file formats (:mod:`auditml.data.files`), a fixed fifth of the rows is held
out as the test split, the file is read once and its SHA-256 is recorded, so ``audit`` refuses
it if it changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from auditml.data.base import (
    ArrayDataset,
    DataFile,
    DatasetSpec,
    DataSource,
    LoadedDataset,
)
from auditml.data.files import class_indices, holdout, stat_data_file
from auditml.data.synthetic_text import (
    CATEGORIES,
    EMBEDDED_POOL_SIZE,
    TextRecords,
    embedded_records,
    public_records,
)
from auditml.data.text_tokens import encode
from auditml.errors import DataError

DEFAULT_ARCH = "gpt2_tiny"
# Every embedded record but 20 of 4,000 (the longest is 174 bytes) fits in 168 tokens.
EMBEDDED_MAX_LENGTH = 168
# A file's max_length: its texts' byte lengths at this percentile, plus BOS and EOS, capped.
LENGTH_PERCENTILE = 99.0
MAX_FILE_LENGTH = 512
# Members, non-members, validation and the held-out fifth each need a few examples.
MIN_EXAMPLES = 10
SUFFIXES = (".txt", ".jsonl")
_FORMATS = ".txt (one example per line) or .jsonl (one {\"text\": ...} object per line)"


@dataclass(frozen=True)
class TextData:
    """The registry entry of ``data.dataset: text``: the embedded data, or the file
    ``data.path`` names."""

    name: str = "text"

    def bind(self, source: DataSource) -> DatasetSpec:
        for option in source.given():
            if option != "path":
                raise DataError(
                    f"data.{option} is not used by data.dataset: {self.name} (it takes only "
                    f"data.path, a {_FORMATS} file; labels come from a .jsonl's \"label\"): "
                    f"remove data.{option}"
                )
        if source.path is None:
            return EMBEDDED_TEXT
        path = source.path.absolute()
        if path.suffix.lower() not in SUFFIXES:
            raise DataError(
                f"data.path {source.path}: data.dataset: {self.name} reads {_FORMATS}, not "
                f"{path.suffix or 'a file without a suffix'}; convert it or rename it"
            )
        path, stat = stat_data_file(source.path, f"the {_FORMATS} file")
        return _bound_file(path, stat.st_size, stat.st_mtime_ns)


def load_embedded(data_dir: Path, download: bool) -> LoadedDataset:
    """The embedded records as token ids; ``data_dir`` and ``download`` are unused."""
    return _as_tokens(embedded_records())


def load_public(data_dir: Path, download: bool) -> LoadedDataset:
    """The public records (pretraining data) as token ids; the arguments are unused."""
    return _as_tokens(public_records())


def _as_tokens(records: TextRecords) -> LoadedDataset:
    x = encode(records.texts, EMBEDDED_MAX_LENGTH)
    return LoadedDataset(pool=ArrayDataset(x, np.array(records.labels)), test=None)


EMBEDDED_TEXT = DatasetSpec(
    name="text",
    pool_size=EMBEDDED_POOL_SIZE,
    has_test_split=False,
    input_shape=(EMBEDDED_MAX_LENGTH,),
    num_classes=len(CATEGORIES),
    default_arch=DEFAULT_ARCH,
    load=load_embedded,
    task="causal_lm",
)

# ``data.dataset: text_public``: records of the same kind, none of them the embedded ones, to
# pretrain the base model that a run on ``text`` fine-tunes (``model.base``).
PUBLIC_TEXT = dataclasses.replace(EMBEDDED_TEXT, name="text_public", load=load_public)


def file_max_length(byte_lengths: np.ndarray) -> int:
    """``max_length`` for texts of ``byte_lengths`` bytes: the smallest length that at least
    :data:`LENGTH_PERCENTILE` % of them fit in, plus 2 (BOS, EOS), at most
    :data:`MAX_FILE_LENGTH`."""
    lengths = np.sort(np.asarray(byte_lengths, dtype=np.int64))
    if len(lengths) == 0:
        raise ValueError("byte_lengths must not be empty")
    index = math.ceil(len(lengths) * LENGTH_PERCENTILE / 100) - 1
    return int(min(MAX_FILE_LENGTH, lengths[max(index, 0)] + 2))


def read_text_file(path: Path, content: bytes) -> tuple[list[str], np.ndarray, int]:
    """The texts of a .txt or .jsonl file's ``content``, their labels (int64) and the number of
    classes (1, every label 0, when the file has none)."""
    lines = _lines(path, content)
    if path.suffix.lower() == ".txt":
        texts = [(number, line) for number, line in lines if line.strip()]
        labels: list[tuple[int, Any]] = []
    else:
        texts, labels = _jsonl(path, lines)
    if len(texts) < MIN_EXAMPLES:
        raise DataError(
            f"{path.name} has {len(texts)} examples; a membership audit needs at least "
            f"{MIN_EXAMPLES} (members, non-members, validation and a held-out test split); add "
            "examples, one per line"
        )
    if not labels:
        return [text for _, text in texts], np.zeros(len(texts), np.int64), 1
    numbers = [number for number, _ in labels]

    def row(index: int) -> str:
        return f"line {numbers[index]}"

    values = [value for _, value in labels]
    kinds = {isinstance(value, str) for value in values}
    if len(kinds) > 1:
        first_text = next(i for i, value in enumerate(values) if isinstance(value, str))
        first_number = next(i for i, value in enumerate(values) if not isinstance(value, str))
        raise DataError(
            f"{path.name}: labels mix numbers ({row(first_number)}: {values[first_number]!r}) "
            f"and text ({row(first_text)}: {values[first_text]!r}); make them all class indices "
            "or all class names"
        )
    array = np.asarray(values, dtype=str if kinds == {True} else np.float64)
    if len(np.unique(array)) == 1:
        # One class stratifies nothing; it is as if the file had no labels.
        return [text for _, text in texts], np.zeros(len(texts), np.int64), 1
    indices, num_classes, _ = class_indices(array, f"{path.name}, \"label\"", row)
    return [text for _, text in texts], indices, num_classes


# Keyed by the file's size and modification time as well as its path, as the other file formats
# are (auditml.data.files): a file written again is read again, an unchanged one once.
@lru_cache(maxsize=4)
def _bound_file(path: Path, size: int, mtime_ns: int) -> DatasetSpec:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DataError(f"data.path {path}: cannot read it ({error.strerror})") from None
    texts, labels, num_classes = read_text_file(path, content)
    max_length = file_max_length(np.array([len(text.encode("utf-8")) for text in texts]))
    pool, test = holdout(ArrayDataset(encode(texts, max_length), labels))
    loaded = LoadedDataset(pool=pool, test=test)
    return DatasetSpec(
        name=f"text file {path.name}",
        pool_size=len(pool),
        has_test_split=True,
        input_shape=(max_length,),
        num_classes=num_classes,
        default_arch=DEFAULT_ARCH,
        load=lambda data_dir, download: loaded,
        source_file=DataFile(str(path), hashlib.sha256(content).hexdigest()),
        default_arch_reason=f"text, {max_length} byte tokens a row",
        task="causal_lm",
    )


def _lines(path: Path, content: bytes) -> list[tuple[int, str]]:
    """The file's lines (numbered from 1) without their line breaks."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path.name}, line {line}: not UTF-8 text (byte {error.start} is "
            f"0x{content[error.start]:02x}); save the file as UTF-8"
        ) from None
    # Only \n (and \r\n) end a line: str.splitlines would also split at characters such as
    # U+2028 inside a text, and the line numbers would no longer be the editor's.
    return [(number, line.removesuffix("\r"))
            for number, line in enumerate(text.split("\n"), start=1)]


def _check_encodable(value: str, where: str) -> None:
    """Refuse a JSON string holding a lone surrogate (``"\\ud800"`` without its pair): JSON's
    escapes can write one, but it is no character and has no UTF-8 bytes to train on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataError(
            f"{where} holds the lone surrogate \\u{ord(value[error.start]):04x} (character "
            f"{error.start + 1}), half of a \\uXXXX pair and no character: remove it, or give "
            "the whole pair or the character itself"
        ) from None


def _jsonl(
    path: Path, lines: list[tuple[int, str]]
) -> tuple[list[tuple[int, str]], list[tuple[int, Any]]]:
    texts: list[tuple[int, str]] = []
    labels: list[tuple[int, Any]] = []
    unlabelled: int | None = None
    for number, line in lines:
        if not line.strip():
            continue
        where = f"{path.name}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                f"{where}: not valid JSON ({error.msg}); each line must be one object such as "
                '{"text": "...", "label": 0}'
            ) from None
        if not isinstance(record, dict) or "text" not in record:
            raise DataError(
                f'{where}: not an object with a "text" key; each line must be one object such '
                'as {"text": "...", "label": 0}'
            )
        text = record["text"]
        if not isinstance(text, str):
            raise DataError(f'{where}: "text" is {type(text).__name__}, not a string')
        if not text.strip():
            raise DataError(f'{where}: "text" is empty; drop the line or give it a text')
        _check_encodable(text, f'{where}: "text"')
        texts.append((number, text))
        if "label" in record:
            label = record["label"]
            if isinstance(label, bool) or not isinstance(label, int | float | str):
                raise DataError(
                    f'{where}: "label" is {json.dumps(label)[:40]}; a label is a class index '
                    "(an integer >= 0) or a class name (a string)"
                )
            if isinstance(label, str):
                _check_encodable(label, f'{where}: "label"')
            labels.append((number, label))
        elif unlabelled is None:
            unlabelled = number
        if labels and unlabelled is not None:
            raise DataError(
                f'{path.name}: line {labels[0][0]} has a "label" but line {unlabelled} has none; '
                "label every line or none"
            )
    return texts, labels


TEXT = TextData()
