"""Datasets: a registry of specs, and the membership split.

Adding a dataset is one module defining a ``DatasetSpec`` plus one ``DATASETS.register`` line;
adding a file format (data read from the config's ``data.path``) is one module defining a
:class:`~auditml.data.files.FileFormat` plus one line.
"""

from __future__ import annotations

from auditml.data.adult import ADULT
from auditml.data.base import (
    ArrayDataset,
    DatasetEntry,
    DatasetSpec,
    DataSource,
    LoadedDataset,
    SensitiveAttribute,
)
from auditml.data.cifar10 import CIFAR10
from auditml.data.csv_file import CSV_FILE
from auditml.data.diabetes import DIABETES
from auditml.data.digits import DIGITS
from auditml.data.membership_benchmarks import PURCHASE100, TEXAS100
from auditml.data.mnist import FASHION_MNIST, MNIST
from auditml.data.npz_file import NPZ_FILE
from auditml.data.split import MembershipSplit, SplitData, make_split, select
from auditml.data.text import PUBLIC_TEXT, TEXT
from auditml.registry import Registry

DATASETS: Registry[DatasetEntry] = Registry("dataset")
DATASETS.register("digits", DIGITS)
DATASETS.register("mnist", MNIST)
DATASETS.register("fashion_mnist", FASHION_MNIST)
DATASETS.register("cifar10", CIFAR10)
DATASETS.register("diabetes", DIABETES)
DATASETS.register("adult", ADULT)
DATASETS.register("purchase100", PURCHASE100)
DATASETS.register("texas100", TEXAS100)
DATASETS.register("csv", CSV_FILE)
DATASETS.register("npz", NPZ_FILE)
DATASETS.register("text", TEXT)
DATASETS.register("text_public", PUBLIC_TEXT)


def dataset_spec(name: str, source: DataSource) -> DatasetSpec:
    """The spec of dataset ``name`` as ``source`` (the config's ``data.path`` and its options)
    describes it: a built-in dataset's own, or that of the file a file format reads."""
    return DATASETS.get(name).bind(source)


__all__ = [
    "DATASETS",
    "ArrayDataset",
    "DataSource",
    "DatasetEntry",
    "DatasetSpec",
    "LoadedDataset",
    "MembershipSplit",
    "SensitiveAttribute",
    "SplitData",
    "dataset_spec",
    "make_split",
    "select",
]
