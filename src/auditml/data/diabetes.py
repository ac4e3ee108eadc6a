"""scikit-learn's bundled diabetes data as a tabular classification task with a sensitive attribute.

442 patients, 10 baseline variables (age, sex, bmi, bp, s1..s6; Efron et al. 2004), no file or
network needed. The task is binary: label 1 when the disease-progression target (a number one
year after baseline) is above its median over the 442 patients (140.5), else 0, which splits
the patients 221/221. The sensitive attribute is ``sex`` (column 1), coded 1 or 2 in the raw
data; scikit-learn does not say which code is which sex, so the categories are named by their
codes, ``sex=1`` (235 patients) and ``sex=2`` (207).

Features are the raw, unscaled values (``load_diabetes(scaled=False)``) standardised with the
pool's mean and standard deviation below (population std, ``ddof=0``), so every column, the sex
column included, is in the same standardised space. There is no official test split:
validation comes from the pool.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset, SensitiveAttribute
from auditml.data.cache import cached_arrays

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
# Mean and std (ddof=0) of each raw column over the 442 patients, in FEATURES order.
_MEAN = np.array(
    [48.5181, 1.468326, 26.375792, 94.647014, 189.140271,
     115.43914, 49.788462, 4.070249, 4.641411, 91.260181], dtype=np.float32,
)
_STD = np.array(
    [13.09419, 0.498996, 4.413121, 13.815628, 34.56888,
     30.378658, 12.919562, 1.288989, 0.521799, 11.483322], dtype=np.float32,
)
_POOL_SIZE = 442
_SEX_COLUMN = 1
_SEX_CODES = (1.0, 2.0)
# The median of the target over the 442 patients: labels are ``target > _TARGET_MEDIAN``.
_TARGET_MEDIAN = 140.5
_SOURCES = ("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz")


def standardise(raw: np.ndarray) -> np.ndarray:
    """Raw feature rows ``(N, 10)`` in the standardised float32 space the loader returns."""
    return ((np.asarray(raw, dtype=np.float32) - _MEAN) / _STD).astype(np.float32)


def load_diabetes(data_dir: Path, download: bool) -> LoadedDataset:
    """Load the diabetes pool; ``data_dir`` and ``download`` are unused (it ships with sklearn).

    Decoded once into the user's cache directory, as the digits are: importing scikit-learn
    costs more than the data does.
    """
    sources = _bundled_files()
    arrays = (
        cached_arrays(sources, "diabetes", _decode, _is_decoded, prefer_source_dir=False)
        if sources is not None else _decode()
    )
    return LoadedDataset(pool=ArrayDataset(arrays["x"], arrays["y"]), test=None)


def _decode() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    bunch = sklearn_diabetes(scaled=False)
    labels = (bunch.target > _TARGET_MEDIAN).astype(np.int64)
    return {"x": standardise(bunch.data), "y": labels}


def _is_decoded(arrays: dict[str, np.ndarray]) -> bool:
    x, y = arrays.get("x"), arrays.get("y")
    return (
        x is not None and y is not None and x.dtype == np.float32 and y.dtype == np.int64
        and x.shape == (_POOL_SIZE, len(FEATURES)) and y.shape == (_POOL_SIZE,)
    )


def _bundled_files() -> list[Path] | None:
    """scikit-learn's diabetes files, found without importing scikit-learn (None if elsewhere)."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        candidates = [Path(root) / "datasets" / "data" / name for name in _SOURCES]
        if all(candidate.is_file() for candidate in candidates):
            return candidates
    return None


def _sex_attribute() -> SensitiveAttribute:
    codes = np.tile(_MEAN, (len(_SEX_CODES), 1))
    codes[:, _SEX_COLUMN] = _SEX_CODES
    return SensitiveAttribute(
        name="sex",
        columns=(_SEX_COLUMN,),
        values=standardise(codes)[:, [_SEX_COLUMN]],
        categories=tuple(f"sex={code:g}" for code in _SEX_CODES),
    )


DIABETES = DatasetSpec(
    name="diabetes",
    pool_size=_POOL_SIZE,
    has_test_split=False,
    input_shape=(len(FEATURES),),
    num_classes=2,
    default_arch="mlp_tabular",
    load=load_diabetes,
    sensitive=_sex_attribute(),
)
