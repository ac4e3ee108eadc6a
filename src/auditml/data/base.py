"""What a dataset is to auditml: arrays in memory, and a spec the registry holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from auditml.errors import DataError

# A dataset without an official test split keeps at least this many examples for validation.
MIN_VALIDATION_SIZE = 100


@dataclass(frozen=True)
class ArrayDataset:
    """Inputs and labels (int64 ``(N,)``).

    Images are float32 ``(N, C, H, W)`` (normalised); tabular rows are float32 ``(N, F)``
    (numeric columns standardised, categorical ones one-hot); texts are int64 ``(N, L)`` token
    ids (:mod:`auditml.data.text_tokens`; ``y`` is then a category, used only to stratify the
    split), as the dataset's ``input_shape`` and ``task`` say.
    """

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


@dataclass(frozen=True, eq=False)
class SensitiveAttribute:
    """A sensitive attribute of a tabular dataset, as it is encoded in ``x``.

    ``columns`` are the feature columns of ``x`` (flattened to ``(N, F)``) that encode it: one
    for a binary attribute, a one-hot block for a categorical one. ``values[c]`` is category
    ``c``'s encoding in the units of ``x`` as the model receives it (so after any
    standardisation: for ``auditml.audit``, in the units of the inputs you pass), shape
    ``(k, len(columns))``, so ``x[:, columns] = values[c]`` sets the attribute to category
    ``c``; ``categories`` names the k categories. Attribute-inference attacks guess the category
    of a row from the model and the row's other columns.
    """

    name: str
    columns: tuple[int, ...]
    values: np.ndarray
    categories: tuple[str, ...]

    def __post_init__(self) -> None:
        # A private, read-only copy: a declaration is shared by every user of its dataset.
        values = np.array(self.values, dtype=np.float32)
        values.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "columns", tuple(int(column) for column in self.columns))
        object.__setattr__(self, "categories", tuple(self.categories))
        where = f"sensitive attribute {self.name!r}"
        if len(self.categories) < 2:
            raise ValueError(f"{where}: needs at least 2 categories, got {len(self.categories)}")
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"{where}: columns must be distinct and non-empty, got {self.columns}")
        if min(self.columns) < 0:
            raise ValueError(f"{where}: columns must be non-negative, got {self.columns}")
        expected = (len(self.categories), len(self.columns))
        if values.shape != expected:
            raise ValueError(
                f"{where}: values must have shape (categories, columns) = {expected}, "
                f"got {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ValueError(f"{where}: values must be finite")
        if len(np.unique(values, axis=0)) != len(values):
            raise ValueError(f"{where}: two categories have the same encoding")

    # By value, arrays included (the generated __eq__ would compare arrays element-wise and fail).
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensitiveAttribute):
            return NotImplemented
        return self._key() == other._key() and np.array_equal(self.values, other.values)

    def __hash__(self) -> int:
        return hash((*self._key(), self.values.tobytes()))

    def _key(self) -> tuple[str, tuple[int, ...], tuple[str, ...]]:
        return self.name, self.columns, self.categories

    def classes(self, x: np.ndarray) -> np.ndarray:
        """The category index (int64 ``(N,)``) of each row: the nearest encoding in ``values``."""
        encoded = self._columns_of(x)
        distances = ((encoded[:, None, :] - self.values[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1).astype(np.int64)

    def check_encodes(self, x: np.ndarray, where: str) -> None:
        """Refuse inputs whose attribute columns hold none of the declared encodings.

        :meth:`classes` takes the nearest encoding, so ``values`` given in other units than the
        inputs (raw ages against standardised columns, say) would silently turn every row into
        one category; the audit would then measure nothing. A row matches an encoding when each
        of its columns is within 1e-4 of it, relative to the encoding's scale.
        """
        encoded = self._columns_of(x)
        scale = 1e-4 * max(1.0, float(np.abs(self.values).max()))
        matched = (np.abs(encoded[:, None, :] - self.values[None, :, :]) <= scale).all(axis=2)
        unmatched = np.flatnonzero(~matched.any(axis=1))
        if len(unmatched):
            row = int(unmatched[0])
            raise ValueError(
                f"sensitive attribute {self.name!r}: {len(unmatched)} of {len(encoded)} rows of "
                f"{where} hold none of its encodings (row {row} has "
                f"{np.round(encoded[row], 4).tolist()} in columns {list(self.columns)}, the "
                f"values are {np.round(self.values, 4).tolist()}); give values in the units of "
                "the inputs you pass (after any standardisation you applied)"
            )

    def with_class(self, x: np.ndarray, category: int) -> np.ndarray:
        """A copy of ``x`` with the attribute set to category ``category`` in every row."""
        if not 0 <= category < len(self.categories):
            raise ValueError(
                f"sensitive attribute {self.name!r}: category must be in "
                f"[0, {len(self.categories)}), got {category}"
            )
        self._columns_of(x)  # refuses inputs without the attribute's columns
        changed = np.array(x, copy=True)
        flat = changed.reshape(len(changed), -1)  # a view of the fresh copy: writes reach it
        flat[:, list(self.columns)] = self.values[category]
        return changed

    def _columns_of(self, x: np.ndarray) -> np.ndarray:
        array = np.asarray(x)
        if array.ndim < 2:
            raise ValueError(
                f"sensitive attribute {self.name!r}: inputs must be (N, F), got shape {array.shape}"
            )
        flat = array.reshape(len(array), -1)
        if flat.shape[1] <= max(self.columns):
            raise ValueError(
                f"sensitive attribute {self.name!r}: column {max(self.columns)} is outside "
                f"inputs with {flat.shape[1]} features"
            )
        return flat[:, list(self.columns)].astype(np.float32)


@dataclass(frozen=True)
class DataSource:
    """The config's ``data.path`` and the options that say how to read that file.

    Only file formats (``dataset: csv``, ``dataset: npz``) read them; each names the options it
    takes. ``path`` is used as given: relative paths are relative to the working directory, like
    ``output_dir`` and ``data_dir``.
    """

    path: Path | None = None
    label_column: str | None = None
    sensitive_column: str | None = None

    def given(self) -> list[str]:
        """The names of the options that are set, in declaration order."""
        return [field.name for field in fields(self) if getattr(self, field.name) is not None]


@dataclass(frozen=True)
class DataFile:
    """The file a dataset was read from: its absolute path and the SHA-256 of its bytes."""

    path: str
    sha256: str


class DatasetEntry(Protocol):
    """What the dataset registry holds: a name, and the spec it gives for the config's source."""

    @property
    def name(self) -> str: ...

    def bind(self, source: DataSource) -> DatasetSpec:
        """The spec of the data ``source`` describes; raises ``DataError`` for bad input."""
        ...


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
    input_shape: tuple[int, ...]
    num_classes: int
    default_arch: str
    load: Loader
    # The architecture the DP recipe trains when DP-SGD is on (None: ``default_arch``).
    dp_arch: str | None = None
    # The attribute attribute-inference attacks target (tabular datasets; None for images).
    sensitive: SensitiveAttribute | None = None
    # The user's file the data came from (file formats); None for the built-in datasets.
    source_file: DataFile | None = None
    # Why ``default_arch`` suits the data, said at training when it is used (file formats, whose
    # default depends on the file's shape); None for the built-in datasets.
    default_arch_reason: str | None = None
    # What a model of this data is trained to do (:mod:`auditml.training.task`): classify each
    # example, or (text: ``x`` holds token ids) predict each next token.
    task: Literal["classification", "causal_lm"] = "classification"

    def bind(self, source: DataSource) -> DatasetSpec:
        """This spec: a built-in dataset reads no file the config names, so options are refused."""
        given = source.given()
        if given:
            raise DataError(
                f"data.{given[0]} is set but dataset {self.name!r} is built in and reads no file "
                f"of yours: remove data.{given[0]}, or set data.dataset: csv (or npz) to read "
                "your own file"
            )
        return self

    @property
    def max_train_size(self) -> int:
        """Largest ``train_size`` that still leaves an equal non-member set (and validation)."""
        if self.has_test_split:
            return self.pool_size // 2
        return (self.pool_size - MIN_VALIDATION_SIZE) // 2
