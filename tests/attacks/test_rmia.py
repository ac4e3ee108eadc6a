from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget, MissingResourceError, NotFittedError
from auditml.attacks.rmia import (
    DEFAULT_TEMPERATURE,
    FALLBACK_OFFLINE_A,
    OFFLINE_A_CANDIDATES,
    RmiaAttack,
    RmiaSettings,
    choose_mode,
    rmia_scores,
    true_class_probs,
    tune_offline_a,
)
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError
from auditml.metrics import roc_auc, tpr_at_fpr, tpr_at_fprs
from auditml.models import predict_logits
from auditml.training.reference import ReferenceModels, paired_keep
from toy_models import fit

# ---------------------------------------------------------------------------------------------
# The naive implementation: every pair (x, z), the paper's ratio LR(x) / LR(z) > γ.


def naive_rmia(
    target_x: np.ndarray, reference_x: np.ndarray, keep: np.ndarray, target_z: np.ndarray,
    reference_z: np.ndarray, mode: str, a: float | None, gamma: float,
) -> np.ndarray:
    models, examples = reference_x.shape

    def marginal(mean_out: float) -> float:
        assert a is not None
        return ((1 + a) * mean_out + (1 - a)) / 2

    lr_x = []
    for i in range(examples):
        if mode == "online":
            pr_x = sum(reference_x[k, i] for k in range(models)) / models
        else:
            outs = [reference_x[k, i] for k in range(models) if not keep[k, i]]
            if outs:
                mean_out = sum(outs) / len(outs)
            else:
                assert a is not None
                mean_in = sum(reference_x[:, i]) / models
                slope = a if a > 0 else 0.3  # a = 0 cannot be inverted; 0.3 stands in
                mean_out = min(max((mean_in - (1 - slope)) / slope, 0.0), 1.0)
            pr_x = marginal(mean_out)
        lr_x.append(target_x[i] / pr_x)
    lr_z = []
    for j in range(len(target_z)):
        mean = sum(reference_z[k, j] for k in range(models)) / models
        lr_z.append(target_z[j] / (mean if mode == "online" else marginal(mean)))
    pairs = np.array([[x / z > gamma for z in lr_z] for x in lr_x])  # the full N × Z matrix
    return pairs.mean(axis=1)


def _probs(models: int, examples: int, population: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0.01, 1.0, examples),
        rng.uniform(0.01, 1.0, (models, examples)),
        rng.uniform(0.01, 1.0, population),
        rng.uniform(0.01, 1.0, (models, population)),
    )


# ---------------------------------------------------------------------------------------------
# The pure function


def test_hand_computed_example() -> None:
    # Every reference probability 1/2, so Pr(x) = Pr(z) = 1/2 online and LR = 2·Pr(·|θ).
    target_x = np.array([0.375, 0.75])  # LR 0.75, 1.5
    target_z = np.array([0.125, 0.375, 0.5, 0.75])  # LR 0.25, 0.75, 1, 1.5
    reference_x, reference_z = np.full((2, 2), 0.5), np.full((2, 4), 0.5)
    keep = np.array([[True, False], [False, True]])
    args = (target_x, reference_x, keep, target_z, reference_z)
    # γ = 1: x0 beats only 0.25 (its tie with 0.75 is no win); x1 beats 0.25, 0.75 and 1.
    paper = functools.partial(rmia_scores, break_ties=False)
    np.testing.assert_array_equal(paper(*args, mode="online", a=None, gamma=1.0), [0.25, 0.75])
    # γ = 1/2: x0 beats every z with LR(z) < 1.5 (three), x1 every z with LR(z) < 3 (all).
    np.testing.assert_array_equal(paper(*args, mode="online", a=None, gamma=0.5), [0.75, 1.0])
    # Offline with a = 1/2: Pr = ½(1.5·½ + ½) = 5/8 for every x and z: the same ratios.
    np.testing.assert_array_equal(paper(*args, mode="offline", a=0.5, gamma=1.0), [0.25, 0.75])
    # Ties broken (the default): (wins + rank / (N + 1)) / (|Z| + 1), ranks 1 and 2 of LR(x).
    np.testing.assert_allclose(rmia_scores(*args, mode="online", a=None, gamma=1.0),
                               [(1 + 1 / 3) / 5, (3 + 2 / 3) / 5])


@pytest.mark.parametrize("models", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(
    ("mode", "a"), [("online", None), ("offline", 0.0), ("offline", 0.3), ("offline", 1.0)]
)
@pytest.mark.parametrize("gamma", [1.0, 0.5, 2.0, 1.3])
def test_matches_the_pairwise_loop(models: int, mode: str, a: float | None, gamma: float) -> None:
    keep = paired_keep(models, 13, seed=5)
    target_x, reference_x, target_z, reference_z = _probs(models, 13, 17, seed=models)
    np.testing.assert_array_equal(
        rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode=mode, a=a,
                    gamma=gamma, break_ties=False),
        naive_rmia(target_x, reference_x, keep, target_z, reference_z, mode, a, gamma),
    )


@pytest.mark.parametrize(
    ("mode", "a"), [("online", None), ("offline", 0.0), ("offline", 0.5), ("offline", 1.0)]
)
@pytest.mark.parametrize("gamma", [1.0, 2.0, 0.5])
def test_matches_the_pairwise_loop_with_ties(mode: str, a: float | None, gamma: float) -> None:
    # Few distinct dyadic values, so many LR(x) / LR(z) are exactly 1, 2 or 1/2.
    rng = np.random.default_rng(9)
    levels = np.array([0.125, 0.25, 0.5, 0.75, 1.0])
    target_x, target_z = rng.choice(levels, 30), rng.choice(levels, 25)
    reference_x = np.full((3, 30), 0.5)
    reference_z = np.full((3, 25), 0.5)
    keep = np.zeros((3, 30), bool)
    keep[:, :5] = True  # the first five examples have no OUT model
    keep[0, 5:15] = True
    args = (target_x, reference_x, keep, target_z, reference_z)
    expected = naive_rmia(*args, mode, a, gamma)
    got = rmia_scores(*args, mode=mode, a=a, gamma=gamma, break_ties=False)
    np.testing.assert_array_equal(got, expected)
    ratios = np.divide.outer(target_x, target_z)
    assert (ratios == gamma).any()  # ties were really exercised


@pytest.mark.parametrize(
    ("a", "marginal"),
    # Pr_OUT = (0.875 − (1 − a)) / a clipped to [0, 1] (a = 0.3 in place of 0), then
    # Pr = ½((1 + a)·Pr_OUT + 1 − a):
    [(1.0, 0.875), (0.5, 0.8125), (0.1, 0.45), (0.0, ((0.875 - 0.7) / 0.3 + 1) / 2)],
)
def test_examples_without_out_models_invert_the_approximation(a: float, marginal: float) -> None:
    # One reference model, IN for example 0 (probability 0.875), OUT for example 1.
    keep = np.array([[True, False]])
    reference_x = np.array([[0.875, 0.25]])
    target_x = np.array([0.8125, 0.5])
    target_z = np.linspace(0.05, 1.0, 20)
    reference_z = np.full((1, 20), 0.5)
    marginal_z = ((1 + a) * 0.5 + 1 - a) / 2
    expected = np.mean(target_x[0] / marginal > target_z / marginal_z)
    scores = rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode="offline", a=a,
                         gamma=1.0, break_ties=False)
    assert scores[0] == expected


def test_input_checks() -> None:
    target_x, reference_x, target_z, reference_z = _probs(2, 4, 3, seed=0)
    keep = paired_keep(2, 4, seed=0)
    with pytest.raises(AuditMLError, match="`a` must be in"):
        rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode="offline", a=None,
                    gamma=1.0)
    with pytest.raises(AuditMLError, match="`gamma` must be"):
        rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode="online", a=None,
                    gamma=0.0)
    with pytest.raises(AuditMLError, match="`target_prob_x` must hold probabilities"):
        rmia_scores(target_x + 1, reference_x, keep, target_z, reference_z, mode="online",
                    a=None, gamma=1.0)
    with pytest.raises(AuditMLError, match="`keep` must be"):
        rmia_scores(target_x, reference_x, keep[:, :3], target_z, reference_z, mode="online",
                    a=None, gamma=1.0)
    with pytest.raises(MissingResourceError, match="population"):
        rmia_scores(target_x, reference_x, keep, target_z[:0], reference_z[:, :0],
                    mode="online", a=None, gamma=1.0)


def test_memory_is_bounded() -> None:
    # An N × Z float64 matrix would take 3.2 GB; the sorted search needs a few MB.
    examples = population = 20_000
    target_x, reference_x, target_z, reference_z = _probs(4, examples, population, seed=1)
    scores = rmia_scores(target_x, reference_x, paired_keep(4, examples, seed=1), target_z,
                         reference_z, mode="offline", a=0.3, gamma=1.0)
    assert scores.shape == (examples,) and ((scores >= 0) & (scores <= 1)).all()


# ---------------------------------------------------------------------------------------------
# Choosing a


def _planted(seed: int, shift: float, models: int = 8) -> tuple[np.ndarray, ...]:
    """Per-example difficulty in logit space; IN models and the target's members shifted up."""
    rng = np.random.default_rng(seed)
    examples, population = 1000, 1000
    keep = paired_keep(models, examples, seed=seed)
    is_member = rng.permutation(examples) < examples // 2
    difficulty_x = rng.normal(0.0, 2.0, examples)
    difficulty_z = rng.normal(0.0, 2.0, population)
    reference_x = expit(difficulty_x + shift * keep + rng.normal(size=(models, examples)))
    target_x = expit(difficulty_x + shift * is_member + rng.normal(size=examples))
    reference_z = expit(difficulty_z + rng.normal(size=(models, population)))
    target_z = expit(difficulty_z + rng.normal(size=population))
    return target_x, reference_x, keep, target_z, reference_z, is_member


def test_tuning_picks_the_best_candidate() -> None:
    _, reference_x, keep, _, reference_z, _ = _planted(seed=3, shift=3.0)
    tuning = tune_offline_a(reference_x, keep, reference_z)
    assert tuning.played_model == 0
    assert list(tuning.auc_by_a) == list(OFFLINE_A_CANDIDATES)
    assert tuning.a in OFFLINE_A_CANDIDATES
    assert tuning.auc_by_a[tuning.a] == max(tuning.auc_by_a.values())
    # The played model's complementary partner (model 1) is never one of its references, so
    # changing model 1's probabilities leaves the tuning unchanged.
    changed = reference_x.copy()
    changed[1] = 0.5
    assert tune_offline_a(changed, keep, reference_z) == tuning


def test_tuning_falls_back_without_spare_models() -> None:
    _, reference_x, keep, _, reference_z, _ = _planted(seed=3, shift=3.0, models=2)
    tuning = tune_offline_a(reference_x, keep, reference_z)
    assert tuning.a == FALLBACK_OFFLINE_A and tuning.played_model is None and not tuning.auc_by_a
    single = tune_offline_a(reference_x[:1], keep[:1], reference_z[:1])
    assert single.a == FALLBACK_OFFLINE_A


# ---------------------------------------------------------------------------------------------
# Soundness on planted memorisation and under the null


@pytest.mark.parametrize(("mode", "a"), [("online", None), ("offline", None), ("offline", 0.0),
                                         ("offline", 0.5)])
def test_planted_members_rank_on_top(mode: str, a: float | None) -> None:
    target_x, reference_x, keep, target_z, reference_z, is_member = _planted(seed=4, shift=4.0)
    if mode == "offline" and a is None:
        a = tune_offline_a(reference_x, keep, reference_z).a
    scores = rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode=mode, a=a,
                         gamma=1.0)
    assert roc_auc(scores, is_member) > 0.9


@pytest.mark.parametrize(("mode", "a", "gamma"),
                         [("online", None, 1.0), ("offline", 0.3, 1.0), ("offline", 0.3, 2.0),
                          ("offline", 1.0, 0.5)])
def test_null_auc_is_chance(mode: str, a: float | None, gamma: float) -> None:
    # The target saw neither set: its probabilities come from the OUT distribution.
    rng = np.random.default_rng(5)
    examples = population = 2000
    models = 8
    keep = paired_keep(models, examples, seed=5)
    difficulty_x = rng.normal(0.0, 2.0, examples)
    difficulty_z = rng.normal(0.0, 2.0, population)
    reference_x = expit(difficulty_x + 3.0 * keep + rng.normal(size=(models, examples)))
    target_x = expit(difficulty_x + rng.normal(size=examples))
    reference_z = expit(difficulty_z + rng.normal(size=(models, population)))
    target_z = expit(difficulty_z + rng.normal(size=population))
    is_member = rng.permutation(examples) < examples // 2
    scores = rmia_scores(target_x, reference_x, keep, target_z, reference_z, mode=mode, a=a,
                         gamma=gamma)
    auc = roc_auc(scores, is_member)
    n1 = n2 = examples // 2
    assert abs(auc - 0.5) < 4 * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


# ---------------------------------------------------------------------------------------------
# End to end on tiny torch models


def _train(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 16), nn.ReLU(), nn.Linear(16, 3))
    return fit(model, x, y, lr=0.05, steps=60)


@functools.cache
def _target(models: int = 4) -> AuditTarget:
    """Trained once per model count and shared: attacks only read the models."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 6)).astype(np.float32)
    y = rng.integers(0, 3, 70).astype(np.int64)
    keep = paired_keep(models, 40, seed=0)
    reference = ReferenceModels(
        [_train(x[:40][keep[k]], y[:40][keep[k]], seed=k + 1) for k in range(models)],
        keep,
        torch.device("cpu"),
    )
    return AuditTarget(
        model=_train(x[:20], y[:20], seed=0),
        examples=ArrayDataset(x[:40], y[:40]),
        num_classes=3,
        device=torch.device("cpu"),
        seed=0,
        population=ArrayDataset(x[40:], y[40:]),
        reference=reference,
    )


@pytest.mark.parametrize("models", [1, 2, 4])
@pytest.mark.parametrize(
    "settings", [{}, {"a": 0.5}, {"mode": "online"}, {"gamma": 2.0}, {"a": 0.0, "gamma": 0.5}]
)
def test_end_to_end_scores(models: int, settings: dict[str, object]) -> None:
    attack = ATTACKS.get("mia_rmia")(**settings)
    scores = attack.fit(_target(models)).score()
    assert scores.shape == (40,) and scores.dtype == np.float64
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()


def test_offline_a_is_reported() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        _ = RmiaAttack().offline_a
    tuned = RmiaAttack(mode="offline").fit(_target(4))
    assert tuned.offline_a in OFFLINE_A_CANDIDATES
    assert tuned.offline_a_tuning is not None and tuned.offline_a_tuning.played_model == 0
    assert RmiaAttack(mode="offline").fit(_target(2)).offline_a == FALLBACK_OFFLINE_A
    given = RmiaAttack(a=0.7).fit(_target(4))
    assert given.offline_a == 0.7 and given.offline_a_tuning is None
    online = RmiaAttack(mode="online").fit(_target(4))
    assert online.offline_a is None


def test_true_class_probs_broadcast_over_models() -> None:
    logits = np.array([[[0.0, 0.0], [2.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])  # (2, 2, 2)
    probs = true_class_probs(logits, np.array([0, 1]))
    np.testing.assert_allclose(probs, [[0.5, 1 / (1 + math.e**2)], [0.5, 0.5]])


def test_settings_checked() -> None:
    # Unknown keys, missing resources, fit-before-score: tests/attacks/test_contract.py.
    assert ATTACKS.get("mia_rmia") is RmiaAttack
    assert RmiaAttack().settings() == {
        "mode": "auto", "a": None, "gamma": 1.0, "temperature": DEFAULT_TEMPERATURE
    }
    with pytest.raises(ConfigError, match=r"mia_rmia: a=1\.5"):
        RmiaAttack(a=1.5)
    with pytest.raises(ConfigError, match="mia_rmia: gamma=0"):
        RmiaAttack(gamma=0)
    with pytest.raises(ConfigError, match=r"mia_rmia: a=0\.3: .*only with mode='offline'"):
        RmiaAttack(mode="online", a=0.3)


# ---------------------------------------------------------------------------------------------
# Ties at the top, and the defaults (auditml issue 30)


def _saturated() -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Reference signals where γ = 1 saturates: 40 examples, 3 of them non-members, have a
    likelihood ratio above every population example's, so the paper's fraction gives all 40
    exactly 1.0."""
    rng = np.random.default_rng(11)
    examples, population, models = 1000, 500, 4
    keep = paired_keep(models, examples, seed=11)
    reference_x = rng.uniform(0.2, 0.6, (models, examples))
    reference_z = rng.uniform(0.2, 0.6, (models, population))
    target_z = reference_z.mean(axis=0) * rng.uniform(0.5, 1.5, population)  # LR(z) <= 1.5
    is_member = np.arange(examples) < examples // 2
    lr_x = rng.uniform(0.3, 1.4, examples)
    top = np.r_[np.arange(37), examples // 2 + np.arange(3)]  # 37 members, 3 non-members
    lr_x[top] = np.linspace(1.6, 1.9, 40)[rng.permutation(40)]
    target_x = lr_x * reference_x.mean(axis=0)
    return (target_x, reference_x, keep, target_z, reference_z), is_member


def test_default_scores_do_not_tie_at_the_top() -> None:
    args, is_member = _saturated()
    paper = rmia_scores(*args, mode="online", a=None, gamma=1.0, break_ties=False)
    tied = paper == paper.max()
    assert paper.max() == 1.0 and tied.sum() == 40 and (tied & ~is_member).sum() == 3
    assert tpr_at_fpr(paper, is_member, 0.001) == 0.0  # the tie holds a non-member
    settings = RmiaSettings()
    scores = rmia_scores(*args, mode="online", a=None, gamma=settings.gamma)
    assert (scores == scores.max()).sum() == 1
    # Inside the saturated group the order is that of LR(x): members above the first
    # non-member are found at 0.1 % FPR.
    order = np.argsort(args[0] / args[1].mean(axis=0))
    assert (np.diff(scores[order]) > 0).all()
    lr_top = args[0][tied] / args[1].mean(axis=0)[tied]
    above = (lr_top[is_member[tied]] > lr_top[~is_member[tied]].max()).sum()
    assert tpr_at_fpr(scores, is_member, 0.001) == above / 500 > 0


@pytest.mark.parametrize(("mode", "a"), [("online", None), ("offline", 0.3)])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_tie_break_keeps_the_wins_and_never_lowers_the_tpr(
    mode: str, a: float | None, gamma: float
) -> None:
    target_x, reference_x, keep, target_z, reference_z, is_member = _planted(seed=6, shift=2.0)
    args = (target_x, reference_x, keep, target_z, reference_z)
    paper = rmia_scores(*args, mode=mode, a=a, gamma=gamma, break_ties=False)
    broken = rmia_scores(*args, mode=mode, a=a, gamma=gamma)
    population = len(target_z)
    np.testing.assert_array_equal(np.floor(broken * (population + 1)), paper * population)
    assert ((broken > 0) & (broken < 1)).all()
    # The broken order refines the paper's: never reversed, and ties only where LR(x) ties.
    earlier = paper[:, None] > paper[None, :]
    assert (broken[:, None] > broken[None, :])[earlier].all()
    assert len(np.unique(broken)) == len(broken)  # continuous signals: no LR(x) ties
    fprs = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5]
    assert (tpr_at_fprs(broken, is_member, fprs) >= tpr_at_fprs(paper, is_member, fprs)).all()


def test_mode_is_chosen_by_the_reference_models() -> None:
    paired = paired_keep(2, 10, seed=0)
    assert choose_mode("auto", paired)[0] == "online"
    assert choose_mode("auto", paired[:1])[0] == "offline"  # one model: IN or OUT, not both
    assert choose_mode("auto", paired, a=0.5)[0] == "offline"
    assert choose_mode("offline", paired) == ("offline", "as configured")
    assert RmiaAttack().fit(_target(4)).mode == "online"
    single = RmiaAttack().fit(_target(1))
    assert single.mode == "offline" and single.fitted_values()["mode"] == "offline"
    assert single.fitted_values()["a_source"] == "fallback"
    assert RmiaAttack().fit(_target(2)).fitted_values()["mode_reason"].startswith("auto")


@pytest.mark.parametrize("temperature", [1.0, DEFAULT_TEMPERATURE, 5.0])
def test_temperature_softens_the_signal(temperature: float) -> None:
    target = _target(4)
    attack = RmiaAttack(mode="online", temperature=temperature).fit(target)
    population = target.population
    assert population is not None and target.reference is not None
    probs = true_class_probs
    expected = rmia_scores(
        probs(target.logits() / temperature, target.examples.y),
        probs(target.reference.logits(target.examples.x) / temperature, target.examples.y),
        target.reference.keep,
        probs(predict_logits(target.model, population.x) / temperature, population.y),
        probs(target.reference.logits(population.x) / temperature, population.y),
        mode="online", a=None, gamma=1.0,
    )
    np.testing.assert_allclose(attack.score(), expected)
