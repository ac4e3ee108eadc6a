"""Attribute-inference metrics against scipy, scikit-learn and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from auditml.metrics.attribute import (
    accuracy_interval,
    advantage_over_imputation,
    attribute_score,
    category_auc,
)
from auditml.metrics.roc import MetricsInputError


@pytest.mark.parametrize(("correct", "total"), [(0, 10), (3, 10), (10, 10), (57, 120)])
def test_accuracy_interval_is_clopper_pearson(correct: int, total: int) -> None:
    expected = binomtest(correct, total).proportion_ci(0.95, method="exact")
    low, high = accuracy_interval(correct, total, 0.95)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_binary_auc_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200)
    scores = np.log(rng.dirichlet([1, 1], 200)) + np.c_[np.zeros(200), truth * 0.5]
    assert category_auc(scores, truth) == pytest.approx(
        roc_auc_score(truth, scores[:, 1] - scores[:, 0])
    )


def test_multi_category_auc_matches_scikit_learn_ovr_macro() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300)
    probabilities = rng.dirichlet([1, 1, 1], 300)
    probabilities[np.arange(300), truth] += 0.3
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    expected = roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")
    assert category_auc(probabilities, truth) == pytest.approx(expected)


def test_auc_is_undefined_with_one_category_present() -> None:
    assert math.isnan(category_auc(np.zeros((4, 2)), np.zeros(4, np.int64)))


def test_attribute_score_counts_argmax_hits() -> None:
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    found = attribute_score(scores, np.array([0, 1, 1, 1]))
    assert found.accuracy == 0.75 and found.records == 4


def _mcnemar_closed_form(attack_only: int, discordant: int) -> float:
    return sum(math.comb(discordant, i) for i in range(attack_only, discordant + 1)) / 2**discordant


def test_advantage_is_the_paired_difference_with_an_exact_mcnemar_p_value() -> None:
    rng = np.random.default_rng(2)
    baseline = rng.random(400) < 0.6
    attack = baseline.copy()
    attack[rng.choice(400, 60, replace=False)] = True  # right on more records...
    attack[rng.choice(400, 10, replace=False)] = False  # ...and wrong on a few the baseline gets
    found = advantage_over_imputation(attack, baseline, seed=0)
    assert found.advantage == pytest.approx(attack.mean() - baseline.mean())
    assert found.attack_only == int((attack & ~baseline).sum())
    assert found.discordant == found.attack_only + int((baseline & ~attack).sum())
    assert found.discordant - found.attack_only > 0
    assert found.p_value == pytest.approx(_mcnemar_closed_form(found.attack_only, found.discordant))
    assert found.interval[0] > 0 and found.interval[0] <= found.advantage <= found.interval[1]


def test_no_advantage_when_attack_and_baseline_agree() -> None:
    same = np.random.default_rng(3).random(100) < 0.5
    found = advantage_over_imputation(same, same.copy())
    assert found.advantage == 0 and found.p_value == 1 and found.interval == (0.0, 0.0)


def test_bootstrap_interval_covers_the_true_difference_most_of_the_time() -> None:
    rng = np.random.default_rng(4)
    covered = 0
    for trial in range(100):
        baseline = rng.random(300) < 0.5
        attack = rng.random(300) < 0.6  # true difference 0.1
        low, high = advantage_over_imputation(attack, baseline, resamples=500, seed=trial).interval
        covered += low <= 0.1 <= high
    assert covered >= 88  # nominal 95%: binomial(100, 0.95) is below 88 with probability < 0.3%


@pytest.mark.parametrize(
    ("scores", "truth"),
    [(np.zeros((3, 1)), np.zeros(3, np.int64)), (np.zeros((3, 2)), np.array([0, 1, 2])),
     (np.full((2, 2), np.nan), np.zeros(2, np.int64)), (np.zeros((3, 2)), np.zeros(2, np.int64))],
)
def test_bad_inputs_are_refused(scores: np.ndarray, truth: np.ndarray) -> None:
    with pytest.raises(MetricsInputError):
        attribute_score(scores, truth)


def test_advantage_refuses_non_boolean_or_mismatched_inputs() -> None:
    with pytest.raises(MetricsInputError):
        advantage_over_imputation(np.ones(3), np.ones(3))
    with pytest.raises(MetricsInputError):
        advantage_over_imputation(np.ones(3, bool), np.ones(4, bool))


def test_member_gap_is_fishers_exact_test_closed_form() -> None:
    from scipy.stats import hypergeom

    from auditml.metrics.attribute import member_gap

    members = np.array([True] * 30 + [False] * 10)
    nonmembers = np.array([True] * 18 + [False] * 22)
    found = member_gap(members, nonmembers)
    assert found.gap == pytest.approx(30 / 40 - 18 / 40)
    # Members' hits given 48 hits among 80 records, 40 of them members: hypergeometric tail.
    assert found.p_value == pytest.approx(hypergeom.sf(30 - 1, 80, 48, 40))
    assert member_gap(nonmembers, members).p_value > 0.5
