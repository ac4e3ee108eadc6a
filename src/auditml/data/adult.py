"""UCI Adult ("Census Income", Kohavi 1996): 48,842 people from the 1994 US census, 14 attributes.

The task is binary: label 1 when income is above $50K a year. The pool is ``adult.data``
(32,561 rows) and ``test`` is ``adult.test`` (16,281 rows; its first line is a comment and its
labels end in a '.'). Both are read from ``<data_dir>/adult/``; missing files are downloaded
from the UCI repository unless ``data.download: false``.

Features, 108 columns of float32: the 6 numeric attributes first, standardised with the pool's
mean and standard deviation (the test split uses the pool's, so no statistic comes from it),
then each categorical attribute one-hot (0 or 1) in the file's column order, its categories in
the order ``adult.names`` lists them. Missing values ('?', in workclass, occupation and
native-country only) are kept as a category of their own rather than dropping the row.

The declared sensitive attribute is ``sex`` (a one-hot block of two columns, Female and Male).
``race`` is the other attribute the attribute-inference literature targets on Adult; it is
declared as :data:`RACE` for callers who want it instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset, SensitiveAttribute
from auditml.data.cache import cached_arrays
from auditml.data.download import RemoteFile, fetch_missing
from auditml.errors import DataError

MISSING = "?"
# The file's 14 attribute columns, in order, then the label.
COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country",
)
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
# Each categorical attribute's values as adult.names lists them; '?' last where it occurs.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "workclass": (
        "Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov", "State-gov",
        "Without-pay", "Never-worked", MISSING,
    ),
    "education": (
        "Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
        "Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th", "Doctorate",
        "5th-6th", "Preschool",
    ),
    "marital-status": (
        "Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
        "Married-spouse-absent", "Married-AF-spouse",
    ),
    "occupation": (
        "Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
        "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
        "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
        "Armed-Forces", MISSING,
    ),
    "relationship": (
        "Wife", "Own-child", "Husband", "Not-in-family", "Other-relative", "Unmarried",
    ),
    "race": ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"),
    "sex": ("Female", "Male"),
    "native-country": (
        "United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
        "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China", "Cuba",
        "Iran", "Honduras", "Philippines", "Italy", "Poland", "Jamaica", "Vietnam", "Mexico",
        "Portugal", "Ireland", "France", "Dominican-Republic", "Laos", "Ecuador", "Taiwan",
        "Haiti", "Columbia", "Hungary", "Guatemala", "Nicaragua", "Scotland", "Thailand",
        "Yugoslavia", "El-Salvador", "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands",
        MISSING,
    ),
}
LABELS = {"<=50K": 0, ">50K": 1}
FEATURES: tuple[str, ...] = (
    *NUMERIC, *(f"{name}={value}" for name, values in CATEGORIES.items() for value in values)
)

_MIRROR = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
# MD5s of the UCI files as published by several independent loaders (CatBoost's dataset
# fetcher among them, with sizes 3,974,305 and 2,003,153 bytes). They could not be computed
# here (no network on this machine); download_file accepts only content with these MD5s, so a
# wrong value would refuse the download loudly, never accept a different file.
REMOTE_FILES = (
    RemoteFile("adult.data", (_MIRROR + "adult.data",), "5d7c39d7b8804f071cdd1f2a7c460872"),
    RemoteFile("adult.test", (_MIRROR + "adult.test",), "35238206dfdf7f1fe215bbb874adecdc"),
)
_POOL_SIZE = 32_561


def block(attribute: str) -> tuple[int, ...]:
    """The feature columns of a categorical attribute's one-hot block."""
    start = len(NUMERIC)
    for name, values in CATEGORIES.items():
        if name == attribute:
            return tuple(range(start, start + len(values)))
        start += len(values)
    raise KeyError(f"adult has no categorical attribute {attribute!r}")


def _one_hot_attribute(name: str) -> SensitiveAttribute:
    values = CATEGORIES[name]
    return SensitiveAttribute(
        name=name, columns=block(name), values=np.eye(len(values), dtype=np.float32),
        categories=values,
    )


SEX = _one_hot_attribute("sex")
RACE = _one_hot_attribute("race")


def load_adult(data_dir: Path, download: bool) -> LoadedDataset:
    """Read (after fetching them if missing and ``download``) adult.data and adult.test."""
    directory = Path(data_dir) / "adult"
    missing = [remote for remote in REMOTE_FILES if not (directory / remote.name).is_file()]
    if missing:
        fetch_missing(
            "adult", missing, directory, download=download,
            wanted="adult.data and adult.test (UCI Adult dataset)",
        )
    pool_path, test_path = (directory / remote.name for remote in REMOTE_FILES)
    arrays = cached_arrays(
        [pool_path, test_path], "adult", lambda: _decode(pool_path, test_path), _is_decoded
    )
    return LoadedDataset(
        pool=ArrayDataset(arrays["x_pool"], arrays["y_pool"]),
        test=ArrayDataset(arrays["x_test"], arrays["y_test"]),
    )


def _decode(pool_path: Path, test_path: Path) -> dict[str, np.ndarray]:
    pool_numeric, pool_onehot, pool_labels = _read(pool_path)
    test_numeric, test_onehot, test_labels = _read(test_path)
    mean = pool_numeric.mean(axis=0)
    std = pool_numeric.std(axis=0)
    std[std == 0] = 1.0  # a constant column stays 0 rather than dividing by zero
    return {
        "x_pool": np.hstack([(pool_numeric - mean) / std, pool_onehot]).astype(np.float32),
        "y_pool": pool_labels,
        "x_test": np.hstack([(test_numeric - mean) / std, test_onehot]).astype(np.float32),
        "y_test": test_labels,
    }


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numeric columns (float64), one-hot blocks (float32) and labels (int64) of one file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"adult: cannot read {path}: {err}; {_REPLACE}") from err
    numeric: list[list[float]] = []
    hot: list[list[int]] = []
    labels: list[int] = []
    offsets = {name: block(name)[0] - len(NUMERIC) for name in CATEGORIES}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("|"):  # blank lines; adult.test's "|1x3 Cross validator"
            continue
        fields = [field.strip() for field in line.split(",")]
        where = f"adult: {path}, line {number}"
        if len(fields) != len(COLUMNS) + 1:
            raise DataError(
                f"{where}: expected {len(COLUMNS) + 1} comma-separated fields, found "
                f"{len(fields)}; {_REPLACE}"
            )
        row = dict(zip(COLUMNS, fields, strict=False))
        bad = next((name for name in NUMERIC if not _is_number(row[name])), None)
        if bad is not None:
            raise DataError(f"{where}: {bad}={row[bad]!r} is not a finite number; {_REPLACE}")
        numeric.append([float(row[name]) for name in NUMERIC])
        indices = []
        for name, values in CATEGORIES.items():
            if row[name] not in values:
                raise DataError(
                    f"{where}: {name}={row[name]!r} is not one of adult.names' values; {_REPLACE}"
                )
            indices.append(offsets[name] + values.index(row[name]))
        hot.append(indices)
        label = fields[-1].removesuffix(".")  # adult.test writes ">50K." where adult.data ">50K"
        if label not in LABELS:
            raise DataError(f"{where}: income {fields[-1]!r} is neither <=50K nor >50K; {_REPLACE}")
        labels.append(LABELS[label])
    if not labels:
        raise DataError(f"adult: {path} holds no rows; {_REPLACE}")
    onehot = np.zeros((len(hot), len(FEATURES) - len(NUMERIC)), dtype=np.float32)
    np.put_along_axis(onehot, np.asarray(hot), 1.0, axis=1)
    return np.asarray(numeric, dtype=np.float64), onehot, np.asarray(labels, dtype=np.int64)


_REPLACE = "replace the file with the UCI original (or delete it to download it again)"


def _is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _is_decoded(arrays: dict[str, np.ndarray]) -> bool:
    try:
        return all(
            arrays[f"x_{split}"].dtype == np.float32 and arrays[f"y_{split}"].dtype == np.int64
            and arrays[f"x_{split}"].shape == (len(arrays[f"y_{split}"]), len(FEATURES))
            and arrays[f"y_{split}"].ndim == 1
            for split in ("pool", "test")
        )
    except KeyError:
        return False


ADULT = DatasetSpec(
    name="adult",
    pool_size=_POOL_SIZE,
    has_test_split=True,
    input_shape=(len(FEATURES),),
    num_classes=2,
    default_arch="mlp_tabular",
    load=load_adult,
    sensitive=SEX,
)
