"""The membership split: who was trained on (members), who was not (non-members), validation.

Indices refer to the dataset's training pool. The split is drawn once, with the run's seed, and
saved in the run directory so every later audit uses exactly the same members and non-members.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auditml.data.base import ArrayDataset, LoadedDataset
from auditml.errors import DataError, RunDirectoryError
from auditml.fileio import atomic_path, npz_scalar, read_npz


@dataclass(frozen=True)
class MembershipSplit:
    members: np.ndarray
    nonmembers: np.ndarray
    # Indices into the pool used for validation; empty when the official test split is used.
    validation: np.ndarray
    pool_size: int
    seed: int
    # One-run audit canaries (Steinke et al. 2023): pool indices, the labels they are trained
    # with (wrong ones for mislabeled canaries), and each one's coin: trained on or not.
    canaries: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    canary_labels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    canary_included: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    # Secret canaries (texts): the canaries are these token ids, not pool examples (``canaries``
    # is then empty), and each included one is trained on ``canary_repeats`` times.
    canary_texts: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.int64))
    canary_repeats: int = 1
    # Trained on but not audited (``data.audit_size`` below ``train_size``): the members are a
    # random part of the training set, and these are the rest. Empty when all are audited.
    unaudited: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def trained(self) -> np.ndarray:
        """Every pool example the target trains on (canaries aside): members and unaudited."""
        return np.sort(np.concatenate([self.members, self.unaudited]))

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(
                handle,
                members=self.members,
                nonmembers=self.nonmembers,
                validation=self.validation,
                pool_size=np.int64(self.pool_size),
                seed=np.int64(self.seed),
                canaries=self.canaries,
                canary_labels=self.canary_labels,
                canary_included=self.canary_included,
                canary_texts=self.canary_texts,
                canary_repeats=np.int64(self.canary_repeats),
                unaudited=self.unaudited,
            )

    @classmethod
    def load(cls, path: Path) -> MembershipSplit:
        def build(data: Any) -> MembershipSplit:
            return cls(
                members=_whole(data, "members"),
                nonmembers=_whole(data, "nonmembers"),
                validation=_whole(data, "validation"),
                pool_size=int(npz_scalar(data, "pool_size", "iu")),
                seed=int(npz_scalar(data, "seed", "iu")),
                canaries=_optional(data, "canaries", np.int64),
                canary_labels=_optional(data, "canary_labels", np.int64),
                canary_included=_optional(data, "canary_included", bool),
                canary_texts=(_whole(data, "canary_texts") if "canary_texts" in data
                              else np.empty((0, 0), np.int64)),
                canary_repeats=(int(npz_scalar(data, "canary_repeats", "iu"))
                                if "canary_repeats" in data else 1),
                unaudited=_optional(data, "unaudited", np.int64),
            )

        split = read_npz(path, "membership split", build)
        split.check()
        return split

    def check(self) -> None:
        """Raise if the sets are malformed, overlap or leave the pool: such a split would void
        the audit."""
        arrays = {
            "members": self.members, "nonmembers": self.nonmembers,
            "validation": self.validation, "canaries": self.canaries,
            "canary_labels": self.canary_labels, "canary_included": self.canary_included,
            "unaudited": self.unaudited,
        }
        for name, array in arrays.items():
            if array.ndim != 1:
                raise RunDirectoryError(
                    f"membership split is corrupt: {name} has shape {array.shape}, expected "
                    "one dimension; retrain the run"
                )
        drawn = len(self.canary_texts) if len(self.canary_texts) else len(self.canaries)
        if self.canary_texts.ndim != 2 or (len(self.canary_texts) and len(self.canaries)):
            raise RunDirectoryError(
                "membership split is corrupt: canary_texts must be (canaries, tokens), and a "
                "run has either text canaries or pool canaries; retrain the run"
            )
        if self.canary_repeats < 1:
            raise RunDirectoryError(
                "membership split is corrupt: canary_repeats must be at least 1; retrain the run"
            )
        if not (drawn == len(self.canary_labels) == len(self.canary_included)):
            raise RunDirectoryError(
                "membership split is corrupt: canaries, canary_labels and canary_included "
                "differ in length; retrain the run"
            )
        if len(self.members) == 0 or len(self.members) != len(self.nonmembers):
            raise RunDirectoryError(
                "membership split is corrupt: it needs as many non-members as members, and at "
                "least one; retrain the run"
            )
        parts = [self.members, self.nonmembers, self.validation, self.canaries, self.unaudited]
        joined = np.concatenate(parts)
        if len(np.unique(joined)) != len(joined):
            raise RunDirectoryError("membership split is corrupt: members, unaudited training "
                                    "examples, non-members and validation overlap; retrain the "
                                    "run")
        if len(joined) and (joined.min() < 0 or joined.max() >= self.pool_size):
            raise RunDirectoryError("membership split is corrupt: an index is outside the pool; "
                                    "retrain the run")


def _optional(data: Any, key: str, dtype: type) -> np.ndarray:
    """An array a split written before the key existed does not have: empty then."""
    if key not in data:
        return np.empty(0, dtype)
    return _whole(data, key) if dtype is np.int64 else _kind(data, key, "b").astype(dtype)


def _whole(data: Any, key: str) -> np.ndarray:
    """Indices as written: integers, never floats cast down (``members + 0.5`` would read as
    the members themselves)."""
    return _kind(data, key, "iu").astype(np.int64)


def _kind(data: Any, key: str, kinds: str) -> np.ndarray:
    array = data[key]
    if array.dtype.kind not in kinds:
        wanted = "booleans" if kinds == "b" else "integers"
        raise ValueError(f"{key} has dtype {array.dtype}, not {wanted}")
    return array


def make_split(
    labels: np.ndarray,
    train_size: int,
    seed: int,
    *,
    validation_from_pool: bool,
    canaries: int = 0,
    canary_kind: str = "mislabeled",
    canary_texts: np.ndarray | None = None,
    canary_repeats: int = 1,
    audit_size: int | None = None,
) -> MembershipSplit:
    """Draw ``train_size`` members and as many non-members from the pool, at random per class.

    With ``audit_size`` below ``train_size`` the target still trains on ``train_size`` examples,
    but only ``audit_size`` of them, drawn at random per class, are audited members (the rest
    are ``unaudited``), and the non-members are ``audit_size``: a large training set then needs
    only as many held-out examples as the audit judges. An attack's rates on a random part of
    the training set estimate its rates on the whole. ``audit_size=None`` audits every member
    and draws exactly the split it always drew.

    Members and non-members get the same number of examples of each class (proportional to the
    pool's class frequencies, largest remainder first). Without this, chance differences in the
    two sets' class counts show up as "membership" signal: a model learns its members' class
    balance, so an attack would score well by recognising over-represented classes rather than
    individual examples, even under strong DP. With ``validation_from_pool`` (datasets without a
    test split) everything left over is the validation set; otherwise validation uses the
    official test split and the rest of the pool is unused.

    ``canary_kind="secret"``: the canaries are ``canary_texts`` (token ids of generated secrets,
    :mod:`auditml.data.secrets`), not pool examples; each gets a coin as pool canaries do, and an
    included one is trained on ``canary_repeats`` times.
    """
    labels = np.asarray(labels)
    pool_size = len(labels)
    if train_size <= 0:
        raise DataError(f"train_size must be positive, got {train_size}")
    audited = train_size if audit_size is None else audit_size
    if not 0 < audited <= train_size:
        raise DataError(f"audit_size must be in [1, train_size={train_size}], got {audit_size}")
    needed = train_size + audited + (1 if validation_from_pool else 0)
    given = "" if audit_size is None else f" with audit_size={audit_size}"
    if needed > pool_size:
        raise DataError(
            f"train_size={train_size}{given} needs {needed} examples but the pool has {pool_size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    per_class = _allocate(counts, train_size)
    # In proportion to each class's training examples: never more than a class has (every
    # member when nothing is left out).
    audited_per_class = _allocate(per_class, audited)
    short = classes[per_class + audited_per_class > counts]
    if len(short):
        raise DataError(
            f"train_size={train_size}{given} needs more examples of class "
            f"{', '.join(str(c) for c in short)} than the pool has (members and non-members "
            "get the same class counts): lower train_size or audit_size"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool_size)
    members, unaudited, nonmembers = [], [], []
    for label, take, audit in zip(classes, per_class, audited_per_class, strict=True):
        of_class = order[labels[order] == label]
        # The order is random: the first ``audit`` of a class's training examples are a random
        # part of them (all of them when every member is audited).
        members.append(of_class[:audit])
        unaudited.append(of_class[audit:take])
        nonmembers.append(of_class[take : take + audit])
    member_index = np.sort(np.concatenate(members)).astype(np.int64)
    unaudited_index = np.sort(np.concatenate(unaudited)).astype(np.int64)
    nonmember_index = np.sort(np.concatenate(nonmembers)).astype(np.int64)
    used = np.zeros(pool_size, bool)
    used[member_index] = used[nonmember_index] = used[unaudited_index] = True
    texts = np.empty((0, 0), np.int64)
    if canary_kind == "secret":
        texts = np.asarray(canary_texts, dtype=np.int64)
        if texts.ndim != 2 or len(texts) != canaries:
            raise ValueError(f"canary_texts must be ({canaries}, tokens), got {texts.shape}")
    if canary_kind in ("gradient", "secret"):
        # Gradient canaries are gradients DP-SGD adds and secrets are generated texts, not pool
        # examples: none are drawn here (secrets get their coins below).
        coins = canaries
        canaries = 0
    # Canaries get their own generator, so a run without them splits exactly as before.
    canary_rng = np.random.default_rng([seed, 11])
    leftover = np.flatnonzero(~used)
    if canaries > len(leftover) - (1 if validation_from_pool else 0):
        raise DataError(
            f"{canaries} canaries do not fit: {len(leftover)} pool examples are left after the "
            "members and non-members"
        )
    canary_index = np.sort(canary_rng.choice(leftover, size=canaries, replace=False))
    canary_labels = labels[canary_index].astype(np.int64)
    if canary_kind == "mislabeled" and canaries:
        # A wrong label, uniform over the other classes: only memorisation can fit it.
        offsets = canary_rng.integers(1, len(classes), size=canaries)
        positions = np.searchsorted(classes, canary_labels)
        canary_labels = classes[(positions + offsets) % len(classes)].astype(np.int64)
    canary_included = canary_rng.random(canaries) < 0.5
    if len(texts):
        canary_labels = np.zeros(coins, np.int64)
        canary_included = canary_rng.random(coins) < 0.5
    used[canary_index] = True
    validation = np.empty(0, np.int64)
    if validation_from_pool:
        validation = np.flatnonzero(~used).astype(np.int64)
    return MembershipSplit(
        member_index, nonmember_index, validation, pool_size, seed,
        canary_index.astype(np.int64), canary_labels, canary_included,
        canary_texts=texts if len(texts) else np.empty((0, 0), np.int64),
        canary_repeats=canary_repeats,
        unaudited=unaudited_index,
    )


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder method)."""
    exact = counts / counts.sum() * total
    whole = np.floor(exact).astype(np.int64)
    remainder = total - int(whole.sum())
    # Ties in the fractional parts go to the lower class index: stable and seed-independent.
    whole[np.argsort(-(exact - whole), kind="stable")[:remainder]] += 1
    return whole


@dataclass(frozen=True)
class SplitData:
    """The arrays behind a split: what the model trained on, what it did not, validation."""

    members: ArrayDataset
    nonmembers: ArrayDataset
    validation: ArrayDataset
    # The canaries with the labels they are trained with, and which ones were.
    canaries: ArrayDataset
    canary_included: np.ndarray
    canary_repeats: int = 1
    # Trained on, not audited (see MembershipSplit.unaudited); None when every member is audited.
    unaudited: ArrayDataset | None = None

    @property
    def training_set(self) -> ArrayDataset:
        """What the target trains on: the members, the unaudited training examples and the
        canaries whose coin said IN (each ``canary_repeats`` times)."""
        included = self.canaries.subset(
            np.repeat(np.flatnonzero(self.canary_included), self.canary_repeats)
        )
        parts = [part for part in (self.members, self.unaudited, included)
                 if part is not None and len(part)]
        if len(parts) == 1:
            return self.members
        return ArrayDataset(np.concatenate([part.x for part in parts]),
                            np.concatenate([part.y for part in parts]))


def select(loaded: LoadedDataset, split: MembershipSplit) -> SplitData:
    """Materialise a split on a loaded dataset (validation: the test split, else the pool)."""
    if len(loaded.pool) != split.pool_size:
        raise DataError(
            f"the dataset's pool has {len(loaded.pool)} examples but the run's split was drawn "
            f"from {split.pool_size}: the data files changed since training; retrain the run"
        )
    validation = loaded.test if loaded.test is not None else loaded.pool.subset(split.validation)
    return SplitData(
        members=loaded.pool.subset(split.members),
        nonmembers=loaded.pool.subset(split.nonmembers),
        validation=validation,
        canaries=(ArrayDataset(split.canary_texts, split.canary_labels)
                  if len(split.canary_texts)
                  else ArrayDataset(loaded.pool.x[split.canaries], split.canary_labels)),
        canary_included=split.canary_included,
        canary_repeats=split.canary_repeats,
        unaudited=loaded.pool.subset(split.unaudited) if len(split.unaudited) else None,
    )
