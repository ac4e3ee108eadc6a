"""The UCI Adult loader on small files written in the real format (no network): adult.test's
comment line and trailing '.', '?' values, one-hot blocks, the pool's standardisation, downloads
from a file:// mirror, and one-line errors for bad files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from auditml.data import DATASETS
from auditml.data import adult as adult_module
from auditml.data.adult import FEATURES, NUMERIC, RACE, SEX, block, load_adult
from auditml.data.download import RemoteFile, md5_of_file
from auditml.errors import DataError
from auditml.models import MODELS

# Rows copied in the UCI files' format (", " separators), with '?' where the real files have it.
POOL_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, "
    "White, Male, 0, 0, 13, United-States, <=50K",
    "31, Private, 45781, Masters, 14, Never-married, Prof-specialty, Not-in-family, White, "
    "Female, 14084, 0, 50, United-States, >50K",
    "54, ?, 180211, Some-college, 10, Married-civ-spouse, ?, Husband, Asian-Pac-Islander, Male, "
    "0, 0, 60, South, >50K",
    "37, Private, 284582, Masters, 14, Married-civ-spouse, Exec-managerial, Wife, Black, Female, "
    "0, 0, 40, ?, <=50K",
]
TEST_ROWS = [
    "25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, "
    "0, 40, United-States, <=50K.",
    "44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, "
    "Black, Male, 7688, 0, 40, United-States, >50K.",
    "18, ?, 103497, Some-college, 10, Never-married, ?, Own-child, White, Female, 0, 0, 30, ?, "
    "<=50K.",
]


def _write(directory: Path, pool: list[str] = POOL_ROWS, test: list[str] = TEST_ROWS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # The real adult.data ends with a blank line; adult.test starts with a comment line.
    (directory / "adult.data").write_text("\n".join(pool) + "\n\n", encoding="utf-8")
    (directory / "adult.test").write_text(
        "|1x3 Cross validator\n" + "\n".join(test) + "\n", encoding="utf-8"
    )
    return directory


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path / "cache"))


def test_spec_is_registered_with_sex_declared() -> None:
    spec = DATASETS.get("adult")
    assert spec.has_test_split and spec.num_classes == 2
    assert spec.input_shape == (len(FEATURES),) == (108,)
    assert spec.sensitive is SEX and SEX.categories == ("Female", "Male")
    assert [FEATURES[column] for column in SEX.columns] == ["sex=Female", "sex=Male"]
    assert RACE.categories[0] == "White" and len(RACE.columns) == 5
    assert spec.default_arch in MODELS


def test_rows_labels_and_one_hot_blocks(tmp_path: Path) -> None:
    _write(tmp_path / "adult")
    loaded = load_adult(tmp_path, False)
    assert loaded.test is not None
    assert loaded.pool.x.shape == (5, 108) and loaded.test.x.shape == (3, 108)
    assert loaded.pool.x.dtype == np.float32 and loaded.pool.y.dtype == np.int64
    np.testing.assert_array_equal(loaded.pool.y, [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(loaded.test.y, [0, 1, 0])  # the trailing '.' is dropped
    np.testing.assert_array_equal(SEX.classes(loaded.pool.x), [1, 1, 0, 1, 0])
    np.testing.assert_array_equal(SEX.classes(loaded.test.x), [1, 1, 0])
    np.testing.assert_array_equal(RACE.classes(loaded.pool.x), [0, 0, 0, 1, 4])
    # Every categorical attribute sets exactly one column of its block.
    onehot = loaded.pool.x[:, len(NUMERIC):]
    assert set(np.unique(onehot).tolist()) == {0.0, 1.0}
    assert (onehot.sum(axis=1) == 8).all()
    # '?' is a category of its own: row 3's workclass and occupation, row 4's country.
    assert loaded.pool.x[3, FEATURES.index("workclass=?")] == 1
    assert loaded.pool.x[3, FEATURES.index("occupation=?")] == 1
    assert loaded.pool.x[4, FEATURES.index("native-country=?")] == 1
    assert loaded.pool.x[4, block("native-country")].sum() == 1


def test_numeric_columns_use_the_pools_statistics(tmp_path: Path) -> None:
    _write(tmp_path / "adult")
    loaded = load_adult(tmp_path, False)
    assert loaded.test is not None
    ages = np.array([39, 50, 31, 54, 37], dtype=np.float64)
    np.testing.assert_allclose(loaded.pool.x[:, 0], (ages - ages.mean()) / ages.std(), rtol=1e-6)
    # The test split is standardised with the pool's mean and std, not its own.
    np.testing.assert_allclose(
        loaded.test.x[:, 0], (np.array([25, 44, 18]) - ages.mean()) / ages.std(), rtol=1e-6
    )
    # capital-loss is 0 in every pool row: a constant column stays 0, never NaN.
    assert (loaded.pool.x[:, NUMERIC.index("capital-loss")] == 0).all()


def test_second_load_comes_from_the_cache(tmp_path: Path) -> None:
    _write(tmp_path / "adult")
    first = load_adult(tmp_path, False)
    cached = sorted((tmp_path / "adult").glob("adult.decoded-*.npy"))
    assert [path.name.rsplit(".", 2)[-2] for path in cached] == [
        "x_pool", "x_test", "y_pool", "y_test"
    ]
    second = load_adult(tmp_path, False)
    np.testing.assert_array_equal(first.pool.x, second.pool.x)


def test_missing_files_without_downloads_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="adult: files not found and downloads are disab") as err:
        load_adult(tmp_path, False)
    assert "data.download: true" in str(err.value) and str(tmp_path / "adult") in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_files_are_downloaded_and_md5_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = _write(tmp_path / "mirror")
    remotes = tuple(
        RemoteFile(name, ((mirror / name).as_uri(),), md5_of_file(mirror / name))
        for name in ("adult.data", "adult.test")
    )
    monkeypatch.setattr(adult_module, "REMOTE_FILES", remotes)
    loaded = load_adult(tmp_path / "data", True)
    assert loaded.pool.x.shape == (5, 108)
    assert (tmp_path / "data" / "adult" / "adult.test").is_file()
    # A file whose content is not the published one is refused and not kept.
    (tmp_path / "data" / "adult" / "adult.test").unlink()
    wrong = (remotes[0], RemoteFile("adult.test", remotes[1].urls, "0" * 32))
    monkeypatch.setattr(adult_module, "REMOTE_FILES", wrong)
    with pytest.raises(DataError, match=r"could not download adult\.test .*does not match"):
        load_adult(tmp_path / "data", True)
    assert not (tmp_path / "data" / "adult" / "adult.test").exists()


def test_the_official_mirror_and_checksums_are_declared() -> None:
    for remote in adult_module.REMOTE_FILES:
        assert remote.urls[0].startswith("https://archive.ics.uci.edu/")
        assert remote.urls[0].endswith("/" + remote.name) and len(remote.md5) == 32


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("39, State-gov, 77516, Bachelors, 13", "expected 15 comma-separated fields, found 5"),
        (POOL_ROWS[0].replace("Male", "Robot"), "sex='Robot' is not one of adult.names' values"),
        (POOL_ROWS[0].replace("77516", "many"), "fnlwgt='many' is not a finite number"),
        (POOL_ROWS[0].replace("<=50K", "rich"), "income 'rich' is neither"),
        (POOL_ROWS[0].replace("Male", "?"), "sex='?' is not one of"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    _write(tmp_path / "adult", pool=[POOL_ROWS[1], row])
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_adult(tmp_path, False)
    assert f"{tmp_path / 'adult' / 'adult.data'}, line 2" in str(err.value)
    assert "replace the file with the UCI original" in str(err.value)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "adult", test=[])
    with pytest.raises(DataError, match=r"adult\.test holds no rows"):
        load_adult(tmp_path, False)
