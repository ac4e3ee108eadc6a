"""What a dataset is to auditml: arrays in memory, and a spec the registry holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# A dataset without an official test split keeps at least this many examples for validation.
MIN_VALIDATION_SIZE = 100


@dataclass(frozen=True)
class ArrayDataset:
    """Images as float32 ``(N, C, H, W)`` (normalised) and labels as int64 ``(N,)``."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        return ArrayDataset(self.x[indices], self.y[indices])


@dataclass(frozen=True)
class LoadedDataset:
    """The training pool (members and non-members are drawn from it) and the official test split.

    ``test`` is None for datasets without one; validation then comes from the pool.
    """

    pool: ArrayDataset
    test: ArrayDataset | None


Loader = Callable[[Path, bool], LoadedDataset]


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: facts known without loading, and the loader.

    ``load(data_dir, download)`` returns the dataset, downloading missing files first when
    ``download`` is true, or raises ``DataError`` naming the files that are missing, where to put
    them, and why they were not fetched (downloads disabled, or the download failed).
    """

    name: str
    pool_size: int
    has_test_split: bool
    input_shape: tuple[int, int, int]
    num_classes: int
    default_arch: str
    load: Loader

    @property
    def max_train_size(self) -> int:
        """Largest ``train_size`` that still leaves an equal non-member set (and validation)."""
        if self.has_test_split:
            return self.pool_size // 2
        return (self.pool_size - MIN_VALIDATION_SIZE) // 2
