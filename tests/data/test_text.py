"""``data.dataset: text``: the embedded records (deterministic, pinned, balanced, nearly all within
max_length), and your own .txt / .jsonl file (labels, max length from the data, held-out test
split, hash) with one-line errors naming the file and line; at the CLI, exit 2 before training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.cli import main
from auditml.data import DATASETS, DataSource, dataset_spec, synthetic_text
from auditml.data.files import holdout_rows
from auditml.data.secrets import RARE_ALPHABET, unused_byte_values
from auditml.data.synthetic_text import (
    CATEGORIES,
    EMBEDDED_SHA256,
    embedded_records,
    generate_records,
    records_digest,
)
from auditml.data.text import EMBEDDED_MAX_LENGTH, MAX_FILE_LENGTH, file_max_length
from auditml.data.text_tokens import BOS_ID, EOS_ID, PAD_ID, decode, truncated
from auditml.errors import DataError


def test_the_embedded_records_are_the_same_every_time() -> None:
    first, second = generate_records(), generate_records()
    assert first.texts == second.texts
    np.testing.assert_array_equal(first.labels, second.labels)
    # The pin holds with the installed (pinned) faker: another process, another day, same data.
    assert records_digest(first) == EMBEDDED_SHA256
    assert generate_records(50, seed=1).texts != generate_records(50).texts


def test_the_embedded_dataset() -> None:
    spec = dataset_spec("text", DataSource())
    assert spec.name == "text" and spec.default_arch == "gpt2_tiny"
    assert not spec.has_test_split and spec.source_file is None
    assert spec.pool_size == 4000 and spec.num_classes == len(CATEGORIES) == 4
    assert spec.input_shape == (EMBEDDED_MAX_LENGTH,) == (168,)
    loaded = spec.load(Path("unused"), False)
    x, y = loaded.pool.x, loaded.pool.y
    assert loaded.test is None
    assert x.dtype == np.int64 and x.shape == (4000, 168) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [1000] * 4)
    records = embedded_records()
    assert len(set(records.texts)) == 4000  # no text is both a member and a non-member
    assert (x[:, 0] == BOS_ID).all()
    # 20 of the 4,000 records (0.5%) are longer than max_length - 2 bytes and are cut.
    cut = truncated(x)
    lengths = np.array([len(text.encode()) for text in records.texts])
    np.testing.assert_array_equal(cut, lengths > EMBEDDED_MAX_LENGTH - 2)
    assert cut.sum() == 20
    for row, text in zip(x[~cut][:50], np.array(records.texts)[~cut][:50], strict=True):
        assert decode(row) == text
        assert row[len(text) + 1] == EOS_ID and (row[len(text) + 2:] == PAD_ID).all()
    # ASCII only: the rare-secret alphabet (bytes 0x80-0xFF) is new to a model trained on it.
    assert set(RARE_ALPHABET) <= set(unused_byte_values(x))
    # Personal data of the kinds the records promise.
    joined = "\n".join(records.texts[:40])
    for marker in ("@example.", "Ticket", "Order", "Account", "Appointment", "$", "-20"):
        assert marker in joined


def test_the_public_records_are_pinned_of_the_same_kind_and_none_is_private() -> None:
    public = dataset_spec("text_public", DataSource())
    private = dataset_spec("text", DataSource())
    assert (public.input_shape, public.task, public.default_arch, public.num_classes) == (
        private.input_shape, "causal_lm", "gpt2_tiny", 4)
    records = synthetic_text.public_records()
    assert records_digest(records) == synthetic_text.PUBLIC_SHA256
    assert not set(records.texts) & set(embedded_records().texts)
    x = public.load(Path("unused"), False).pool.x
    assert x.shape == (4000, 168) and decode(x[0]) == records.texts[0]
    with pytest.raises(DataError, match="built in"):
        dataset_spec("text_public", DataSource(path=Path("notes.txt")))


def test_the_embedded_pool_is_generated_once_per_process() -> None:
    spec = dataset_spec("text", DataSource())
    assert embedded_records() is embedded_records()
    first, second = spec.load(Path("."), False), spec.load(Path("."), False)
    np.testing.assert_array_equal(first.pool.x, second.pool.x)
    first.pool.x[0, 0] = 0  # each load's arrays are its own
    assert second.pool.x[0, 0] == BOS_ID and spec.load(Path("."), False).pool.x[0, 0] == BOS_ID


def test_a_faker_that_generates_other_records_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    embedded_records.cache_clear()
    monkeypatch.setattr(synthetic_text, "EMBEDDED_SHA256", "0" * 64)
    try:
        with pytest.raises(DataError, match=r"differs from the data auditml ships.*constraints"):
            dataset_spec("text", DataSource()).load(Path("."), False)
    finally:
        embedded_records.cache_clear()


def test_the_embedded_data_takes_no_options() -> None:
    with pytest.raises(DataError, match=r"data\.label_column is not used by data\.dataset: text"):
        dataset_spec("text", DataSource(label_column="label"))
    assert "text" in DATASETS


def test_file_max_length() -> None:
    # 100 texts of 1..100 bytes: 99 of them fit in 99 bytes, so 99 + BOS + EOS.
    assert file_max_length(np.arange(1, 101)) == 101
    assert file_max_length(np.array([5])) == 7
    # 1,000 texts: the 10 longest (1%) may be cut, the 11th longest must fit.
    lengths = np.r_[np.full(989, 20), np.full(11, 300)]
    assert file_max_length(lengths) == 302
    assert file_max_length(np.r_[np.full(990, 20), np.full(10, 300)]) == 22
    assert file_max_length(np.array([10_000] * 5)) == MAX_FILE_LENGTH


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_a_txt_file(tmp_path: Path) -> None:
    lines = [f"note {i}: Zoë paid ${i}.00" for i in range(20)]
    # Blank lines (white space only) are skipped; other lines are kept as they are.
    content = "\ufeff" + "\n".join(lines[:10]) + "\n\n   \n" + "\r\n".join(lines[10:]) + "\n"
    path = _write(tmp_path, "notes.txt", content)
    spec = dataset_spec("text", DataSource(path=path))
    pool_rows, test_rows = holdout_rows(20)
    assert spec.name == "text file notes.txt" and spec.default_arch == "gpt2_tiny"
    assert spec.has_test_split and spec.pool_size == len(pool_rows) == 16
    assert spec.num_classes == 1
    longest = max(len(line.encode()) for line in lines)
    assert spec.input_shape == (longest + 2,)
    loaded = spec.load(Path("unused"), False)
    assert loaded.test is not None
    assert [decode(row) for row in loaded.pool.x] == [lines[i] for i in pool_rows]
    assert [decode(row) for row in loaded.test.x] == [lines[i] for i in test_rows]
    assert (loaded.pool.y == 0).all() and loaded.pool.x.dtype == np.int64
    assert spec.source_file is not None and spec.source_file.path == str(path)
    assert spec.source_file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_jsonl_file_with_class_names(tmp_path: Path) -> None:
    records = [{"text": f"order {i} of 東京", "label": ["refund", "order", "ticket"][i % 3]}
               for i in range(30)]
    records[4]["text"] = "two\nlines"  # a line break inside a text is escaped in JSON
    path = _write(tmp_path, "data.jsonl",
                  "\n".join(json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(records))
                  + "\n\n")
    spec = dataset_spec("text", DataSource(path=path))
    assert spec.num_classes == 3
    loaded = spec.load(Path("unused"), False)
    pool_rows, _ = holdout_rows(30)
    names = sorted({"refund", "order", "ticket"})  # numbered in sorted order
    expected = [names.index(records[i]["label"]) for i in pool_rows]
    np.testing.assert_array_equal(loaded.pool.y, expected)
    assert [decode(row) for row in loaded.pool.x] == [records[i]["text"] for i in pool_rows]


def test_jsonl_labels_as_indices_and_one_label(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.jsonl", "\n".join(
        json.dumps({"text": f"t{i}", "label": i % 2 * 3}) for i in range(12)))
    spec = dataset_spec("text", DataSource(path=path))
    assert spec.num_classes == 4  # class indices are used as they are
    assert set(spec.load(Path("."), False).pool.y.tolist()) == {0, 3}
    same = _write(tmp_path, "b.jsonl", "\n".join(
        json.dumps({"text": f"t{i}", "label": "x"}) for i in range(12)))
    one = dataset_spec("text", DataSource(path=same))
    assert one.num_classes == 1 and (one.load(Path("."), False).pool.y == 0).all()


TWELVE = "\n".join(json.dumps({"text": f"line {i}"}) for i in range(12))
BAD_FILES: list[tuple[str, str | bytes, str]] = [
    ("bad.jsonl", TWELVE + '\n{"text": "x"\n',
     'bad.jsonl, line 13: not valid JSON (Expecting \',\' delimiter); each line must be one '
     'object such as {"text": "...", "label": 0}'),
    ("list.jsonl", TWELVE + '\n["x"]\n', 'list.jsonl, line 13: not an object with a "text" key'),
    ("nokey.jsonl", '{"body": "x"}\n' + TWELVE, 'nokey.jsonl, line 1: not an object with a "text"'),
    ("empty.jsonl", TWELVE + '\n\n{"text": "  "}\n',
     'empty.jsonl, line 14: "text" is empty; drop the line or give it a text'),
    ("number.jsonl", TWELVE + '\n{"text": 5}\n', 'number.jsonl, line 13: "text" is int, not a '),
    ("some.jsonl", '{"text": "a", "label": 1}\n' + TWELVE,
     'some.jsonl: line 1 has a "label" but line 2 has none; label every line or none'),
    ("mixed.jsonl", "\n".join(json.dumps({"text": f"t{i}", "label": [1, "b"][i % 2]})
                              for i in range(12)),
     "mixed.jsonl: labels mix numbers (line 1: 1) and text (line 2: 'b')"),
    ("frac.jsonl", "\n".join(json.dumps({"text": f"t{i}", "label": [1, 1.5][i // 11]})
                             for i in range(12)),
     'frac.jsonl, "label": line 12 has 1.5, not a class index'),
    ("bool.jsonl", '{"text": "a", "label": true}\n', 'bool.jsonl, line 1: "label" is true; a '
     "label is a class index"),
    # JSON's escapes can write half a surrogate pair: no character, no UTF-8 bytes.
    ("surrogate.jsonl", TWELVE + '\n{"text": "bad \\ud800 x"}\n',
     'surrogate.jsonl, line 13: "text" holds the lone surrogate \\ud800 (character 5), half of '
     "a \\uXXXX pair and no character: remove it, or give the whole pair or the character "
     "itself"),
    ("surrogate_label.jsonl", "\n".join(json.dumps({"text": f"t{i}", "label": "x"})
                                        for i in range(12))
     + '\n{"text": "a", "label": "x\\udfff"}',
     'surrogate_label.jsonl, line 13: "label" holds the lone surrogate \\udfff (character 2)'),
    ("latin1.txt", "\n".join(f"line {i}" for i in range(12)).encode() + b"\ncaf\xe9\n",
     "latin1.txt, line 13: not UTF-8 text (byte 89 is 0xe9); save the file as UTF-8"),
    ("few.txt", "one\n\ntwo\nthree\n",
     "few.txt has 3 examples; a membership audit needs at least 10"),
    ("notes.csv", "a\n", "data.path notes.csv: data.dataset: text reads .txt (one example per "
     'line) or .jsonl (one {"text": ...} object per line), not .csv; convert it or rename it'),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES,
                         ids=[name for name, *_ in BAD_FILES])
def test_bad_files_name_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: str | bytes,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, name, content)
    with pytest.raises(DataError) as caught:
        dataset_spec("text", DataSource(path=Path(name)))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"data\.path absent\.txt: no such file"):
        dataset_spec("text", DataSource(path=Path("absent.txt")))


@pytest.mark.parametrize(("file", "data", "message"), [
    ("few.txt", {"dataset": "text", "path": "few.txt"},
     "few.txt has 3 examples; a membership audit needs at least 10"),
    ("bad.jsonl", {"dataset": "text", "path": "bad.jsonl"}, "bad.jsonl, line 2: not valid JSON"),
    ("none", {"dataset": "text", "label_column": "y"},
     "data.label_column is not used by data.dataset: text"),
    ("notes.txt", {"dataset": "text", "path": "notes.txt", "train_size": 20},
     "data.train_size=20: text file notes.txt has 16 training examples"),
], ids=["few", "json", "option", "size"])
def test_bad_text_data_ends_in_one_line_at_the_cli(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, file: str, data: dict[str, Any], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "few.txt", "one\n\ntwo\nthree\n")
    _write(tmp_path, "bad.jsonl", '{"text": "a"}\n{"text": \n')
    _write(tmp_path, "notes.txt", "\n".join(f"note {i}" for i in range(20)))
    raw = {
        "experiment_name": "text", "output_dir": str(tmp_path / "results"),
        "data": {"train_size": 4, "batch_size": 2, **data},
        "training": {"epochs": 1, "device": "cpu"},
    }
    code = main(["train", "--config", str(write_config(raw, "text"))])
    _, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert message in lines[0]
    assert not (tmp_path / "results").exists()
