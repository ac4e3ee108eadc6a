"""Datasets: a registry of specs, and the membership split.

Adding a dataset is one module defining a ``DatasetSpec`` plus one ``DATASETS.register`` line.
"""

from __future__ import annotations

from auditml.data.adult import ADULT
from auditml.data.base import ArrayDataset, DatasetSpec, LoadedDataset, SensitiveAttribute
from auditml.data.cifar10 import CIFAR10
from auditml.data.diabetes import DIABETES
from auditml.data.digits import DIGITS
from auditml.data.membership_benchmarks import PURCHASE100, TEXAS100
from auditml.data.mnist import FASHION_MNIST, MNIST
from auditml.data.split import MembershipSplit, SplitData, make_split, select
from auditml.registry import Registry

DATASETS: Registry[DatasetSpec] = Registry("dataset")
DATASETS.register("digits", DIGITS)
DATASETS.register("mnist", MNIST)
DATASETS.register("fashion_mnist", FASHION_MNIST)
DATASETS.register("cifar10", CIFAR10)
DATASETS.register("diabetes", DIABETES)
DATASETS.register("adult", ADULT)
DATASETS.register("purchase100", PURCHASE100)
DATASETS.register("texas100", TEXAS100)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "DatasetSpec",
    "LoadedDataset",
    "MembershipSplit",
    "SensitiveAttribute",
    "SplitData",
    "make_split",
    "select",
]
