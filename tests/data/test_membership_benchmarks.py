"""Purchase-100 and Texas-100 on small files in the published format; they are never downloaded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from auditml.data import DATASETS
from auditml.data.membership_benchmarks import (
    PURCHASE_FEATURES,
    TEXAS_FEATURES,
    load_purchase100,
    load_texas100,
)
from auditml.errors import DataError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path / "cache"))


def _lines(table: np.ndarray) -> str:
    return "\n".join(",".join(str(value) for value in row) for row in table) + "\n"


def _purchase(tmp_path: Path, rows: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (rows, PURCHASE_FEATURES))
    labels = rng.integers(1, 101, rows)
    labels[0], labels[1] = 1, 100  # both ends of the label range
    (tmp_path / "purchase100").mkdir()
    (tmp_path / "purchase100" / "dataset_purchase").write_text(
        _lines(np.column_stack([labels, x]))
    )
    return x, labels


def _texas(tmp_path: Path, rows: int = 5, label_rows: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, (rows, TEXAS_FEATURES))
    directory = tmp_path / "texas100" / "texas" / "100"
    directory.mkdir(parents=True)
    (directory / "feats").write_text(_lines(x))
    count = rows if label_rows is None else label_rows
    (directory / "labels").write_text("\n".join(str(3 + i) for i in range(count)) + "\n")
    return x


def test_specs() -> None:
    for name, features in (("purchase100", 600), ("texas100", 6169)):
        spec = DATASETS.get(name)
        assert spec.input_shape == (features,) and spec.num_classes == 100
        assert not spec.has_test_split and spec.sensitive is None


def test_purchase_rows_and_labels(tmp_path: Path) -> None:
    x, labels = _purchase(tmp_path)
    loaded = load_purchase100(tmp_path, True)
    assert loaded.test is None
    assert loaded.pool.x.dtype == np.float32 and loaded.pool.y.dtype == np.int64
    np.testing.assert_array_equal(loaded.pool.x, x)
    np.testing.assert_array_equal(loaded.pool.y, labels - 1)
    assert loaded.pool.y[:2].tolist() == [0, 99]
    # The second load comes from the cache (beside the file), with the same arrays.
    assert len(list((tmp_path / "purchase100").glob("purchase100.decoded-*.npy"))) == 2
    np.testing.assert_array_equal(load_purchase100(tmp_path, True).pool.x, x)


def test_texas_rows_and_labels(tmp_path: Path) -> None:
    x = _texas(tmp_path)
    loaded = load_texas100(tmp_path, False)
    np.testing.assert_array_equal(loaded.pool.x, x)
    np.testing.assert_array_equal(loaded.pool.y, [2, 3, 4, 5, 6])


def test_texas_files_of_different_lengths_are_refused(tmp_path: Path) -> None:
    _texas(tmp_path, rows=5, label_rows=4)
    with pytest.raises(DataError, match=r"has 5 rows but .*labels has 4"):
        load_texas100(tmp_path, False)


@pytest.mark.parametrize("loader", [load_purchase100, load_texas100])
def test_missing_files_say_where_to_put_them_and_that_nothing_is_downloaded(
    tmp_path: Path, loader: object
) -> None:
    with pytest.raises(DataError) as err:
        loader(tmp_path, True)  # type: ignore[operator]
    message = str(err.value)
    assert "\n" not in message and "github.com/privacytrustlab/datasets" in message
    assert "does not download it: no checksum is published" in message
    assert re.search(r"dataset_(purchase|texas)\.tgz", message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: text.replace("\n", ",0\n", 1), "line 1: expected 601 comma-separated values"),
        (lambda text: text.replace("\n", "\n\n", 1), "line 2: expected 601 comma-separated values, "
                                                     "found 0"),
        (lambda text: "x" + text[1:], "lines 1..7: a value is not an integer"),
        (lambda text: text.replace(",0,", ",2,", 1), "features must be 0 or 1"),
        (lambda text: "0" + text[text.index(","):], "labels must be 1..100, found 0..100"),
        (lambda text: "", "is empty"),
    ],
)
def test_bad_files_are_refused_in_one_line(
    tmp_path: Path, change: object, message: str
) -> None:
    _purchase(tmp_path)
    path = tmp_path / "purchase100" / "dataset_purchase"
    path.write_text(change(path.read_text()))  # type: ignore[operator]
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_purchase100(tmp_path, True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
