"""scikit-learn's bundled handwritten digits: 1,797 grey 8x8 images, no file or network needed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset
from auditml.data.cache import cached_arrays

# Pixel values are integers 0..16; these are the pool's mean and std after scaling to [0, 1].
_MEAN, _STD = 0.3034, 0.3782
_POOL_SIZE = 1797


def load_digits(data_dir: Path, download: bool) -> LoadedDataset:
    """Load the digits; ``data_dir`` and ``download`` are unused (the data ships with sklearn).

    Decoded once into the user's cache directory (never into scikit-learn's installation):
    importing scikit-learn and parsing its CSV take longer than auditing a small run.
    """
    source = _bundled_file()
    arrays = (
        cached_arrays([source], "digits", _decode, _is_decoded, prefer_source_dir=False)
        if source is not None else _decode()
    )
    return LoadedDataset(pool=ArrayDataset(arrays["x"], arrays["y"]), test=None)


def _decode() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / 16.0 - _MEAN) / _STD
    return {"x": images[:, None, :, :].astype(np.float32), "y": bunch.target.astype(np.int64)}


def _is_decoded(arrays: dict[str, np.ndarray]) -> bool:
    x, y = arrays.get("x"), arrays.get("y")
    return (
        x is not None and y is not None and x.dtype == np.float32 and y.dtype == np.int64
        and x.shape == (_POOL_SIZE, 1, 8, 8) and y.shape == (_POOL_SIZE,)
    )


def _bundled_file() -> Path | None:
    """scikit-learn's digits file, found without importing scikit-learn (None if elsewhere)."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if candidate.is_file():
            return candidate
    return None


DIGITS = DatasetSpec(
    name="digits",
    pool_size=_POOL_SIZE,
    has_test_split=False,
    input_shape=(1, 8, 8),
    num_classes=10,
    default_arch="cnn_8x8",
    dp_arch="mlp_small_tanh",
    load=load_digits,
)
