"""The membership split: disjoint, stratified, reproducible, saved faithfully; canaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.data import ArrayDataset, LoadedDataset, select
from auditml.data.split import MembershipSplit, make_split
from auditml.errors import DataError, RunDirectoryError

LABELS = np.repeat(np.arange(10), [170, 180, 175, 185, 178, 182, 176, 184, 181, 166])


def test_sets_are_disjoint_stratified_and_reproducible() -> None:
    split = make_split(LABELS, 300, seed=4, validation_from_pool=True)
    parts = np.concatenate([split.members, split.nonmembers, split.validation])
    assert len(parts) == len(LABELS) == len(np.unique(parts))
    assert len(split.members) == len(split.nonmembers) == 300
    # Stratified: members and non-members have exactly the same class counts.
    np.testing.assert_array_equal(
        np.bincount(LABELS[split.members], minlength=10),
        np.bincount(LABELS[split.nonmembers], minlength=10),
    )
    again = make_split(LABELS, 300, seed=4, validation_from_pool=True)
    np.testing.assert_array_equal(split.members, again.members)
    other = make_split(LABELS, 300, seed=5, validation_from_pool=True)
    assert not np.array_equal(split.members, other.members)


def test_official_test_split_leaves_the_rest_unused() -> None:
    split = make_split(LABELS, 300, seed=0, validation_from_pool=False)
    assert len(split.validation) == 0


def test_too_large_a_train_size_is_refused() -> None:
    with pytest.raises(DataError, match="needs 1779 examples but the pool has 1777"):
        make_split(LABELS, 889, seed=0, validation_from_pool=True)
    # Enough in total, but not of the smallest class (166 examples, 83 each way at most).
    with pytest.raises(DataError, match="needs more examples of class 2 than the pool has"):
        make_split(LABELS, 888, seed=0, validation_from_pool=True)
    with pytest.raises(DataError, match="30 canaries do not fit"):
        make_split(LABELS[:120], 50, seed=0, validation_from_pool=True, canaries=30)


def test_save_load_round_trip_and_corruption(tmp_path: Path) -> None:
    split = make_split(LABELS, 100, seed=1, validation_from_pool=True, canaries=20)
    path = tmp_path / "split.npz"
    split.save(path)
    loaded = MembershipSplit.load(path)
    for name in ("members", "nonmembers", "validation", "canaries", "canary_labels",
                 "canary_included"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(split, name))
    assert (loaded.pool_size, loaded.seed) == (len(LABELS), 1)
    path.write_bytes(b"not a zip")
    with pytest.raises(RunDirectoryError, match="unreadable"):
        MembershipSplit.load(path)
    overlapping = MembershipSplit(split.members, split.members, split.validation, len(LABELS), 1)
    with pytest.raises(RunDirectoryError, match="overlap"):
        overlapping.check()


def test_canaries_leave_the_split_unchanged_and_stay_apart() -> None:
    plain = make_split(LABELS, 200, seed=2, validation_from_pool=True)
    with_canaries = make_split(LABELS, 200, seed=2, validation_from_pool=True, canaries=100)
    np.testing.assert_array_equal(plain.members, with_canaries.members)
    np.testing.assert_array_equal(plain.nonmembers, with_canaries.nonmembers)
    canaries = with_canaries.canaries
    assert len(canaries) == 100 and not np.isin(canaries, with_canaries.validation).any()
    assert not np.isin(canaries, np.r_[plain.members, plain.nonmembers]).any()
    # Mislabeled canaries carry a wrong label; the coins are fair-ish and recorded.
    assert np.all(with_canaries.canary_labels != LABELS[canaries])
    assert 30 <= with_canaries.canary_included.sum() <= 70
    natural = make_split(LABELS, 200, seed=2, validation_from_pool=True, canaries=100,
                         canary_kind="natural")
    np.testing.assert_array_equal(natural.canary_labels, LABELS[natural.canaries])


def test_training_set_is_members_plus_included_canaries() -> None:
    x = np.arange(len(LABELS), dtype=np.float32)[:, None]
    loaded = LoadedDataset(pool=ArrayDataset(x, LABELS), test=None)
    split = make_split(LABELS, 50, seed=3, validation_from_pool=True, canaries=30)
    data = select(loaded, split)
    training = data.training_set
    included = split.canaries[split.canary_included]
    assert len(training) == 50 + len(included)
    np.testing.assert_array_equal(training.x[50:, 0], included.astype(np.float32))
    np.testing.assert_array_equal(training.y[50:], split.canary_labels[split.canary_included])


def test_secret_canaries_are_texts_with_coins_trained_on_repeats_times(tmp_path: Path) -> None:
    x = np.arange(len(LABELS), dtype=np.int64)[:, None].repeat(4, axis=1)
    loaded = LoadedDataset(pool=ArrayDataset(x, LABELS), test=None)
    texts = np.arange(40 * 4, dtype=np.int64).reshape(40, 4) + 10_000
    plain = make_split(LABELS, 60, seed=4, validation_from_pool=True)
    split = make_split(LABELS, 60, seed=4, validation_from_pool=True, canaries=40,
                       canary_kind="secret", canary_texts=texts, canary_repeats=3)
    # No pool example is a canary: the sets and the validation are those of a run without.
    assert len(split.canaries) == 0
    for name in ("members", "nonmembers", "validation"):
        np.testing.assert_array_equal(getattr(split, name), getattr(plain, name))
    assert len(split.canary_included) == 40 and 10 <= split.canary_included.sum() <= 30
    path = tmp_path / "split.npz"
    split.save(path)
    loaded_split = MembershipSplit.load(path)
    np.testing.assert_array_equal(loaded_split.canary_texts, texts)
    np.testing.assert_array_equal(loaded_split.canary_included, split.canary_included)
    assert loaded_split.canary_repeats == 3
    data = select(loaded, loaded_split)
    np.testing.assert_array_equal(data.canaries.x, texts)
    training = data.training_set
    chosen = texts[split.canary_included]
    assert len(training) == 60 + 3 * len(chosen)
    np.testing.assert_array_equal(training.x[60:], np.repeat(chosen, 3, axis=0))
    # A split whose secret texts and coins disagree in number is refused as corrupt.
    broken = MembershipSplit(split.members, split.nonmembers, split.validation, len(LABELS), 4,
                             canary_labels=split.canary_labels[:-1],
                             canary_included=split.canary_included[:-1], canary_texts=texts)
    with pytest.raises(RunDirectoryError, match="differ in length"):
        broken.check()
    with pytest.raises(ValueError, match="canary_texts"):
        make_split(LABELS, 60, seed=4, validation_from_pool=True, canaries=40,
                   canary_kind="secret", canary_texts=texts[:5])


def test_an_audit_size_audits_a_random_part_of_the_training_set() -> None:
    # 1,200 training examples, 250 of them audited, 250 held out: 1,450 of the 1,777.
    split = make_split(LABELS, 1200, seed=3, validation_from_pool=True, audit_size=250)
    assert len(split.members) == len(split.nonmembers) == 250
    assert len(split.unaudited) == 950
    np.testing.assert_array_equal(split.trained, np.sort(np.r_[split.members, split.unaudited]))
    parts = np.concatenate([split.members, split.unaudited, split.nonmembers, split.validation])
    assert len(parts) == len(LABELS) == len(np.unique(parts))
    # Audited members and non-members have the same class counts, and the training set's are
    # the pool's proportions of 1,200.
    np.testing.assert_array_equal(np.bincount(LABELS[split.members], minlength=10),
                                  np.bincount(LABELS[split.nonmembers], minlength=10))
    trained = np.bincount(LABELS[split.trained], minlength=10)
    assert trained.sum() == 1200
    assert np.abs(trained - np.bincount(LABELS) * 1200 / len(LABELS)).max() < 1
    # The audited members are a random part of the training set, not its lowest indices.
    assert split.members.max() > np.median(split.trained)
    other = make_split(LABELS, 1200, seed=4, validation_from_pool=True, audit_size=250)
    assert not np.array_equal(split.members, other.members)
    # Whatever the size, each class's audited members come from its own training examples.
    for size in (1, 7, 99, 250, 333, 600):
        part = make_split(LABELS, 600, seed=1, validation_from_pool=True, audit_size=size)
        part.check()
        assert np.isin(part.members, part.trained).all() and len(part.members) == size
        np.testing.assert_array_equal(np.bincount(LABELS[part.members], minlength=10),
                                      np.bincount(LABELS[part.nonmembers], minlength=10))
    # A class too rare to get a training example gets no audited member either (allocating the
    # 13 audited in proportion to the pool, not to the 14 trained, would give it one).
    rare = np.repeat(np.arange(5), [8, 1, 5, 10, 7])
    part = make_split(rare, 14, seed=0, validation_from_pool=False, audit_size=13)
    part.check()
    assert np.isin(part.members, part.trained).all()
    assert 1 not in rare[part.trained] and 1 not in rare[part.members]
    # Auditing every member draws exactly the split drawn without the argument.
    full = make_split(LABELS, 300, seed=4, validation_from_pool=True, audit_size=300)
    plain = make_split(LABELS, 300, seed=4, validation_from_pool=True)
    for name in ("members", "nonmembers", "validation", "unaudited"):
        np.testing.assert_array_equal(getattr(full, name), getattr(plain, name))
    assert len(plain.unaudited) == 0


def test_unaudited_examples_are_trained_on_saved_and_checked(tmp_path: Path) -> None:
    split = make_split(LABELS, 900, seed=1, validation_from_pool=True, audit_size=100,
                       canaries=10)
    path = tmp_path / "split.npz"
    split.save(path)
    loaded = MembershipSplit.load(path)
    np.testing.assert_array_equal(loaded.unaudited, split.unaudited)
    assert not np.isin(split.canaries, split.trained).any()
    pool = ArrayDataset(np.arange(len(LABELS), dtype=np.float32)[:, None], LABELS)
    data = select(LoadedDataset(pool, None), split)
    trained = data.training_set.x[:, 0].astype(np.int64)
    included = split.canaries[split.canary_included]
    np.testing.assert_array_equal(np.sort(trained), np.sort(np.r_[split.trained, included]))
    # An unaudited example that is also a non-member voids the audit.
    bad = MembershipSplit(split.members, split.nonmembers, split.validation, len(LABELS), 1,
                          unaudited=np.r_[split.unaudited, split.nonmembers[:1]])
    with pytest.raises(RunDirectoryError, match="overlap"):
        bad.check()
    with pytest.raises(DataError, match=r"audit_size must be in \[1, train_size=100\]"):
        make_split(LABELS, 100, seed=0, validation_from_pool=True, audit_size=101)
    with pytest.raises(DataError, match="train_size=1700 with audit_size=100 needs 1801"):
        make_split(LABELS, 1700, seed=0, validation_from_pool=True, audit_size=100)


@pytest.mark.parametrize(("key", "change"), [
    ("members", lambda array: array + 0.5),
    ("unaudited", lambda array: array.astype(np.float64)),
    ("canary_included", lambda array: array.astype(np.int64)),
])
def test_a_split_with_indices_of_another_kind_is_refused(
    tmp_path: Path, key: str, change: Any
) -> None:
    """``members + 0.5`` (the manifest's hash rewritten) read back as the members themselves."""
    split = make_split(LABELS, 900, seed=1, validation_from_pool=True, audit_size=100,
                       canaries=10)
    path = tmp_path / "split.npz"
    split.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    arrays[key] = change(arrays[key])
    np.savez(path, **arrays)
    with pytest.raises(RunDirectoryError, match=f"{key} has dtype .*, not"):
        MembershipSplit.load(path)
