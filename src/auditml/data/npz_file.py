"""``data.dataset: npz``: arrays of your own, saved with ``np.savez(path, x=inputs, y=labels)``.

``x`` is ``(N, ...)`` numbers: tabular rows ``(N, F)``, or images ``(N, C, H, W)``; grey images
``(N, H, W)`` get a channel axis. Values are used as they are (``uint8`` images are scaled to
[0, 1]); standardise tabular columns before saving. ``y`` holds ``N`` labels (integer class
indices, or class names numbered in sorted order). Optional ``x_test`` and ``y_test`` are the
test split; without them a fifth of the rows is held out (:mod:`auditml.data.files`). The
archive is read without pickle, so object arrays are refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from auditml.data.base import ArrayDataset, DataSource
from auditml.data.files import DecodedFile, FileFormat, class_indices
from auditml.errors import DataError

_SAVE = "save it with np.savez(path, x=inputs, y=labels)"


def decode_npz(path: Path, content: bytes, source: DataSource) -> DecodedFile:
    if not content.startswith((b"PK", b"\x93NUMPY")):  # a zip (.npz) or an .npy
        # numpy would try it as a pickle and say so, which misleads.
        hint = "; for a table use data.dataset: csv" if content[:1].isascii() else ""
        raise DataError(f"{path.name} is not a .npz archive (not a zip file){hint}; {_SAVE}")
    try:
        archive = np.load(io.BytesIO(content), allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:160]
        raise DataError(f"{path.name} is not a readable .npz archive ({reason}); {_SAVE}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name} holds a single array (.npy), not arrays x and y; {_SAVE}")
    with archive:
        names = set(archive.files)
        missing = [name for name in ("x", "y") if name not in names]
        if missing:
            found = ", ".join(sorted(names)) or "none"
            raise DataError(
                f"{path.name} has no array {' or '.join(missing)} (its arrays: {found}); {_SAVE}"
            )
        if ("x_test" in names) != ("y_test" in names):
            given, absent = ("x_test", "y_test") if "x_test" in names else ("y_test", "x_test")
            raise DataError(
                f"{path.name} has {given} but no {absent}: save both for a test split, or neither "
                "to hold out a fifth of the rows"
            )
        x, y = _array(archive, path, "x"), _array(archive, path, "y")
        test = (_array(archive, path, "x_test"), _array(archive, path, "y_test")) if (
            "x_test" in names) else None
    x = _inputs(x, path, "x")
    _same_length(x, y, path, "x", "y")
    labels = [y]
    if test is not None:
        x_test = _inputs(test[0], path, "x_test")
        _same_length(x_test, test[1], path, "x_test", "y_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path.name}: x_test rows have shape {x_test.shape[1:]} but x rows "
                f"{x.shape[1:]}; both splits need the same input shape"
            )
        labels.append(test[1])
    if {array.dtype.kind in "US" for array in labels} == {True, False}:
        raise DataError(
            f"{path.name}: y and y_test must both be class indices or both class names"
        )
    # Numbered together, so a class name means the same index in both splits.
    indices, num_classes, names = class_indices(np.concatenate(labels), f"{path.name}, y")
    if test is None:
        return DecodedFile(x=x, y=indices, num_classes=num_classes, class_names=names)
    unseen = np.setdiff1d(indices[len(x):], indices[: len(x)])
    if len(unseen):
        shown = ", ".join(str(value) for value in unseen[:5])
        raise DataError(
            f"{path.name}: y_test has classes that y never has ({shown}); the model could never "
            "predict them, so its test accuracy would mean nothing: give every test class "
            "training rows, or drop those test rows"
        )
    return DecodedFile(
        x=x, y=indices[: len(x)], num_classes=num_classes,
        test=ArrayDataset(x_test, indices[len(x):]), class_names=names,
    )


def _array(archive: Any, path: Path, name: str) -> np.ndarray:
    try:
        return np.asarray(archive[name])
    except ValueError as error:  # "Object arrays cannot be loaded when allow_pickle=False"
        if "pickle" in str(error):
            raise DataError(
                f"{path.name}: array {name} holds Python objects, which only pickle can read and "
                "auditml does not unpickle; save numbers (or text labels) instead"
            ) from None
        raise DataError(f"{path.name}: array {name} is unreadable ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path.name}: array {name} is unreadable ({error}); {_SAVE}") from None


def _inputs(x: np.ndarray, path: Path, name: str) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path.name}: {name} has dtype {x.dtype}; inputs must be numbers")
    if x.ndim < 2 or len(x) == 0 or x[0].size == 0:
        raise DataError(
            f"{path.name}: {name} has shape {x.shape}; it needs one row per example, (N, features)"
            " or (N, channels, height, width)"
        )
    scaled = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    finite = np.isfinite(scaled.reshape(len(scaled), -1)).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{path.name}: {name}[{row}] holds NaN or an infinity (or a number too large for "
            "float32); fix or drop that row"
        )
    return scaled[:, None] if scaled.ndim == 3 else scaled


def _same_length(x: np.ndarray, y: np.ndarray, path: Path, x_name: str, y_name: str) -> None:
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(
            f"{path.name}: {x_name} has {len(x)} rows but {y_name} has shape {y.shape}; "
            f"{y_name} needs one label per row of {x_name}"
        )


NPZ_FILE = FileFormat(name="npz", decode=decode_npz)
