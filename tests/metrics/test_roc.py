"""ROC, AUC, TPR at FPR, advantage: hand cases, naive loops, scikit-learn, scipy, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sklearn_metrics

from auditml.errors import AuditMLError
from auditml.metrics import (
    MetricsInputError,
    advantage,
    check_scores,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
    tpr_at_fprs,
)
from auditml.metrics.roc import check_count

# scikit-learn's classic example: members at 0.35 and 0.8; thresholds inf, 0.8, 0.4, 0.35, 0.1.
SMALL_SCORES = np.array([0.1, 0.4, 0.35, 0.8])
SMALL_MEMBERS = np.array([0, 0, 1, 1])


def gaussian_scores(mu: float, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Members ~ N(mu, 1), non-members ~ N(0, 1), as evenly spaced quantiles (no randomness)."""
    quantiles = stats.norm.ppf((np.arange(per_class) + 0.5) / per_class)
    scores = np.concatenate([quantiles + mu, quantiles])
    is_member = np.concatenate([np.ones(per_class, bool), np.zeros(per_class, bool)])
    return scores, is_member


def random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random scores with heavy ties (few distinct values) or none, and unbalanced classes."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 300))
    member_fraction = rng.choice([0.02, 0.2, 0.5, 0.9])
    is_member = rng.random(size) < member_fraction
    is_member[rng.choice(size, 2, replace=False)] = [True, False]  # both classes present
    distinct = rng.choice([2, 3, 10, 10**9])
    # An integer shift keeps members and non-members tied with each other, not only among
    # themselves; dividing by 7 makes the scores non-integer floats.
    shift = rng.integers(0, 3)
    return (rng.integers(0, distinct, size) + shift * is_member) / 7, is_member


def naive_curve(scores: np.ndarray, is_member: np.ndarray) -> list[tuple[float, float]]:
    """(FPR, TPR) for threshold +inf and each distinct score, by counting."""
    members, nonmembers = scores[is_member], scores[~is_member]
    thresholds = [np.inf, *sorted(set(scores.tolist()), reverse=True)]
    return [(float(np.mean(nonmembers >= t)), float(np.mean(members >= t))) for t in thresholds]


def naive_tpr_at_fpr(scores: np.ndarray, is_member: np.ndarray, fpr: float) -> float:
    return max(tpr for point_fpr, tpr in naive_curve(scores, is_member) if point_fpr <= fpr)


def naive_advantage(scores: np.ndarray, is_member: np.ndarray) -> float:
    return max(tpr - fpr for fpr, tpr in naive_curve(scores, is_member))


def naive_auc(scores: np.ndarray, is_member: np.ndarray) -> float:
    members, nonmembers = scores[is_member], scores[~is_member]
    wins = (members[:, None] > nonmembers[None, :]).sum()
    ties = (members[:, None] == nonmembers[None, :]).sum()
    return (wins + ties / 2) / (len(members) * len(nonmembers))


SEEDS = range(60)


# --- check_scores ---------------------------------------------------------------------------


def test_check_scores_converts_types() -> None:
    scores, is_member = check_scores([1, 2, 3], [1, 0, 1])
    assert scores.dtype == np.float64
    assert is_member.dtype == bool
    np.testing.assert_array_equal(is_member, [True, False, True])
    _, from_floats = check_scores([0.5, 0.1], np.array([0.0, 1.0]))
    np.testing.assert_array_equal(from_floats, [False, True])


@pytest.mark.parametrize(
    ("scores", "is_member", "message"),
    [
        ([0.1, np.nan, np.nan, np.nan, 0.2], [1, 0, 1, 0, 1], "`scores` must be finite, got 3 NaN"),
        ([0.1, np.inf, 0.2], [1, 0, 1], "`scores` must be finite, got 1 infinite"),
        ([0.1, 0.2, 0.3], [1, 0], "`scores` and `is_member` must have the same length, got 3 and"),
        ([[0.1, 0.2], [0.3, 0.4]], [1, 0], "`scores` must be 1-D"),
        ([0.1, 0.2], [[1, 0]], "`is_member` must be 1-D"),
        (0.5, [1], "`scores` must be 1-D"),
        (["a", "b"], [1, 0], "`scores` must be real numbers"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "`is_member` must contain at least one member and one non"),
        ([0.1, 0.2, 0.3], [True, True, True], "got 3 members and 0 non-members"),
        ([], [], "`is_member` must contain at least one member"),
        ([0.1, 0.2, 0.3], [0, 1, 2], "`is_member` must hold booleans or 0/1, got 1 other values"),
        ([0.1, 0.2], [0.5, 1.0], "`is_member` must hold booleans or 0/1"),
        ([0.1, 0.2], [np.nan, 1.0], "`is_member` must hold booleans or 0/1"),
        ([0.1, 0.2], ["yes", "no"], "`is_member` must hold booleans or 0/1, got dtype"),
    ],
)
def test_invalid_inputs_name_the_argument(scores: object, is_member: object, message: str) -> None:
    for function in (check_scores, roc_curve, roc_auc, advantage):
        with pytest.raises(MetricsInputError, match=message.replace("(", r"\(")):
            function(scores, is_member)


def test_error_belongs_to_both_families() -> None:
    with pytest.raises(AuditMLError):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [1, 1])


# --- roc_curve ------------------------------------------------------------------------------


def test_roc_curve_hand_case() -> None:
    curve = roc_curve(SMALL_SCORES, SMALL_MEMBERS)
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(curve.fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(curve.tpr, [0, 0.5, 0.5, 1, 1])


def test_roc_curve_collapses_ties() -> None:
    # Two members and a non-member tied at 2: one diagonal step from (0, 0.5) to (0.5, 1).
    curve = roc_curve([3, 2, 2, 2, 1], [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 3, 2, 1])
    np.testing.assert_allclose(curve.tpr, [0, 1 / 3, 1, 1])
    np.testing.assert_allclose(curve.fpr, [0, 0, 0.5, 1])


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_curve_matches_sklearn(seed: int) -> None:
    scores, is_member = random_case(seed)
    curve = roc_curve(scores, is_member)
    fpr, tpr, thresholds = sklearn_metrics.roc_curve(is_member, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve.tpr, tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(curve.thresholds[1:], thresholds[1:])
    assert curve.thresholds[0] == np.inf
    assert np.all(np.diff(curve.thresholds) < 0)
    assert (curve.fpr[-1], curve.tpr[-1]) == (1.0, 1.0)


# --- roc_auc --------------------------------------------------------------------------------


def test_roc_auc_hand_case_thirteen_sixteenths() -> None:
    # Member 0.9 and 0.8 beat all 4 non-members, 0.6 beats 3, 0.3 beats 2: 13 of 16 pairs.
    members = [0.9, 0.8, 0.6, 0.3]
    nonmembers = [0.7, 0.5, 0.2, 0.1]
    assert roc_auc(members + nonmembers, [1] * 4 + [0] * 4) == 13 / 16


def test_roc_auc_counts_ties_as_half() -> None:
    # Pairs (1 vs 1) = 1/2, (1 vs 0) = 1, (2 vs 1) = 1, (2 vs 0) = 1: 3.5 of 4.
    assert roc_auc([1, 2, 1, 0], [1, 1, 0, 0]) == 7 / 8
    assert roc_auc([5, 5, 5], [1, 0, 1]) == 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_sklearn_and_mann_whitney(seed: int) -> None:
    scores, is_member = random_case(seed)
    auc = roc_auc(scores, is_member)
    assert auc == pytest.approx(sklearn_metrics.roc_auc_score(is_member, scores), abs=1e-12)
    assert auc == pytest.approx(naive_auc(scores, is_member), abs=1e-12)
    u_statistic = stats.mannwhitneyu(scores[is_member], scores[~is_member]).statistic
    assert auc == pytest.approx(u_statistic / (is_member.sum() * (~is_member).sum()), abs=1e-12)


@pytest.mark.parametrize("mu", [0.25, 1.0, 2.0])
def test_roc_auc_gaussian_closed_form(mu: float) -> None:
    scores, is_member = gaussian_scores(mu, 2000)
    assert roc_auc(scores, is_member) == pytest.approx(stats.norm.cdf(mu / np.sqrt(2)), abs=2e-3)


def test_roc_auc_of_negated_scores_is_complement() -> None:
    scores, is_member = random_case(7)
    assert roc_auc(-scores, is_member) == pytest.approx(1 - roc_auc(scores, is_member), abs=1e-12)


# --- tpr_at_fpr -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fpr", "expected"), [(0.0, 0.5), (0.49, 0.5), (0.5, 1.0), (1.0, 1.0)])
def test_tpr_at_fpr_hand_case(fpr: float, expected: float) -> None:
    assert tpr_at_fpr(SMALL_SCORES, SMALL_MEMBERS, fpr) == expected


def test_tpr_at_fpr_below_one_over_nonmembers() -> None:
    # 5 non-members, highest at 10; members strictly above 10: 11, 12, 20 (10 itself is tied).
    nonmembers = [0, 1, 2, 3, 10]
    members = [5, 10, 11, 12, 20]
    scores = np.array(nonmembers + members, dtype=float)
    is_member = np.array([0] * 5 + [1] * 5)
    assert tpr_at_fpr(scores, is_member, 0.1) == 3 / 5
    assert tpr_at_fpr(scores, is_member, 0.0) == 3 / 5
    # One false positive allowed: threshold 5 admits non-member 10 and every member.
    assert tpr_at_fpr(scores, is_member, 0.2) == 1.0


def test_tpr_at_fpr_is_zero_when_top_score_is_a_nonmember() -> None:
    assert tpr_at_fpr([3.0, 2.0, 1.0], [0, 1, 1], 0.001) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_tpr_at_fprs_matches_naive_loop(seed: int) -> None:
    scores, is_member = random_case(seed)
    nonmembers = int((~is_member).sum())
    fprs = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 1 / nonmembers, min(1.0, 2 / nonmembers)]
    expected = [naive_tpr_at_fpr(scores, is_member, fpr) for fpr in fprs]
    np.testing.assert_allclose(tpr_at_fprs(scores, is_member, fprs), expected, rtol=0, atol=1e-12)
    for fpr, tpr in zip(fprs, expected, strict=True):
        assert tpr_at_fpr(scores, is_member, fpr) == pytest.approx(tpr, abs=1e-12)


def test_tpr_at_fprs_shapes_and_types() -> None:
    result = tpr_at_fprs(SMALL_SCORES, SMALL_MEMBERS, (0.5, 0.0))
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, [1.0, 0.5])
    assert tpr_at_fprs(SMALL_SCORES, SMALL_MEMBERS, []).shape == (0,)
    assert isinstance(tpr_at_fpr(SMALL_SCORES, SMALL_MEMBERS, 0.5), float)


@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan])
def test_bad_fpr_names_the_argument(bad: float) -> None:
    with pytest.raises(MetricsInputError, match=r"`fpr` must be in \[0, 1\], got"):
        tpr_at_fpr(SMALL_SCORES, SMALL_MEMBERS, bad)
    with pytest.raises(MetricsInputError, match=r"`fprs` must be in \[0, 1\], got"):
        tpr_at_fprs(SMALL_SCORES, SMALL_MEMBERS, [0.1, bad])


def test_fpr_shape_is_checked() -> None:
    with pytest.raises(MetricsInputError, match="`fpr` must be a number"):
        tpr_at_fpr(SMALL_SCORES, SMALL_MEMBERS, [0.1, 0.2])  # type: ignore[arg-type]
    with pytest.raises(MetricsInputError, match="`fprs` must be a 1-D sequence"):
        tpr_at_fprs(SMALL_SCORES, SMALL_MEMBERS, 0.1)  # type: ignore[arg-type]
    with pytest.raises(MetricsInputError, match="`fprs` must be a 1-D sequence"):
        tpr_at_fprs(SMALL_SCORES, SMALL_MEMBERS, ["low"])  # type: ignore[list-item]


@pytest.mark.parametrize("mu", [1.0, 3.0])
def test_tpr_at_fpr_gaussian_closed_form(mu: float) -> None:
    # TPR at FPR alpha for N(mu, 1) vs N(0, 1): 1 - Phi(Phi^-1(1 - alpha) - mu).
    scores, is_member = gaussian_scores(mu, 20000)
    fprs = np.array([0.001, 0.01, 0.1])
    expected = stats.norm.sf(stats.norm.isf(fprs) - mu)
    np.testing.assert_allclose(tpr_at_fprs(scores, is_member, fprs), expected, atol=5e-3)


# --- advantage ------------------------------------------------------------------------------


def test_advantage_hand_cases() -> None:
    assert advantage(SMALL_SCORES, SMALL_MEMBERS) == 0.5
    assert advantage([2.0, 3.0, 0.0, 1.0], [1, 1, 0, 0]) == 1.0  # perfectly separated
    assert advantage([0.0, 1.0, 2.0, 3.0], [1, 1, 0, 0]) == 0.0  # reversed: never below 0
    assert advantage([4.0, 4.0, 4.0], [1, 0, 0]) == 0.0  # all tied


@pytest.mark.parametrize("seed", SEEDS)
def test_advantage_matches_naive_loop_and_ks_statistic(seed: int) -> None:
    scores, is_member = random_case(seed)
    value = advantage(scores, is_member)
    assert value == pytest.approx(naive_advantage(scores, is_member), abs=1e-12)
    # TPR(t) - FPR(t) = F_nonmember(t-) - F_member(t-): the one-sided two-sample KS distance.
    ks = stats.ks_2samp(
        scores[~is_member], scores[is_member], alternative="greater", method="asymp"
    )
    assert value == pytest.approx(ks.statistic, abs=1e-12)
    # And from scikit-learn's curve, which includes the (0, 0) corner: never below 0.
    fpr, tpr, _ = sklearn_metrics.roc_curve(is_member, scores, drop_intermediate=False)
    assert value == pytest.approx(np.max(tpr - fpr), abs=1e-12)


@pytest.mark.parametrize("mu", [0.25, 1.0, 2.0])
def test_advantage_gaussian_closed_form(mu: float) -> None:
    # max_t Phi(t) - Phi(t - mu) is at t = mu / 2: 2 Phi(mu / 2) - 1.
    scores, is_member = gaussian_scores(mu, 2000)
    assert advantage(scores, is_member) == pytest.approx(2 * stats.norm.cdf(mu / 2) - 1, abs=2e-3)


# --- invariances ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_invariant_to_increasing_transforms_and_permutation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    is_member = rng.random(400) < 0.3
    is_member[:2] = [True, False]
    # Rounded so that ties occur; small enough for the transforms to stay strictly increasing.
    scores = np.round(rng.normal(size=400) + is_member, 1)
    fprs = [0.0, 0.01, 0.1, 0.5]
    reference = (
        roc_auc(scores, is_member),
        advantage(scores, is_member),
        tpr_at_fprs(scores, is_member, fprs),
        roc_curve(scores, is_member),
    )
    permutation = rng.permutation(len(scores))
    variants = [
        (np.exp(scores), is_member),
        (3 * scores - 7, is_member),
        (np.arctan(scores), is_member),
        (scores[permutation], is_member[permutation]),
    ]
    for transformed, members in variants:
        assert roc_auc(transformed, members) == pytest.approx(reference[0], abs=1e-12)
        assert advantage(transformed, members) == pytest.approx(reference[1], abs=1e-12)
        np.testing.assert_allclose(tpr_at_fprs(transformed, members, fprs), reference[2])
        curve = roc_curve(transformed, members)
        np.testing.assert_allclose(curve.fpr, reference[3].fpr)
        np.testing.assert_allclose(curve.tpr, reference[3].tpr)


# --- scale ----------------------------------------------------------------------------------


def test_million_scores() -> None:
    rng = np.random.default_rng(0)
    is_member = rng.random(10**6) < 0.5
    scores = rng.normal(size=10**6) + 0.5 * is_member
    # Heavy ties too: a tenth of the scores share one value.
    scores[rng.random(10**6) < 0.1] = 0.0
    assert roc_auc(scores, is_member) == pytest.approx(
        sklearn_metrics.roc_auc_score(is_member, scores), abs=1e-12
    )
    fprs = [0.0001, 0.001, 0.01, 0.1]
    fpr, tpr, _ = sklearn_metrics.roc_curve(is_member, scores, drop_intermediate=False)
    expected = [tpr[fpr <= target].max() for target in fprs]
    np.testing.assert_allclose(tpr_at_fprs(scores, is_member, fprs), expected, rtol=0, atol=1e-12)


# --- check_count: the one validator of counts in auditml.metrics ---------------------------


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (0, {}, "`n` must be a positive integer, got 0."),
        (True, {}, "`n` must be a positive integer, got True."),
        (np.bool_(True), {}, "`n` must be a positive integer, got np.True_."),
        (3.0, {}, "`n` must be a positive integer, got 3.0."),
        ("3", {}, "`n` must be a positive integer, got '3'."),
        (np.int64(-2), {}, "`n` must be a positive integer, got -2."),
        (1, {"minimum": 2}, "`n` must be an integer >= 2, got 1."),
        (5, {"minimum": 0, "maximum": 4, "why": " (at most `k`)"},
         "`n` must be an integer in [0, 4] (at most `k`), got 5."),
        (-1, {"minimum": 0, "maximum": 4}, "`n` must be an integer in [0, 4], got -1."),
    ],
)
def test_check_count_refuses(value: object, kwargs: dict, message: str) -> None:
    with pytest.raises(MetricsInputError) as caught:
        check_count(value, "n", **kwargs)
    assert str(caught.value) == message


def test_check_count_accepts_and_names_with_backticks() -> None:
    assert check_count(np.int32(7), "n") == 7 and type(check_count(np.int32(7), "n")) is int
    assert check_count(0, "n", minimum=0, maximum=0) == 0
    with pytest.raises(MetricsInputError, match=r"^`history\[0\]`'s steps must be a positive"):
        check_count(0, "`history[0]`'s steps")
