"""Tests of auditml.metrics.dp.thresholds: the ROC hull, the strategies' settings and the splits."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from auditml.metrics import MetricsInputError
from auditml.metrics.dp.thresholds import (
    STRATEGIES,
    BonferroniAllScores,
    BonferroniHull,
    Explicit,
    MultiSplit,
    Split,
    as_threshold_strategy,
    available,
    hull_corners,
    stratified_split,
)
from auditml.metrics.roc import _roc_counts, _RocCounts
from auditml.metrics.threshold import _stratified_halves


def points(xy: list[tuple[int, int]]) -> _RocCounts:
    """ROC counts holding exactly these (false positives, true positives) points."""
    array = np.array(xy, dtype=np.int64)
    return _RocCounts(false_positives=array[:, 0], true_positives=array[:, 1],
                      thresholds=np.arange(len(array), dtype=float)[::-1],
                      members=int(array[-1, 1]), nonmembers=int(array[-1, 0]))


def naive_corners(xy: np.ndarray) -> list[int]:
    """Points not on or below a segment joining two other points, one on each side (cubic)."""
    dominated = set()
    for i, j, k in itertools.combinations(range(len(xy)), 3):
        (x1, y1), (x2, y2), (x3, y3) = xy[i], xy[j], xy[k]
        # j on or below the segment i-k: the turn i -> j -> k is not strictly to the right.
        if (x2 - x1) * (y3 - y2) - (y2 - y1) * (x3 - x2) >= 0:
            dominated.add(j)
    return sorted(set(range(len(xy))) - dominated)


@pytest.mark.parametrize(
    ("xy", "expected"),
    [
        ([(0, 0), (1, 1)], [0, 1]),
        ([(k, k) for k in range(100)], [0, 99]),  # a straight line: its two ends
        ([(0, 0), (0, 2), (3, 2), (3, 5), (5, 5)], [0, 1, 3, 4]),
        # (3, 3) lies below the segment (0, 2)-(3, 5) ...
        ([(0, 0), (0, 2), (2, 2), (2, 3), (3, 3), (3, 5), (5, 5)], [0, 1, 5, 6]),
        # ... (1, 4) above (0, 2)-(3, 5) ...
        ([(0, 0), (0, 2), (1, 2), (1, 4), (3, 4), (3, 5), (5, 5)], [0, 1, 3, 5, 6]),
        # ... and (1, 3) on (0, 2)-(2, 4): collinear points are not corners.
        ([(0, 0), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4), (4, 4)], [0, 1, 5, 6]),
    ],
)
def test_hull_corners_hand_cases(xy: list[tuple[int, int]], expected: list[int]) -> None:
    # The cases of jax_privacy's _pareto_frontier tests, in ROC coordinates.
    assert hull_corners(points(xy)).tolist() == expected


def test_hull_of_a_concave_curve_keeps_every_point_and_of_a_convex_one_the_ends() -> None:
    x = np.arange(0, 1001, 10)
    concave = np.round(1000 * np.sin(x / 1000 * np.pi / 2)).astype(int)
    convex = np.round(1000 - 1000 * np.cos(x / 1000 * np.pi / 2)).astype(int)
    kept = hull_corners(points(list(zip(x.tolist(), concave.tolist(), strict=True))))
    assert kept.tolist() == naive_corners(np.stack([x, concave], 1))
    assert len(kept) > 20
    assert hull_corners(points(list(zip(x.tolist(), convex.tolist(), strict=True)))).tolist() == [
        0, len(x) - 1]


@pytest.mark.parametrize("seed", range(8))
def test_hull_corners_match_a_cubic_search_on_random_rocs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=80) + rng.integers(0, 2, 80), 1)
    is_member = rng.integers(0, 2, 80).astype(bool)
    counts = _roc_counts(scores, is_member)
    xy = np.stack([counts.false_positives, counts.true_positives], axis=1)
    assert hull_corners(counts).tolist() == naive_corners(xy)


def test_hull_corners_after_the_vectorised_passes_are_exact() -> None:
    # A long random walk needs more than the vectorised passes: the linear scan finishes it.
    rng = np.random.default_rng(5)
    is_member = rng.integers(0, 2, 3000).astype(bool)
    counts = _roc_counts(rng.normal(size=3000) + 0.2 * is_member, is_member)
    xy = np.stack([counts.false_positives, counts.true_positives], axis=1)
    kept = hull_corners(counts)
    # Every kept point turns strictly right, and no discarded point lies above the hull.
    turns = np.diff(xy[kept, 0])[:-1] * np.diff(xy[kept, 1])[1:] - np.diff(
        xy[kept, 1])[:-1] * np.diff(xy[kept, 0])[1:]
    assert (turns < 0).all()
    hull_y = np.interp(xy[:, 0], xy[kept, 0], xy[kept, 1])
    assert (xy[:, 1] <= hull_y + 1e-9).all()


def test_ties_collapse_before_the_hull() -> None:
    # jax_privacy's "ties" cases: members [0, 1, 1, 2] and non-members [0, 0, 1, 1].
    scores = np.array([0, 1, 1, 2, 0, 0, 1, 1], dtype=float)
    is_member = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    counts = _roc_counts(scores, is_member)
    assert counts.thresholds[hull_corners(counts)].tolist() == [np.inf, 2.0, 1.0, 0.0]
    # Members [0, 0, 1, 2], non-members [0, 1, 1, 1]: the threshold 1 falls below the hull.
    scores = np.array([0, 0, 1, 2, 0, 1, 1, 1], dtype=float)
    counts = _roc_counts(scores, is_member)
    assert counts.thresholds[hull_corners(counts)].tolist() == [np.inf, 2.0, 0.0]


def test_names_map_to_strategies_and_old_names_keep_their_meaning() -> None:
    assert available() == tuple(kind.name for kind in STRATEGIES)
    assert as_threshold_strategy("split", seed=4) == Split(seed=4)
    assert as_threshold_strategy("bonferroni") == BonferroniAllScores()
    assert as_threshold_strategy("bonferroni_hull") == BonferroniHull()
    assert as_threshold_strategy("multi_split", seed=2) == MultiSplit(seed=2)
    assert MultiSplit(splits=5, seed=1).to_dict() == {
        "name": "multi_split", "splits": 5, "fraction": 0.5, "seed": 1}
    assert Explicit(threshold=0.3).to_dict() == {"name": "explicit", "threshold": 0.3}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("best", "`threshold` must be a ThresholdStrategy"),
        (Split(fraction=1.0), "`Split.fraction` must be in (0, 1), got 1.0."),
        (MultiSplit(splits=0), "`MultiSplit.splits` must be a positive integer, got 0."),
        (Split(seed=-1), "`seed` must be a non-negative integer, got -1."),
        (Explicit(threshold=float("nan")), "`Explicit.threshold` must be a finite number"),
    ],
)
def test_bad_strategies_name_the_setting(value: object, message: str) -> None:
    with pytest.raises(MetricsInputError, match=re.escape(message)):
        as_threshold_strategy(value)


def test_split_at_one_half_is_the_calibration_split() -> None:
    is_member = np.random.default_rng(0).integers(0, 2, 101).astype(bool)
    for first, second in zip(stratified_split(is_member, 0.5, 9), _stratified_halves(is_member, 9),
                             strict=True):
        np.testing.assert_array_equal(first, second)
    choice, evaluation = stratified_split(is_member, 0.3, 9)
    assert int(is_member[choice].sum()) == int(np.ceil(0.3 * is_member.sum()))
    assert sorted(np.concatenate([choice, evaluation]).tolist()) == list(range(101))
