"""MNIST and Fashion-MNIST: 70,000 grey 28x28 images each, as four IDX files.

The pool is the official 60,000-image training split and ``test`` the official 10,000-image test
split. Files may be plain or gzip-compressed. Local files are used as they are (their structure is
checked, not their checksum: Debian's Fashion-MNIST package, for one, recompresses them); only
downloaded files are checked against the published MD5s. Missing files are downloaded unless the
config says ``data.download: false``; files found anywhere searched (the system folder included)
are never downloaded again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset
from auditml.data.cache import cached_arrays
from auditml.data.download import RemoteFile, fetch_missing
from auditml.data.idx import read_idx
from auditml.errors import DataError

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_IMAGE_SIDE = 28
_NUM_CLASSES = 10


@dataclass(frozen=True)
class IdxDatasetFiles:
    """Where one MNIST-format dataset's files are looked for and fetched from, and its statistics.

    ``md5`` maps each compressed file name (``<stem>.gz``) to its published checksum.
    ``system_dirs`` are searched after the data directory (files installed by a system package).
    """

    name: str
    mean: float
    std: float
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]
    system_dirs: tuple[Path, ...] = ()

    def search_dirs(self, data_dir: Path) -> list[Path]:
        """Directories searched, in order; the first holding all four files is used."""
        data_dir = Path(data_dir)
        return [data_dir / self.name, data_dir / self.name / "raw", data_dir, *self.system_dirs]

    def load(self, data_dir: Path, download: bool) -> LoadedDataset:
        """Find (or, if ``download``, fetch) the four files and return the normalised splits."""
        paths = self._find_all(data_dir)
        if paths is None:
            target = self._fetch_missing(Path(data_dir), download)
            paths = _files_in(target)
            if paths is None:
                raise RuntimeError(f"{self.name} files missing from {target} after download")
        pool = self._read_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS])
        test = self._read_split(paths[TEST_IMAGES], paths[TEST_LABELS])
        return LoadedDataset(pool=pool, test=test)

    def _find_all(self, data_dir: Path) -> dict[str, Path] | None:
        # Files are never combined across directories: data_dir itself may hold the other
        # MNIST-format dataset's files, which have the same names.
        for directory in self.search_dirs(data_dir):
            paths = _files_in(directory)
            if paths is not None:
                return paths
        return None

    def _fetch_missing(self, data_dir: Path, download: bool) -> Path:
        target = data_dir / self.name
        missing = [f"{stem}.gz" for stem in IDX_FILES if _find_file(target, stem) is None]
        fetch_missing(
            self.name,
            [
                RemoteFile(name, tuple(mirror + name for mirror in self.mirrors), self.md5[name])
                for name in missing
            ],
            target,
            download=download,
            wanted=f"{', '.join(missing)} (plain or .gz, from {self.mirrors[0]})",
            searched=self.search_dirs(data_dir)[1:],
        )
        return target

    def _read_split(self, images_path: Path, labels_path: Path) -> ArrayDataset:
        # Decoded once (gunzip + parse) and kept as .npy next to the files (auditml.data.cache);
        # never inside a system package's folder, even where this process could write there.
        system = any(images_path.is_relative_to(folder) for folder in self.system_dirs)
        arrays = cached_arrays(
            [images_path, labels_path], f"{self.name}-{images_path.name.split('-')[0]}",
            lambda: {"images": read_idx(images_path), "labels": read_idx(labels_path)},
            _is_decoded_split, prefer_source_dir=not system,
        )
        images, labels = arrays["images"], arrays["labels"]
        image_shape = (_IMAGE_SIDE, _IMAGE_SIDE)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != image_shape:
            raise DataError(
                f"{images_path} holds {images.dtype} of shape {images.shape}, not uint8 "
                f"{_IMAGE_SIDE}x{_IMAGE_SIDE} images; replace it with the {self.name} file"
            )
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DataError(
                f"{labels_path} holds {labels.dtype} of shape {labels.shape}, not uint8 labels; "
                f"replace it with the {self.name} file"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} "
                "labels; the two files do not belong together, replace them"
            )
        if len(labels) and int(labels.max()) >= _NUM_CLASSES:
            raise DataError(
                f"{labels_path} has label {int(labels.max())}, outside 0..{_NUM_CLASSES - 1}; "
                f"replace it with the {self.name} file"
            )
        # In place, in float32: a float64 temporary of the 60,000-image pool would be 376 MB.
        x = images[:, None, :, :].astype(np.float32)
        x /= 255.0
        x -= np.float32(self.mean)
        x /= np.float32(self.std)
        return ArrayDataset(x, labels.astype(np.int64))


def _is_decoded_split(arrays: dict[str, np.ndarray]) -> bool:
    """Whether cached arrays are what reading a sound pair of IDX files gives."""
    images, labels = arrays.get("images"), arrays.get("labels")
    return (
        images is not None and labels is not None
        and images.dtype == np.uint8 and images.shape[1:] == (_IMAGE_SIDE, _IMAGE_SIDE)
        and labels.dtype == np.uint8 and labels.shape == images.shape[:1]
    )


def _files_in(directory: Path) -> dict[str, Path] | None:
    """The four files' paths if ``directory`` holds all of them, else None."""
    paths = {stem: _find_file(directory, stem) for stem in IDX_FILES}
    found = {stem: path for stem, path in paths.items() if path is not None}
    return found if len(found) == len(IDX_FILES) else None


def _find_file(directory: Path, stem: str) -> Path | None:
    """The plain file if present, else the gzip-compressed one, else None."""
    for name in (stem, f"{stem}.gz"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


# Checksums published with the datasets (MNIST's by LeCun et al., Fashion-MNIST's in its README).
MNIST_FILES = IdxDatasetFiles(
    name="mnist",
    mean=0.1307,
    std=0.3081,
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)

FASHION_MNIST_FILES = IdxDatasetFiles(
    name="fashion_mnist",
    mean=0.2860,
    std=0.3530,
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    # Debian's dataset-fashion-mnist package installs the four .gz files here.
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
)


def load_mnist(data_dir: Path, download: bool) -> LoadedDataset:
    """MNIST digits, normalised with the training split's mean 0.1307 and std 0.3081."""
    return MNIST_FILES.load(data_dir, download)


def load_fashion_mnist(data_dir: Path, download: bool) -> LoadedDataset:
    """Fashion-MNIST, normalised with the training split's mean 0.2860 and std 0.3530."""
    return FASHION_MNIST_FILES.load(data_dir, download)


MNIST = DatasetSpec(
    name="mnist",
    pool_size=60000,
    has_test_split=True,
    input_shape=(1, 28, 28),
    num_classes=10,
    default_arch="cnn_28x28",
    dp_arch="scatternet_linear",
    load=load_mnist,
)

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    pool_size=60000,
    has_test_split=True,
    input_shape=(1, 28, 28),
    num_classes=10,
    default_arch="cnn_28x28",
    dp_arch="scatternet_linear",
    load=load_fashion_mnist,
)
