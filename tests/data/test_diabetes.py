"""The embedded diabetes data: shapes, the thresholded task, and the sex attribute's decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auditml.data import DATASETS
from auditml.data.diabetes import FEATURES, load_diabetes, standardise


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path / "cache"))


def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    bunch = sklearn_diabetes(scaled=False)
    return bunch.data, bunch.target


def test_shapes_and_the_spec_agree(tmp_path: Path) -> None:
    spec = DATASETS.get("diabetes")
    loaded = load_diabetes(tmp_path, False)
    assert loaded.test is None and not spec.has_test_split
    assert loaded.pool.x.shape == (spec.pool_size, *spec.input_shape) == (442, 10)
    assert loaded.pool.x.dtype == np.float32 and loaded.pool.y.dtype == np.int64
    assert len(FEATURES) == 10 and spec.num_classes == 2


def test_labels_are_the_target_above_its_median(tmp_path: Path) -> None:
    _, target = _raw()
    y = load_diabetes(tmp_path, False).pool.y
    np.testing.assert_array_equal(y, (target > np.median(target)).astype(np.int64))
    assert np.bincount(y).tolist() == [221, 221]


def test_features_are_standardised_raw_values(tmp_path: Path) -> None:
    raw, _ = _raw()
    x = load_diabetes(tmp_path, False).pool.x
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    # The documented constants are rounded to ~7 significant digits.
    np.testing.assert_allclose(x, expected, atol=1e-4)


def test_sex_decodes_to_the_raw_codes(tmp_path: Path) -> None:
    raw, _ = _raw()
    sensitive = DATASETS.get("diabetes").sensitive
    assert sensitive is not None
    assert sensitive.name == "sex" and sensitive.columns == (1,)
    assert sensitive.categories == ("sex=1", "sex=2")
    x = load_diabetes(tmp_path, False).pool.x
    classes = sensitive.classes(x)
    # Category c is raw code c + 1 for every patient: 235 with code 1, 207 with code 2.
    np.testing.assert_array_equal(classes, raw[:, 1].astype(np.int64) - 1)
    assert np.bincount(classes).tolist() == [235, 207]
    # The declared encodings are exactly the values the loader writes into the column.
    assert set(np.unique(x[:, 1]).tolist()) == set(sensitive.values[:, 0].tolist())


def test_with_class_writes_the_loaders_encoding(tmp_path: Path) -> None:
    sensitive = DATASETS.get("diabetes").sensitive
    assert sensitive is not None
    x = load_diabetes(tmp_path, False).pool.x
    as_code_2 = sensitive.with_class(x, 1)
    raw_code_2 = np.array(_raw()[0], copy=True)
    raw_code_2[:, 1] = 2.0
    np.testing.assert_allclose(as_code_2, standardise(raw_code_2), atol=1e-6)


def test_second_load_comes_from_the_cache(tmp_path: Path) -> None:
    first = load_diabetes(tmp_path, False)
    cached = list((tmp_path / "cache").glob("diabetes.decoded-*.npy"))
    assert sorted(path.name.rsplit(".", 2)[-2] for path in cached) == ["x", "y"]
    second = load_diabetes(tmp_path, False)
    np.testing.assert_array_equal(first.pool.x, second.pool.x)
    np.testing.assert_array_equal(first.pool.y, second.pool.y)
