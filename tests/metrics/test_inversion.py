"""Model-inversion metrics against independent references: brute-force ``cdist`` for nearest
distances, the binomial closed form for the sign test, scikit-learn for accuracies."""

from __future__ import annotations

import subprocess
import sys
from math import comb

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import accuracy_score

from auditml.metrics.inversion import (
    MetricsInputError,
    evaluation_accuracy,
    fit_evaluator,
    member_vs_nonmember,
    nearest_distances,
    sign_test_p_value,
)


def test_nearest_distances_by_hand() -> None:
    candidates = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    labels = np.array([0, 0, 1, 1])
    recon = np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    nearest = nearest_distances(recon, candidates, labels, [0, 1, 1])
    # Class 0 at (3, 0): (0, 0) is 3 away, (3, 4) is 4. Class 1 at (3, 0): (1, 0) is 2 away.
    # Class 1 at (0, 1): (1, 0) and (0, 2) are √2 and 1 away.
    np.testing.assert_allclose(nearest.distances, [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(nearest.indices, [0, 2, 3])


def test_nearest_distances_match_brute_force_cdist() -> None:
    rng = np.random.default_rng(0)
    candidates = rng.normal(size=(200, 1, 4, 4))
    labels = rng.integers(0, 5, 200)
    classes = np.array([4, 0, 2, 2, 1, 3, 0])
    recon = rng.normal(size=(len(classes), 1, 4, 4))
    nearest = nearest_distances(recon, candidates, labels, classes)
    all_pairs = cdist(recon.reshape(len(recon), -1), candidates.reshape(200, -1))
    masked = np.where(labels[None, :] == classes[:, None], all_pairs, np.inf)
    np.testing.assert_allclose(nearest.distances, masked.min(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(nearest.indices, masked.argmin(axis=1))
    assert (labels[nearest.indices] == classes).all()


def test_a_tiny_distance_is_not_lost_to_cancellation() -> None:
    far = np.full((1, 64), 1e4)
    nearest = nearest_distances(far + 1e-6, far, [0], [0])
    assert nearest.distances[0] == pytest.approx(8e-6, rel=1e-3)


@pytest.mark.parametrize("trials", range(0, 13))
def test_the_sign_test_matches_the_binomial_tail(trials: int) -> None:
    for successes in range(trials + 1):
        tail = sum(comb(trials, k) for k in range(successes, trials + 1)) / 2 ** trials
        expected = tail if trials else 1.0
        assert sign_test_p_value(successes, trials) == pytest.approx(expected, rel=1e-12)


def test_reconstructions_copied_from_members_are_found_nearer_the_members() -> None:
    """A planted leak at the metric's level: each class's reconstruction is one of its members
    plus small noise; members and non-members are otherwise drawn alike."""
    rng = np.random.default_rng(1)
    classes = np.arange(12)
    members = rng.normal(size=(12 * 6, 8))
    member_labels = np.repeat(classes, 6)
    nonmembers = rng.normal(size=(12 * 6, 8))
    recon = members[::6] + rng.normal(0, 0.05, (12, 8))
    result = member_vs_nonmember(recon, classes, members, member_labels, nonmembers,
                                 member_labels)
    assert result.member_closer == 12 and result.ties == 0
    assert result.fraction_member_closer == 1.0
    assert result.p_value == pytest.approx(0.5 ** 12)
    np.testing.assert_array_equal(result.member_indices, np.arange(0, 72, 6))
    np.testing.assert_array_equal(result.compared_per_side, np.full(12, 6))


def test_equal_set_sizes_compare_against_every_example() -> None:
    rng = np.random.default_rng(2)
    members, nonmembers = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    labels = np.tile(np.arange(4), 10)
    classes = np.arange(4)
    recon = rng.normal(size=(4, 5))
    result = member_vs_nonmember(recon, classes, members, labels, nonmembers, labels)
    for side, points, distances, indices in (
        ("members", members, result.member_distances, result.member_indices),
        ("nonmembers", nonmembers, result.nonmember_distances, result.nonmember_indices),
    ):
        brute = np.where(labels[None] == classes[:, None], cdist(recon, points), np.inf)
        np.testing.assert_allclose(distances, brute.min(axis=1), err_msg=side)
        np.testing.assert_array_equal(indices, brute.argmin(axis=1), err_msg=side)
    closer = int((result.member_distances < result.nonmember_distances).sum())
    assert result.member_closer == closer
    assert result.p_value == pytest.approx(sign_test_p_value(closer, 4))


def test_unequal_set_sizes_are_balanced_so_no_leak_reads_as_one_half() -> None:
    """With 40 members and 5 non-members per class, all drawn alike, the nearest of all 45 is a
    member 40/45 of the time; subsampled to 5 and 5 it is one half."""
    rng = np.random.default_rng(3)
    classes = np.arange(300)
    members = rng.normal(size=(300 * 40, 6))
    member_labels = np.repeat(classes, 40)
    nonmembers = rng.normal(size=(300 * 5, 6))
    nonmember_labels = np.repeat(classes, 5)
    recon = rng.normal(size=(300, 6))
    result = member_vs_nonmember(recon, classes, members, member_labels, nonmembers,
                                 nonmember_labels, seed=4)
    np.testing.assert_array_equal(result.compared_per_side, np.full(300, 5))
    # 300 fair coin flips: standard deviation of the fraction ≈ 0.029.
    assert abs(result.fraction_member_closer - 0.5) < 0.09
    assert result.p_value > 0.01
    # The indices point into the arrays given, at examples of the right class.
    assert (member_labels[result.member_indices] == classes).all()
    assert (nonmember_labels[result.nonmember_indices] == classes).all()
    np.testing.assert_allclose(
        result.member_distances,
        np.linalg.norm(recon - members[result.member_indices], axis=1),
    )
    again = member_vs_nonmember(recon, classes, members, member_labels, nonmembers,
                                nonmember_labels, seed=4)
    np.testing.assert_array_equal(again.member_indices, result.member_indices)


def test_ties_are_left_out_of_the_sign_test() -> None:
    members = np.array([[1.0], [5.0]])
    nonmembers = np.array([[-1.0], [4.0]])
    labels = np.array([0, 1])
    # Class 0 sits midway (a tie); class 1 is nearer the non-member.
    result = member_vs_nonmember(np.array([[0.0], [4.4]]), [0, 1], members, labels, nonmembers,
                                 labels)
    assert (result.member_closer, result.ties) == (0, 1)
    assert result.fraction_member_closer == 0.0
    assert result.p_value == pytest.approx(1.0)


def test_evaluation_accuracy_matches_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 10, 57)
    predicted = np.where(rng.random(57) < 0.6, truth, rng.integers(0, 10, 57))
    assert evaluation_accuracy(predicted, truth) == pytest.approx(
        accuracy_score(truth, predicted), abs=1e-15
    )
    assert evaluation_accuracy([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5


def test_the_evaluator_is_good_on_digits_and_reports_its_held_out_accuracy() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.images[:600, None] / 16.0, digits.target[:600]
    evaluator = fit_evaluator(x, y, seed=0)
    assert (evaluator.train_size, evaluator.held_out_size) == (450, 150)
    assert evaluator.held_out_accuracy > 0.9  # measured 0.95: the evaluator can be trusted
    # The held-out accuracy it reports, recomputed with scikit-learn on the same split.
    from sklearn.model_selection import train_test_split

    _, held_x, _, held_y = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    assert evaluator.held_out_accuracy == accuracy_score(held_y, evaluator.predict(held_x))
    # Digits by other writers, never seen: still far above chance (measured 0.87).
    unseen_x, unseen_y = digits.images[600:900, None] / 16.0, digits.target[600:900]
    assert accuracy_score(unseen_y, evaluator.predict(unseen_x)) > 0.8
    # A shuffled-label evaluator is no better than chance: held-out accuracy is measured.
    shuffled = fit_evaluator(x, np.random.default_rng(0).permutation(y), seed=0)
    assert shuffled.held_out_accuracy < 0.25


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: nearest_distances(np.zeros((2, 3)), np.zeros((4, 3)), [0, 0, 1, 1], [0]),
     "one class each"),
    (lambda: nearest_distances(np.zeros((1, 3)), np.zeros((4, 2)), [0, 0, 1, 1], [0]),
     "shape (3,)"),
    (lambda: nearest_distances(np.zeros((1, 3)), np.zeros((2, 3)), [0, 1], [2]),
     "no example of class 2"),
    (lambda: nearest_distances(np.full((1, 3), np.nan), np.zeros((2, 3)), [0, 1], [0]),
     "`reconstructions` must be finite"),
    (lambda: nearest_distances(np.zeros((1, 3)), np.zeros((2, 3)), [0.5, 1.0], [0]),
     "integer class labels"),
    (lambda: member_vs_nonmember(np.zeros((1, 2)), [1], np.zeros((2, 2)), [0, 1],
                                 np.zeros((2, 2)), [0, 0]), "`nonmembers` has no example"),
    (lambda: member_vs_nonmember(np.zeros((1, 2)), [0], np.zeros((1, 2)), [0],
                                 np.zeros((1, 2)), [0], seed=-1), "`seed`"),
    (lambda: evaluation_accuracy([1, 2], [1]), "equal length"),
    (lambda: sign_test_p_value(5, 4), "`successes`"),
    (lambda: fit_evaluator(np.zeros((6, 2)), [0, 0, 0, 1, 1, 1], seed=0), "at least 4"),
])
def test_bad_inputs_are_one_clear_error(call: object, fragment: str) -> None:
    with pytest.raises(MetricsInputError) as caught:
        call()  # type: ignore[operator]
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_importing_the_inversion_modules_imports_no_heavy_library() -> None:
    code = (
        "import sys, auditml.metrics.inversion, auditml.attacks.inversion, "
        "auditml.figures.inversion_gallery; "
        "print([m for m in ('matplotlib', 'scipy.stats', 'sklearn') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]", result.stdout
