"""``data.dataset: csv``: columns encoded as documented (standardised with the pool's statistics,
one-hot in sorted order), labels numbered, the sensitive column declared, the test rows held out
with a fixed seed, and one-line errors for bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from auditml.data import DataSource, dataset_spec
from auditml.data.csv_file import MAX_CATEGORIES
from auditml.data.files import holdout_rows
from auditml.errors import DataError

HEADER = "age,colour,score,label\n"
ROWS = [
    "30,red,1.5,yes", "40,blue,2.5,no", "50,red,0.5,yes", "20,green,3.0,no", "60,blue,1.0,yes",
    "35,red,2.0,no", "45,green,2.5,yes", "55,blue,0.0,no", "25,red,1.5,yes", "65,green,3.5,no",
]


def _write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_encoding_by_hand(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    spec = dataset_spec("csv", DataSource(path=path, label_column="label"))
    pool_rows, test_rows = holdout_rows(10)
    assert len(test_rows) == 2 and sorted([*pool_rows, *test_rows]) == list(range(10))
    loaded = spec.load(Path("unused"), False)
    assert loaded.test is not None
    assert spec.pool_size == 8 and spec.has_test_split and spec.num_classes == 2
    # age, colour one-hot (blue, green, red), score: 5 features in the file's column order.
    assert spec.input_shape == (5,) and spec.default_arch == "mlp_tabular"
    ages = np.array([30, 40, 50, 20, 60, 35, 45, 55, 25, 65], dtype=np.float64)
    mean, std = ages[pool_rows].mean(), ages[pool_rows].std()
    np.testing.assert_allclose(loaded.pool.x[:, 0], (ages[pool_rows] - mean) / std, rtol=1e-6)
    # The test rows are standardised with the pool's statistics, not their own.
    np.testing.assert_allclose(loaded.test.x[:, 0], (ages[test_rows] - mean) / std, rtol=1e-6)
    colours = ["red", "blue", "red", "green", "blue", "red", "green", "blue", "red", "green"]
    expected = np.array([[c == "blue", c == "green", c == "red"] for c in colours], np.float32)
    np.testing.assert_array_equal(loaded.pool.x[:, 1:4], expected[pool_rows])
    labels = np.array([row.endswith("yes") for row in ROWS], dtype=np.int64)  # no=0, yes=1
    np.testing.assert_array_equal(loaded.pool.y, labels[pool_rows])
    np.testing.assert_array_equal(loaded.test.y, labels[test_rows])
    assert spec.source_file is not None and spec.source_file.path == str(path)
    assert spec.source_file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_sensitive_column_is_one_hot_and_sorted(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS) + "\n")
    spec = dataset_spec(
        "csv", DataSource(path=path, label_column="label", sensitive_column="colour")
    )
    sensitive = spec.sensitive
    assert sensitive is not None
    assert sensitive.categories == ("blue", "green", "red") and sensitive.columns == (1, 2, 3)
    loaded = spec.load(Path("unused"), False)
    pool_rows, _ = holdout_rows(10)
    colours = np.array(["red", "blue", "red", "green", "blue", "red", "green", "blue", "red",
                        "green"])
    names = np.array(sensitive.categories)[sensitive.classes(loaded.pool.x)]
    np.testing.assert_array_equal(names, colours[pool_rows])


def test_numeric_sensitive_column_sorts_numerically(tmp_path: Path) -> None:
    rows = [f"{age},{'10' if i % 2 else '9'},{i % 2}" for i, age in enumerate(range(20, 40))]
    path = _write(tmp_path, "age,group,label\n" + "\n".join(rows))
    spec = dataset_spec(
        "csv", DataSource(path=path, label_column="label", sensitive_column="group")
    )
    assert spec.sensitive is not None and spec.sensitive.categories == ("9", "10")


def test_integer_labels_are_used_as_class_indices(tmp_path: Path) -> None:
    rows = [f"{i},{[0, 2, 3][i % 3]}" for i in range(12)]
    spec = dataset_spec(
        "csv", DataSource(path=_write(tmp_path, "f,y\n" + "\n".join(rows)), label_column="y")
    )
    assert spec.num_classes == 4
    loaded = spec.load(Path("unused"), False)
    assert loaded.test is not None
    assert set(np.concatenate([loaded.pool.y, loaded.test.y])) == {0, 2, 3}


def test_holdout_is_fixed_and_a_fifth() -> None:
    pool, test = holdout_rows(569)
    assert len(test) == 114 and len(pool) == 455
    np.testing.assert_array_equal(holdout_rows(569)[1], test)


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        (HEADER + "30,red,1.5,yes\n", {"label_column": "target"},
         "data.label_column 'target' is not a column of table.csv; its columns: age, colour, "
         "score, label"),
        (HEADER + "30,red,,yes\n40,blue,2,no\n", {}, "column 'score', line 2: empty cell"),
        (HEADER + "30,red,1,yes\n40,blue,inf,no\n", {}, "column 'score', line 3: 'inf' is not "
         "a finite number"),
        (HEADER + "30,red,1,yes\n40,blue,NaN,no\n", {}, "'NaN' is not a finite number"),
        ("a,label\n1,0.5\n2,1\n", {}, "line 2 has 0.5, not a class index"),
        ("a,label\n1,-1\n2,1\n", {}, "line 2 has -1.0, not a class index"),
        ("a,label\n1,1\n2,yes\n", {}, "mixes numbers (line 2: '1') and text (line 3: 'yes')"),
        ("a,label\n1,1\n2,1\n", {}, "every row has the same label"),
        ("a,label\n1,1\n2,1,3\n", {}, "line 3: 3 fields where the header has 2"),
        ("a,a,label\n1,1,1\n", {}, "two columns are named 'a'"),
        ("", {}, "table.csv is empty"),
        ("a,label\n", {}, "has a header but no rows"),
        ("label\n1\n0\n", {}, "no feature columns besides the label"),
        (HEADER + "30,red,1,yes\n40,blue,2,no\n", {"sensitive_column": "label"},
         "data.sensitive_column 'label' is the label column"),
        (HEADER + "30,red,1,yes\n40,red,2,no\n", {"sensitive_column": "colour"},
         "data.sensitive_column 'colour' has 1 distinct values"),
        (HEADER + "30,red,1,yes\n40,red,2,no\n", {"sensitive_column": "weight"},
         "data.sensitive_column 'weight' is not a column of table.csv"),
    ],
)
def test_bad_files_are_refused_in_one_line(
    tmp_path: Path, text: str, options: dict[str, str], message: str
) -> None:
    path = _write(tmp_path, text)
    source = DataSource(path=path, **{"label_column": "label", **options})
    with pytest.raises(DataError) as caught:
        dataset_spec("csv", source)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("a,label\ncafé,1\nthé,0\n".encode("latin-1"))
    with pytest.raises(DataError, match="is not UTF-8 text"):
        dataset_spec("csv", DataSource(path=path, label_column="label"))


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"set data\.path to it and data\.label_column"):
        dataset_spec("csv", DataSource())
    path = _write(tmp_path, HEADER + "\n".join(ROWS))
    with pytest.raises(DataError, match=r"csv needs data\.label_column"):
        dataset_spec("csv", DataSource(path=path))
    with pytest.raises(DataError, match="no such file"):
        dataset_spec("csv", DataSource(path=tmp_path / "absent.csv", label_column="label"))
    with pytest.raises(DataError, match="is built in and reads no file of yours"):
        dataset_spec("digits", DataSource(path=path))


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + "\n".join(ROWS))
    first = dataset_spec("csv", DataSource(path=path, label_column="label"))
    _write(tmp_path, HEADER + "\n".join([*ROWS, *ROWS]))
    second = dataset_spec("csv", DataSource(path=path, label_column="label"))
    assert second.pool_size == 16 and first.pool_size == 8
    assert first.source_file != second.source_file


def test_a_column_of_huge_values_is_standardised_not_zeroed(tmp_path: Path) -> None:
    """Values near 1e300 overflowed the variance to inf and the column became all zeros, with
    only numpy's RuntimeWarning to say so."""
    rows = [row.replace(row.split(",")[0], f"{row.split(',')[0]}e298", 1) for row in ROWS]
    path = _write(tmp_path, HEADER + "\n".join(rows) + "\n")
    with np.errstate(all="raise"):
        loaded = dataset_spec("csv", DataSource(path=path, label_column="label")).load(
            Path("unused"), False)
    pool_rows, _ = holdout_rows(10)
    ages = np.array([30, 40, 50, 20, 60, 35, 45, 55, 25, 65], dtype=np.float64)[pool_rows]
    np.testing.assert_allclose(loaded.pool.x[:, 0], (ages - ages.mean()) / ages.std(), rtol=1e-5)


def test_a_class_only_in_the_held_out_rows_is_refused(tmp_path: Path) -> None:
    """Found by QA: a class whose only row fell in the held-out fifth left a pool of one class,
    which trained and audited as if nothing were wrong."""
    _, test_rows = holdout_rows(10)
    labels = ["fraud" if index == test_rows[0] else "ok" for index in range(10)]
    rows = [f"{index},{label}" for index, label in enumerate(labels)]
    path = _write(tmp_path, "amount,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        dataset_spec("csv", DataSource(path=path, label_column="label"))
    message = str(caught.value)
    assert message.startswith("table.csv: class 'fraud' has rows only in the held-out test split")
    assert "holds only class 'ok'" in message and "add more rows of that class" in message
    assert "\n" not in message
    # A third class in the pool: the missing one is still named, the pool is not "one class".
    labels[0] = "refund"
    rows = [f"{index},{label}" for index, label in enumerate(labels)]
    path = _write(tmp_path, "amount,label\n" + "\n".join(rows) + "\n", "three.csv")
    with pytest.raises(DataError, match="class 'fraud' has rows only in the held-out") as caught:
        dataset_spec("csv", DataSource(path=path, label_column="label"))
    assert "holds only" not in str(caught.value)


def test_an_id_column_is_refused_not_one_hot_encoded(tmp_path: Path) -> None:
    """Found by QA: an id column became one one-hot feature per row (30,000 rows: a 30,000 x
    30,000 block, and the run died of memory). Up to MAX_CATEGORIES values are categories."""
    rows = [f"c{index % MAX_CATEGORIES},{index % 2}" for index in range(MAX_CATEGORIES + 10)]
    path = _write(tmp_path, "city,label\n" + "\n".join(rows) + "\n", "cities.csv")
    assert dataset_spec("csv", DataSource(path=path, label_column="label")).input_shape == (
        MAX_CATEGORIES,)
    rows = [f"u{index},{index % 2}" for index in range(MAX_CATEGORIES + 1)]
    path = _write(tmp_path, "customer_id,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as caught:
        dataset_spec("csv", DataSource(path=path, label_column="label"))
    message = str(caught.value)
    assert message.startswith(f"table.csv, column 'customer_id': {MAX_CATEGORIES + 1} distinct")
    assert "looks like an id or free text: drop the column, or make it numeric" in message
    assert "\n" not in message
