"""``data.dataset: npz``: arrays x and y of any input shape, an optional own test split, the
default model chosen from the shape, and one-line errors for bad archives (pickles refused)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.data import DataSource, dataset_spec
from auditml.data.files import holdout_rows
from auditml.errors import DataError


def _save(tmp_path: Path, **arrays: Any) -> Path:
    path = tmp_path / "arrays.npz"
    np.savez(path, **arrays)
    return path


def _spec(path: Path) -> Any:
    return dataset_spec("npz", DataSource(path=path))


@pytest.mark.parametrize(
    ("x_shape", "input_shape", "arch", "dp_arch"),
    [
        ((20, 28, 28), (1, 28, 28), "cnn_28x28", "scatternet_linear"),
        ((20, 1, 28, 28), (1, 28, 28), "cnn_28x28", "scatternet_linear"),
        ((20, 3, 28, 28), (3, 28, 28), "cnn_28x28", "cnn_28x28_gn"),
        ((20, 8, 8), (1, 8, 8), "cnn_8x8", "mlp_small_tanh"),
        ((20, 7), (7,), "mlp_tabular", None),
        ((20, 3, 5, 5), (3, 5, 5), "mlp", None),
    ],
)
def test_shapes_and_default_models(
    tmp_path: Path, x_shape: tuple[int, ...], input_shape: tuple[int, ...], arch: str,
    dp_arch: str | None,
) -> None:
    x = np.arange(np.prod(x_shape), dtype=np.float64).reshape(x_shape)
    spec = _spec(_save(tmp_path, x=x, y=np.arange(20) % 3))
    assert spec.input_shape == input_shape
    assert (spec.default_arch, spec.dp_arch) == (arch, dp_arch)
    assert spec.pool_size == 16 and spec.num_classes == 3
    loaded = spec.load(Path("unused"), False)
    pool, test = holdout_rows(20)
    np.testing.assert_array_equal(loaded.pool.x.reshape(16, -1), x.reshape(20, -1)[pool])
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.test.y, (np.arange(20) % 3)[test])
    assert loaded.pool.x.dtype == np.float32 and loaded.pool.y.dtype == np.int64


def test_own_test_split_and_text_labels_numbered_together(tmp_path: Path) -> None:
    path = _save(
        tmp_path, x=np.zeros((6, 4)), y=np.array(["cat", "dog", "eel", "dog", "cat", "dog"]),
        x_test=np.ones((3, 4)), y_test=np.array(["eel", "cat", "dog"]),
    )
    spec = _spec(path)
    assert spec.pool_size == 6 and spec.num_classes == 3
    loaded = spec.load(Path("unused"), False)
    np.testing.assert_array_equal(loaded.pool.y, [0, 1, 2, 1, 0, 1])
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.test.y, [2, 0, 1])
    np.testing.assert_array_equal(loaded.test.x, np.ones((3, 4), np.float32))


def test_uint8_images_are_scaled(tmp_path: Path) -> None:
    x = np.full((10, 8, 8), 255, dtype=np.uint8)
    loaded = _spec(_save(tmp_path, x=x, y=np.arange(10) % 2)).load(Path("unused"), False)
    np.testing.assert_array_equal(loaded.pool.x, np.ones((8, 1, 8, 8), np.float32))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 2))}, "has no array y (its arrays: x)"),
        ({"inputs": np.zeros((4, 2))}, "has no array x or y (its arrays: inputs)"),
        ({"x": np.zeros((4, 2)), "y": np.zeros(3)}, "x has 4 rows but y has shape (3,)"),
        ({"x": np.array([[1], [2]], dtype=object), "y": np.array([0, 1])},
         "array x holds Python objects, which only pickle can read"),
        ({"x": np.array([[1.0], [np.nan], [2.0]]), "y": np.array([0, 1, 0])},
         "x[1] holds NaN or an infinity"),
        ({"x": np.zeros(4), "y": np.array([0, 1, 0, 1])}, "x has shape (4,)"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0.5, 1])}, "row 2 has 0.5"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 2))},
         "has x_test but no y_test"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 3)),
          "y_test": np.array([0, 1])}, "x_test rows have shape (3,) but x rows (2,)"),
        ({"x": np.array([["a"], ["b"]]), "y": np.array([0, 1])}, "inputs must be numbers"),
        # Found by QA: no features at all, test classes never trained on, and labels too large
        # for int64 (they wrapped negative and failed inside training).
        ({"x": np.zeros((4, 0)), "y": np.array([0, 1, 0, 1])}, "x has shape (4, 0)"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 2)),
          "y_test": np.array([5, 1])}, "y_test has classes that y never has (5)"),
        # Class 2's only row is in the held-out fifth (row 2 of 20), so the pool never has it.
        ({"x": np.zeros((20, 2)), "y": np.array([2 if i == 2 else i % 2 for i in range(20)])},
         "arrays.npz: class 2 has rows only in the held-out test split"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1e19, 0, 1])},
         "class index 1e+19 is above 999"),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 2**64 - 1, 0, 1], np.uint64)},
         "class index 18446744073709551615 is above 999"),
    ],
)
def test_bad_archives_are_refused_in_one_line(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(DataError) as caught:
        _spec(_save(tmp_path, **arrays))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_not_an_npz(tmp_path: Path) -> None:
    text = tmp_path / "table.npz"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"is not a \.npz archive \(not a zip file\); for a "
                                         r"table use data\.dataset: csv") as caught:
        _spec(text)
    assert "pickle" not in str(caught.value)  # numpy's guess, which misled
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"is not a readable \.npz archive"):
        _spec(broken)
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match=r"holds a single array \(.npy\)"):
        _spec(single)


def test_label_column_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path, x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"data\.label_column is not used by data\.dataset: npz"):
        dataset_spec("npz", DataSource(path=path, label_column="y"))
