"""Purchase-100 and Texas-100: the tabular membership-inference benchmarks of Shokri et al. (2017,
"Membership Inference Attacks Against Machine Learning Models", IEEE S&P), as they preprocessed
and published them.

* Purchase-100: 197,324 shoppers, 600 binary features (bought a product or not), 100 classes
  (clusters of purchase profiles). One file, ``dataset_purchase``: a line per shopper,
  ``label,f1,...,f600``, labels 1..100.
* Texas-100: 67,330 hospital discharge records, 6,169 binary features, 100 classes (the most
  frequent procedures). Two files, ``texas/100/feats`` (6,169 comma-separated values a line)
  and ``texas/100/labels`` (one label 1..100 a line).

Read from ``<data_dir>/purchase100/`` and ``<data_dir>/texas100/`` (the archives
``dataset_purchase.tgz`` and ``dataset_texas.tgz`` unpacked there). They are never downloaded:
no checksum is published for the archives, and auditml's downloader only installs files it can
verify. Features are used as they are (0 or 1, no standardisation); labels become 0..99. There
is no official test split, and no sensitive attribute is declared: which column means what is
not published with the preprocessed features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset
from auditml.data.cache import cached_arrays
from auditml.errors import DataError

_NUM_CLASSES = 100
# Lines parsed per numpy call: large enough that Python's share is negligible, small enough that
# the joined block stays a few MB.
_LINES_PER_BLOCK = 1024
_SOURCE = "https://github.com/privacytrustlab/datasets"
PURCHASE_FEATURES = 600
TEXAS_FEATURES = 6_169


def load_purchase100(data_dir: Path, download: bool) -> LoadedDataset:
    """Purchase-100 from ``<data_dir>/purchase100/dataset_purchase``; ``download`` is unused."""
    directory = Path(data_dir) / "purchase100"
    path = _require(directory, ["dataset_purchase"], "purchase100", "dataset_purchase.tgz")[0]

    def decode() -> dict[str, np.ndarray]:
        table = _read_table(path, PURCHASE_FEATURES + 1)
        return {"x": _features(table[:, 1:], path), "y": _labels(table[:, 0], path)}

    arrays = cached_arrays([path], "purchase100", decode, _accepts(PURCHASE_FEATURES))
    return LoadedDataset(pool=ArrayDataset(arrays["x"], arrays["y"]), test=None)


def load_texas100(data_dir: Path, download: bool) -> LoadedDataset:
    """Texas-100 from ``<data_dir>/texas100/texas/100/{feats,labels}``; ``download`` is unused."""
    directory = Path(data_dir) / "texas100"
    feats, labels = _require(
        directory, ["texas/100/feats", "texas/100/labels"], "texas100", "dataset_texas.tgz"
    )

    def decode() -> dict[str, np.ndarray]:
        x = _features(_read_table(feats, TEXAS_FEATURES), feats)
        y = _labels(_read_table(labels, 1)[:, 0], labels)
        if len(x) != len(y):
            raise DataError(
                f"texas100: {feats} has {len(x)} rows but {labels} has {len(y)}; unpack both "
                "from the same dataset_texas.tgz"
            )
        return {"x": x, "y": y}

    arrays = cached_arrays([feats, labels], "texas100", decode, _accepts(TEXAS_FEATURES))
    return LoadedDataset(pool=ArrayDataset(arrays["x"], arrays["y"]), test=None)


def _require(directory: Path, names: Sequence[str], dataset: str, archive: str) -> list[Path]:
    paths = [directory / name for name in names]
    missing = [str(path.relative_to(directory)) for path in paths if not path.is_file()]
    if missing:
        raise DataError(
            f"{dataset}: {', '.join(missing)} not found in {directory}; unpack {archive} from "
            f"{_SOURCE} there (auditml does not download it: no checksum is published for it)"
        )
    return paths


def _read_table(path: Path, width: int) -> np.ndarray:
    """A comma-separated file of small integers, ``width`` a line, as int16 ``(rows, width)``.

    Parsed by numpy in C, a block of lines at a time: Texas-100's features are 830 MB of text
    (415 million values), which ``np.loadtxt`` takes minutes to read and a single buffer of
    int64 would need 3 GB for.
    """
    try:
        lines = path.read_bytes().replace(b"\r", b"").strip().split(b"\n")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from err
    if lines == [b""]:
        raise DataError(f"{path} is empty; unpack it again from {_SOURCE}")
    table = np.empty((len(lines), width), dtype=np.int16)
    for start in range(0, len(lines), _LINES_PER_BLOCK):
        block = lines[start : start + _LINES_PER_BLOCK]
        for offset, line in enumerate(block):
            if line.count(b",") != width - 1:
                raise DataError(
                    f"{path}, line {start + offset + 1}: expected {width} comma-separated "
                    f"values, found {line.count(b',') + 1 if line else 0}; unpack the file "
                    f"again from {_SOURCE}"
                )
        try:
            values = np.fromstring(b",".join(block), dtype=np.int16, sep=",")
        except ValueError:
            values = np.empty(0, dtype=np.int16)
        if values.size != len(block) * width:
            raise DataError(
                f"{path}, lines {start + 1}..{start + len(block)}: a value is not an integer; "
                f"unpack the file again from {_SOURCE}"
            )
        table[start : start + len(block)] = values.reshape(len(block), width)
    return table


def _features(table: np.ndarray, path: Path) -> np.ndarray:
    if not np.isin(table, (0, 1)).all():
        raise DataError(f"{path}: features must be 0 or 1; unpack the file again from {_SOURCE}")
    return table.astype(np.float32)


def _labels(column: np.ndarray, path: Path) -> np.ndarray:
    if column.min() < 1 or column.max() > _NUM_CLASSES:
        raise DataError(
            f"{path}: labels must be 1..{_NUM_CLASSES}, found {column.min()}..{column.max()}; "
            f"unpack the file again from {_SOURCE}"
        )
    return (column - 1).astype(np.int64)


def _accepts(features: int) -> Callable[[dict[str, np.ndarray]], bool]:
    def accept(arrays: dict[str, np.ndarray]) -> bool:
        x, y = arrays.get("x"), arrays.get("y")
        return (
            x is not None and y is not None and x.dtype == np.float32 and y.dtype == np.int64
            and x.ndim == 2 and x.shape[1] == features and y.shape == (len(x),)
        )

    return accept


PURCHASE100 = DatasetSpec(
    name="purchase100",
    pool_size=197_324,
    has_test_split=False,
    input_shape=(PURCHASE_FEATURES,),
    num_classes=_NUM_CLASSES,
    default_arch="mlp",
    load=load_purchase100,
)

TEXAS100 = DatasetSpec(
    name="texas100",
    pool_size=67_330,
    has_test_split=False,
    input_shape=(TEXAS_FEATURES,),
    num_classes=_NUM_CLASSES,
    default_arch="mlp",
    load=load_texas100,
)
