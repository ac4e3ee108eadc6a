from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget, MissingResourceError
from auditml.attacks import lira as lira_module
from auditml.attacks.lira import (
    MIN_STD,
    LiraAttack,
    augment,
    augmentation_copies,
    lira_scores,
)
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError
from auditml.metrics import roc_auc
from auditml.training.reference import ReferenceModels, paired_keep
from toy_models import fit

# ---------------------------------------------------------------------------------------------
# A straightforward per-example loop, written from the module docstring's definitions.


def _side(values_by_example: list[list[float]], variance: str) -> tuple[list[float], list[float]]:
    everything = [v for values in values_by_example for v in values]
    global_mean = sum(everything) / len(everything)
    means = [sum(vs) / len(vs) if vs else global_mean for vs in values_by_example]
    degrees = sum(len(vs) - 1 for vs in values_by_example if len(vs) >= 2)
    if degrees > 0:
        pooled = sum(
            (v - m) ** 2 for vs, m in zip(values_by_example, means, strict=True) for v in vs
        ) / degrees
    else:
        pooled = sum((v - global_mean) ** 2 for v in everything) / max(len(everything) - 1, 1)
    fixed = max(math.sqrt(pooled), MIN_STD)
    stds = []
    for vs, m in zip(values_by_example, means, strict=True):
        if variance == "per_example" and len(vs) >= 2:
            stds.append(max(math.sqrt(sum((v - m) ** 2 for v in vs) / (len(vs) - 1)), MIN_STD))
        else:
            stds.append(fixed)
    return means, stds


def naive_lira(
    target: np.ndarray, reference: np.ndarray, keep: np.ndarray, mode: str, variance: str
) -> np.ndarray:
    copies, models, examples = reference.shape
    scores = np.zeros(examples)
    for a in range(copies):
        ins = [[reference[a, k, i] for k in range(models) if keep[k, i]] for i in range(examples)]
        outs = [
            [reference[a, k, i] for k in range(models) if not keep[k, i]] for i in range(examples)
        ]
        mean_out, std_out = _side(outs, variance)
        if mode == "online":
            mean_in, std_in = _side(ins, variance)
        for i in range(examples):
            t = target[a, i]
            if mode == "online":
                value = norm.logpdf(t, mean_in[i], std_in[i]) - norm.logpdf(
                    t, mean_out[i], std_out[i]
                )
            else:
                value = -norm.logsf(t, mean_out[i], std_out[i])
            scores[i] += value / copies
    return scores


def _signals(
    copies: int, models: int, examples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(copies, examples)), rng.normal(size=(copies, models, examples))


# ---------------------------------------------------------------------------------------------
# The pure function


def test_hand_computed_example() -> None:
    # One example; IN signals 1 and 3 (mean 2, unbiased variance 2), OUT −1 and 1 (mean 0, 2).
    keep = np.array([[True], [True], [False], [False]])
    reference = np.array([[[1.0], [3.0], [-1.0], [1.0]]])
    target = np.array([[2.0]])
    # log N(2; 2, 2) − log N(2; 0, 2) = (2 − 0)² / (2·2) = 1.
    online = lira_scores(target, reference, keep, mode="online", variance="per_example")
    assert online == pytest.approx([1.0], abs=1e-12)
    offline = lira_scores(target, reference, keep, mode="offline", variance="per_example")
    assert offline == pytest.approx([-math.log(norm.sf(2 / math.sqrt(2)))], rel=1e-12)


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("variance", ["per_example", "fixed"])
@pytest.mark.parametrize(("models", "copies"), [(1, 1), (2, 1), (3, 2), (5, 1), (8, 3)])
def test_matches_the_loop_on_paired_keep(mode: str, variance: str, models: int,
                                         copies: int) -> None:
    keep = paired_keep(models, 11, seed=3)
    target, reference = _signals(copies, models, 11, seed=models)
    np.testing.assert_allclose(
        lira_scores(target, reference, keep, mode=mode, variance=variance),
        naive_lira(target, reference, keep, mode, variance),
        rtol=1e-10, atol=1e-10,
    )


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("variance", ["per_example", "fixed"])
def test_matches_the_loop_with_missing_sides(mode: str, variance: str) -> None:
    # Example 0 has no OUT model, example 1 no IN model, example 2 one of each, the rest mixed.
    keep = np.array([
        [True, False, True, True, False, True],
        [True, False, False, True, False, False],
        [True, False, False, False, True, True],
    ])
    target, reference = _signals(2, 3, 6, seed=11)
    expected = naive_lira(target, reference, keep, mode, variance)
    got = lira_scores(target, reference, keep, mode=mode, variance=variance)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
    assert np.isfinite(got).all()


def test_identical_signals_hit_the_floor_not_zero() -> None:
    keep = paired_keep(4, 5, seed=0)
    reference = np.zeros((1, 4, 5))
    scores = lira_scores(np.zeros((1, 5)), reference, keep, mode="online", variance="per_example")
    np.testing.assert_allclose(scores, 0.0)
    shifted = lira_scores(np.full((1, 5), 1e-3), reference, keep, mode="offline",
                          variance="fixed")
    assert np.isfinite(shifted).all() and (shifted > -math.log(0.5)).all()


def test_input_checks() -> None:
    target, reference = _signals(1, 2, 4, seed=0)
    keep = paired_keep(2, 4, seed=0)
    with pytest.raises(AuditMLError, match="`keep` must be"):
        lira_scores(target, reference, keep[:, :3], mode="online", variance="fixed")
    with pytest.raises(AuditMLError, match="`reference_signal` must be"):
        lira_scores(target, reference[0], keep, mode="online", variance="fixed")
    with pytest.raises(MissingResourceError, match="OUT"):
        lira_scores(target, reference, np.ones_like(keep), mode="offline", variance="fixed")
    with pytest.raises(MissingResourceError, match="mode='offline'"):
        lira_scores(target, reference, np.zeros_like(keep), mode="online", variance="fixed")
    # Without IN models, the offline test still works.
    assert np.isfinite(
        lira_scores(target, reference, np.zeros_like(keep), mode="offline", variance="fixed")
    ).all()
    bad = reference.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(AuditMLError, match="`reference_signal` must be finite"):
        lira_scores(target, bad, keep, mode="online", variance="fixed")


# ---------------------------------------------------------------------------------------------
# Soundness on planted memorisation and under the null


def _planted(seed: int, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example difficulty μ_i; OUT signals μ_i + noise, IN ones shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    examples, models, copies = 400, 8, 2
    keep = paired_keep(models, examples, seed=seed)
    is_member = rng.permutation(examples) < examples // 2
    difficulty = rng.normal(0.0, 3.0, examples)
    reference = difficulty + shift * keep + rng.normal(size=(copies, models, examples))
    target = difficulty + shift * is_member + rng.normal(size=(copies, examples))
    return target, reference, keep, is_member


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("variance", ["per_example", "fixed"])
def test_planted_members_rank_on_top(mode: str, variance: str) -> None:
    target, reference, keep, is_member = _planted(seed=1, shift=3.0)
    scores = lira_scores(target, reference, keep, mode=mode, variance=variance)
    assert roc_auc(scores, is_member) > 0.9


@pytest.mark.parametrize("mode", ["online", "offline"])
@pytest.mark.parametrize("variance", ["per_example", "fixed"])
def test_null_auc_is_chance(mode: str, variance: str) -> None:
    # The target saw neither set: its signals come from the OUT distribution for every example.
    rng = np.random.default_rng(2)
    examples, models = 4000, 8
    keep = paired_keep(models, examples, seed=2)
    difficulty = rng.normal(0.0, 3.0, examples)
    reference = difficulty + 3.0 * keep + rng.normal(size=(1, models, examples))
    target = difficulty + rng.normal(size=(1, examples))
    is_member = rng.permutation(examples) < examples // 2
    auc = roc_auc(lira_scores(target, reference, keep, mode=mode, variance=variance), is_member)
    n1 = n2 = examples // 2
    standard_error = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert abs(auc - 0.5) < 4 * standard_error


# ---------------------------------------------------------------------------------------------
# Augmentations


def test_augmentation_copies() -> None:
    assert augmentation_copies("none") == [(False, 0, 0)]
    assert augmentation_copies("flip") == [(False, 0, 0), (True, 0, 0)]
    shifts = augmentation_copies("shift")
    assert len(shifts) == 5 and shifts[0] == (False, 0, 0)
    assert {(r, c) for _, r, c in shifts} == {(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)}
    both = augmentation_copies("flip_shift")
    assert len(both) == 10 and len(set(both)) == 10 and both[0] == (False, 0, 0)
    with pytest.raises(AuditMLError, match="unknown augmentations"):
        augmentation_copies("rotate")


def test_augment_flips_and_shifts_with_reflection() -> None:
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    grid = x[0, 0]
    assert augment(x, False, 0, 0) is x
    np.testing.assert_array_equal(augment(x, True, 0, 0)[0, 0], grid[:, ::-1])
    # Content moves down one row; the new top row reflects row 1.
    np.testing.assert_array_equal(augment(x, False, 1, 0)[0, 0], grid[[1, 0, 1]])
    np.testing.assert_array_equal(augment(x, False, -1, 0)[0, 0], grid[[1, 2, 1]])
    np.testing.assert_array_equal(augment(x, False, 0, 1)[0, 0], grid[:, [1, 0, 1]])
    np.testing.assert_array_equal(augment(x, False, 0, -1)[0, 0], grid[:, [1, 2, 1]])
    # Flip first, then shift.
    np.testing.assert_array_equal(augment(x, True, 0, 1)[0, 0], grid[:, ::-1][:, [1, 0, 1]])


# ---------------------------------------------------------------------------------------------
# End to end on tiny torch models


def _train(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(x.shape[1:])), 3))
    return fit(model, x, y, lr=0.1, steps=60)


@functools.cache
def _target(image: bool = True, models: int = 4) -> AuditTarget:
    """Trained once per argument set and shared: attacks only read the models."""
    rng = np.random.default_rng(0)
    shape = (40, 1, 4, 4) if image else (40, 16)
    x = rng.normal(size=shape).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int64)
    keep = paired_keep(models, 40, seed=0)
    reference = ReferenceModels(
        [_train(x[keep[k]], y[keep[k]], seed=k + 1) for k in range(models)],
        keep,
        torch.device("cpu"),
    )
    return AuditTarget(
        model=_train(x[:20], y[:20], seed=0),
        examples=ArrayDataset(x, y),
        num_classes=3,
        device=torch.device("cpu"),
        seed=0,
        reference=reference,
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"mode": "offline"},
        {"variance": "fixed", "augmentations": "flip"},
        {"mode": "offline", "variance": "fixed", "augmentations": "flip_shift"},
        {"augmentations": "shift"},
    ],
)
def test_end_to_end_scores(settings: dict[str, str]) -> None:
    attack = ATTACKS.get("mia_lira")(**settings)
    scores = attack.fit(_target()).score()
    assert scores.shape == (40,) and scores.dtype == np.float64
    assert np.isfinite(scores).all()


def test_end_to_end_with_one_reference_model() -> None:
    scores = LiraAttack().fit(_target(models=1)).score()
    assert scores.shape == (40,) and np.isfinite(scores).all()


def test_target_and_references_see_the_same_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    # A target identical to reference model 0 must give exactly model 0's signal on every copy.
    target = _target()
    assert target.reference is not None
    target = dataclasses.replace(target, model=target.reference.models[0])
    seen: dict[str, np.ndarray] = {}

    def spy(target_signal: np.ndarray, reference_signal: np.ndarray, keep: np.ndarray,
            **kwargs: Any) -> np.ndarray:
        seen["target"], seen["reference"] = target_signal, reference_signal
        return lira_scores(target_signal, reference_signal, keep, **kwargs)

    monkeypatch.setattr(lira_module, "lira_scores", spy)
    LiraAttack(augmentations="flip_shift").fit(target).score()
    assert seen["target"].shape == (10, 40)
    np.testing.assert_allclose(seen["target"], seen["reference"][:, 0, :])
    # The copies differ from each other, so the check above is not vacuous.
    assert not np.allclose(seen["target"][0], seen["target"][1])


def test_augmentations_need_images() -> None:
    with pytest.raises(AuditMLError, match="needs images"):
        LiraAttack(augmentations="flip").fit(_target(image=False))
    assert np.isfinite(LiraAttack().fit(_target(image=False)).score()).all()


def test_settings_checked() -> None:
    # Unknown keys, missing resources, fit-before-score: tests/attacks/test_contract.py.
    assert ATTACKS.get("mia_lira") is LiraAttack
    assert LiraAttack().settings() == {
        "mode": "online", "variance": "auto", "augmentations": "none"
    }
    with pytest.raises(ConfigError, match="mia_lira: mode='both'"):
        LiraAttack(mode="both")
    with pytest.raises(ConfigError, match="mia_lira: variance="):
        LiraAttack(variance="global")


def test_auto_variance_is_fixed_below_64_reference_models_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    used: list[str] = []

    def spy(*args: Any, variance: str, **kwargs: Any) -> np.ndarray:
        used.append(variance)
        return lira_scores(*args, variance=variance, **kwargs)

    monkeypatch.setattr(lira_module, "lira_scores", spy)
    attack = LiraAttack()
    assert attack.fitted_values() == {}
    attack.fit(_target())  # 4 reference models
    with_auto = attack.score()
    assert used == ["fixed"]
    assert attack.fitted_values()["variance"] == "fixed"
    assert "4 reference models are fewer than 64" in attack.fitted_values()["variance_reason"]
    np.testing.assert_array_equal(with_auto, LiraAttack(variance="fixed").fit(_target()).score())
    assert LiraAttack(variance="fixed").fit(_target()).fitted_values() == {
        "variance": "fixed", "variance_reason": "as configured"}


def test_auto_variance_is_per_example_from_64_reference_models() -> None:
    assert lira_module.choose_variance("auto", 63)[0] == "fixed"
    chosen, reason = lira_module.choose_variance("auto", 64)
    assert chosen == "per_example" and "64 reference models" in reason
    with pytest.warns(UserWarning, match="mia_lira: variance per_example with 2"):
        assert lira_module.choose_variance("per_example", 2) == ("per_example", "as configured")
    assert lira_module.choose_variance("fixed", 256) == ("fixed", "as configured")


def test_per_example_variance_with_few_reference_models_warns() -> None:
    with pytest.warns(UserWarning, match="variance per_example with 4 reference models"):
        attack = LiraAttack(variance="per_example").fit(_target())
    assert attack.fitted_values()["variance"] == "per_example"
    assert np.isfinite(attack.score()).all()
