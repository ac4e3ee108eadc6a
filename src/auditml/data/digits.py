"""scikit-learn's bundled handwritten digits: 1,797 grey 8x8 images, no file or network needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset

# Pixel values are integers 0..16; these are the pool's mean and std after scaling to [0, 1].
_MEAN, _STD = 0.3034, 0.3782


def load_digits(data_dir: Path, download: bool) -> LoadedDataset:
    """Load the digits; ``data_dir`` and ``download`` are unused (the data ships with sklearn)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / 16.0 - _MEAN) / _STD
    x = images[:, None, :, :].astype(np.float32)
    y = bunch.target.astype(np.int64)
    return LoadedDataset(pool=ArrayDataset(x, y), test=None)


DIGITS = DatasetSpec(
    name="digits",
    pool_size=1797,
    has_test_split=False,
    input_shape=(1, 8, 8),
    num_classes=10,
    default_arch="cnn_8x8",
    load=load_digits,
)
