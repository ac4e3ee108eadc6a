"""Datasets read from the user's own file (``data.dataset: csv`` or ``npz`` with ``data.path``).

A :class:`FileFormat` is a registry entry like a built-in :class:`DatasetSpec`, except that
its facts (pool size, input shape, classes) come from the file: :meth:`FileFormat.bind` reads
the file the config names and returns the spec of its contents. Each format is one module with
a ``decode`` function, ``(path, content bytes, source) -> DecodedFile``.

What every format shares:

- ``data.path`` is used as given, so a relative path is relative to the working directory (as
  ``output_dir`` and ``data_dir`` are); the run directory's ``config.yaml`` stores it absolute,
  so ``audit`` finds the file from any directory.
- The file is read once, hashed (SHA-256) and decoded from the same bytes. The spec's
  ``source_file`` carries the path and hash; ``train`` records them in ``metrics.json`` and
  ``audit`` refuses a file whose hash has changed since (the split's indices name its rows).
- Unless the file brings its own test split, a fixed fifth of its rows (:data:`TEST_FRACTION`,
  drawn with the fixed seed :data:`HOLDOUT_SEED`, so every run on the file shares them) is held
  out as the test split; the rest is the pool the membership split draws members and
  non-members from. Statistics (the CSV's standardisation) come from the pool only.
- Labels are integer class indices (integral numbers >= 0, used as they are) or class names
  (text, numbered in sorted order). Every class of the test split needs rows in the pool: a
  class whose rows all fall in the held-out fifth is refused (:func:`check_pool_classes`), as
  the model could never learn it.
- The default model follows the inputs' shape (:func:`default_architectures`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from auditml.data.base import (
    ArrayDataset,
    DataFile,
    DatasetSpec,
    DataSource,
    LoadedDataset,
    SensitiveAttribute,
)
from auditml.errors import DataError

TEST_FRACTION = 0.2
HOLDOUT_SEED = 0
# Class names beyond this many are more likely an id or a free-text column than a label.
MAX_CLASSES = 1000


@dataclass(frozen=True, eq=False)
class DecodedFile:
    """A file's contents: its rows' inputs and labels, and the test split if the format forms it
    (then ``x`` and ``y`` are the pool; else :func:`holdout` forms both from them)."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    test: ArrayDataset | None = None
    sensitive: SensitiveAttribute | None = None
    # What the file calls each class, by class index (:func:`class_indices`); () names a class
    # by its index.
    class_names: tuple[str, ...] = ()


Decoder = Callable[[Path, bytes, DataSource], DecodedFile]


@dataclass(frozen=True)
class FileFormat:
    """A registry entry for data read from ``data.path``: ``options`` are the data options it
    takes beyond the path, ``required`` those it cannot do without."""

    name: str
    decode: Decoder
    options: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    def bind(self, source: DataSource) -> DatasetSpec:
        if source.path is None:
            needed = "".join(f" and data.{option}" for option in self.required)
            raise DataError(
                f"data.dataset: {self.name} reads your own file: set data.path to it{needed}"
            )
        for option in source.given():
            if option != "path" and option not in self.options:
                takes = (f"it takes {', '.join(f'data.{o}' for o in self.options)}"
                         if self.options else "it takes no other data options")
                raise DataError(
                    f"data.{option} is not used by data.dataset: {self.name} ({takes}): "
                    f"remove data.{option}"
                )
        for option in self.required:
            if getattr(source, option) is None:
                raise DataError(f"data.dataset: {self.name} needs data.{option}: set it")
        path, stat = stat_data_file(source.path, f"the {self.name} file")
        return _bound(self, path, stat.st_size, stat.st_mtime_ns, source)


# Keyed by the file's size and modification time as well as its path: a file written again is
# read again. Configs are validated several times per command; the file is decoded once.
@lru_cache(maxsize=4)
def _bound(
    file_format: FileFormat, path: Path, size: int, mtime_ns: int, source: DataSource
) -> DatasetSpec:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DataError(f"data.path {path}: cannot read it ({error.strerror})") from None
    decoded = file_format.decode(path, content, source)
    x = np.ascontiguousarray(decoded.x, dtype=np.float32)
    y = np.ascontiguousarray(decoded.y, dtype=np.int64)
    if decoded.test is None:
        pool, test = holdout(ArrayDataset(x, y))
    else:
        pool, test = ArrayDataset(x, y), decoded.test
    check_pool_classes(pool.y, test.y, path.name, decoded.class_names)
    input_shape = tuple(int(size) for size in x.shape[1:])
    default_arch, dp_arch, reason = default_architectures(input_shape)
    loaded = LoadedDataset(pool=pool, test=test)
    return DatasetSpec(
        name=f"{file_format.name} file {path.name}",
        pool_size=len(pool),
        has_test_split=True,
        input_shape=input_shape,
        num_classes=decoded.num_classes,
        default_arch=default_arch,
        dp_arch=dp_arch,
        load=lambda data_dir, download: loaded,
        sensitive=decoded.sensitive,
        source_file=DataFile(str(path), hashlib.sha256(content).hexdigest()),
        default_arch_reason=reason,
    )


def holdout_rows(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool and test row indices (sorted) of a file without its own test split: a fifth of the
    rows (at least one), drawn with :data:`HOLDOUT_SEED`, are the test split."""
    test_count = max(1, round(rows * TEST_FRACTION)) if rows > 1 else 0
    order = np.random.default_rng(HOLDOUT_SEED).permutation(rows)
    return np.sort(order[test_count:]), np.sort(order[:test_count])


def holdout(rows: ArrayDataset) -> tuple[ArrayDataset, ArrayDataset]:
    pool, test = holdout_rows(len(rows))
    return rows.subset(pool), rows.subset(test)


def check_pool_classes(
    pool: np.ndarray, test: np.ndarray, where: str, names: tuple[str, ...] = ()
) -> None:
    """Refuse a test split with a class the pool (the rows training draws from) never has: the
    model could never learn it, and a pool of one class trains no classifier. ``where`` names
    the file, ``names`` the classes by index (as :func:`class_indices` numbers them)."""
    missing = np.setdiff1d(test, pool)
    if not len(missing):
        return

    def shown(classes: np.ndarray) -> str:
        return ", ".join(repr(names[c]) if c < len(names) else str(c) for c in classes[:5])

    kind = "class" if len(missing) == 1 else "classes"
    pool_classes = np.unique(pool)
    only = (f" (which then holds only class {shown(pool_classes)}, and a classifier needs two)"
            if len(pool_classes) < 2 else "")
    raise DataError(
        f"{where}: {kind} {shown(missing)} has rows only in the held-out test split, none in "
        f"the training pool{only}, so the model could never learn it; add more rows of that "
        "class (a fixed fifth of the rows is held out for testing) or drop its rows"
    )


def default_architectures(input_shape: tuple[int, ...]) -> tuple[str, str | None, str]:
    """The default model, its DP-SGD counterpart and why, for inputs of ``input_shape``: the
    built-in datasets' choices for the same kind of input."""
    if len(input_shape) == 1:
        return "mlp_tabular", None, f"tabular rows of {input_shape[0]} features"
    if len(input_shape) == 3 and input_shape[1:] == (28, 28):
        # ScatterNet features for grey images (Tramèr & Boneh's MNIST models), else GroupNorm.
        dp_arch = "scatternet_linear" if input_shape[0] == 1 else "cnn_28x28_gn"
        return "cnn_28x28", dp_arch, f"{input_shape[0]}x28x28 images, as mnist"
    if len(input_shape) == 3 and input_shape[1:] == (8, 8):
        return "cnn_8x8", "mlp_small_tanh", f"{input_shape[0]}x8x8 images, as digits"
    shape = "x".join(str(size) for size in input_shape)
    return "mlp", None, f"inputs of shape {shape}, which no built-in CNN takes"


def class_indices(
    labels: np.ndarray, where: str, row: Callable[[int], str] = lambda index: f"row {index}"
) -> tuple[np.ndarray, int, tuple[str, ...]]:
    """Labels (int64), the number of classes and their names: integral numbers >= 0 are class
    indices as they are (``num_classes`` is the largest plus one; no names, a class is named
    by its index); text labels are class names, numbered in sorted order. ``where`` names the
    labels in errors ("label column 'y'"), ``row`` a row."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"{where}: must be one label per row, got shape {labels.shape}")
    if labels.dtype.kind in "US":
        names = np.unique(labels)
        if len(names) > MAX_CLASSES:
            raise DataError(
                f"{where}: {len(names)} distinct text labels (more than {MAX_CLASSES}); a label "
                "must be a class: check that it is the label and not an id or free text"
            )
        indices = np.searchsorted(names, labels).astype(np.int64)
        num_classes = len(names)
        class_names = tuple(str(name) for name in names)
    elif labels.dtype.kind in "iub" or labels.dtype.kind == "f":
        values = labels.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values != np.round(values)))
        if len(bad):
            raise DataError(
                f"{where}: {row(int(bad[0]))} has {labels[bad[0]].item()!r}, not a class "
                "index; labels must be integers >= 0 or class names (text)"
            )
        # Checked as floats, before the cast: 1e19 does not fit an int64 (it wraps negative).
        if len(values) and values.max() > MAX_CLASSES - 1:
            raise DataError(
                f"{where}: class index {labels[int(values.argmax())].item()!r} is above "
                f"{MAX_CLASSES - 1}; labels are class indices 0, 1, ..., not values to regress"
            )
        indices = values.astype(np.int64)
        num_classes = int(indices.max()) + 1 if len(indices) else 0
        class_names = ()
    else:
        raise DataError(f"{where}: labels of dtype {labels.dtype} are neither numbers nor text")
    if len(np.unique(indices)) < 2:
        raise DataError(f"{where}: every row has the same label; a classifier needs two classes")
    return indices, num_classes, class_names


def stat_data_file(given: Path, expected: str) -> tuple[Path, os.stat_result]:
    """``data.path`` made absolute, and its ``stat`` (size and modification time key the read
    cache); a missing, unreadable or non-file path is one :class:`DataError` line that says
    ``expected`` (what the dataset reads)."""
    path = given.absolute()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataError(
            f"data.path {given}: no such file (relative paths are relative to the working "
            f"directory, {Path.cwd()}); check the path"
        ) from None
    except OSError as error:
        raise DataError(f"data.path {given}: cannot read it ({error.strerror})") from None
    if not path.is_file():
        raise DataError(f"data.path {given} is not a file; give {expected}")
    return path, stat
