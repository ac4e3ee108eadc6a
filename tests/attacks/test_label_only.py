"""The label-only attack: planted memorisation found, chance on unseen data, labels only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import auditml.attacks.label_only as label_only
from auditml.attacks import ATTACKS, AuditTarget
from auditml.attacks.label_only import LabelOnlyAttack, perturb, shift_images
from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from auditml.metrics import roc_auc
from toy_models import CLASSES, Scaled, draw, join, train_planted

CPU = torch.device("cpu")
train = train_planted


def audit(model: nn.Module, examples: ArrayDataset, seed: int = 0) -> AuditTarget:
    return AuditTarget(model=model, examples=examples, num_classes=CLASSES, device=CPU, seed=seed)


class OneHot(nn.Module):
    """Only the wrapped model's predicted label, as a one-hot vector."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return nn.functional.one_hot(logits.argmax(dim=1), logits.shape[1]).float()


@dataclass(frozen=True)
class World:
    target: nn.Module  # trained on bulk data plus the planted members
    unseen_target: nn.Module  # trained on other data
    members: ArrayDataset
    nonmembers: ArrayDataset

    @property
    def examples(self) -> ArrayDataset:
        return join(self.members, self.nonmembers)

    @property
    def is_member(self) -> np.ndarray:
        return np.r_[np.ones(len(self.members), bool), np.zeros(len(self.nonmembers), bool)]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world() -> World:
    rng = np.random.default_rng(0)
    members = draw(10, rng, planted=True)
    target = train(join(draw(300, rng, planted=False), members), seed=1)
    nonmembers = draw(40, rng, planted=True)
    unseen_target = train(join(draw(300, rng, planted=False), draw(10, rng, planted=True)), seed=2)
    return World(target, unseen_target, members, nonmembers)


def test_planted_members_rank_on_top(world: World) -> None:
    scores = LabelOnlyAttack().fit(audit(world.target, world.examples)).score()
    assert scores.shape == (50,)
    # Fractions of 32 queries.
    np.testing.assert_allclose(scores * 32, np.round(scores * 32), atol=1e-9)
    member, nonmember = scores[world.is_member], scores[~world.is_member]
    assert roc_auc(scores, world.is_member) > 0.9
    assert member.mean() > np.quantile(nonmember, 0.95)


def test_chance_when_the_target_saw_neither_set(world: World) -> None:
    rng = np.random.default_rng(5)
    # Both sets come from one distribution (bulk and planted alike) and neither was trained on.
    first = join(draw(50, rng, planted=False), draw(50, rng, planted=True))
    second = join(draw(50, rng, planted=False), draw(50, rng, planted=True))
    scores = LabelOnlyAttack().fit(audit(world.unseen_target, join(first, second))).score()
    is_member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    n1 = n2 = 100
    standard_error = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert abs(roc_auc(scores, is_member) - 0.5) < 4 * standard_error


def test_scores_depend_on_predicted_labels_only(world: World) -> None:
    scores = LabelOnlyAttack().fit(audit(world.target, world.examples)).score()
    for model in [Scaled(world.target, 0.01), Scaled(world.target, 37.0), OneHot(world.target)]:
        np.testing.assert_array_equal(
            LabelOnlyAttack().fit(audit(model, world.examples)).score(), scores
        )


def test_same_seed_same_scores_other_seed_other_draws(world: World) -> None:
    first = LabelOnlyAttack().fit(audit(world.target, world.examples, seed=3)).score()
    again = ATTACKS.get("mia_label_only")().fit(audit(world.target, world.examples, seed=3))
    np.testing.assert_array_equal(first, again.score())
    other = LabelOnlyAttack().fit(audit(world.target, world.examples, seed=4)).score()
    assert not np.array_equal(first, other)


def test_without_perturbation_the_score_is_correctness(world: World) -> None:
    predicted = world.target(torch.from_numpy(world.examples.x)).argmax(dim=1).numpy()
    correct = (predicted == world.examples.y).astype(float)
    for settings in [{"queries": 1}, {"noise_std": 0.0}, {"noise_std": 0.0, "max_shift": 0}]:
        scores = LabelOnlyAttack(**settings).fit(audit(world.target, world.examples)).score()
        np.testing.assert_array_equal(scores, correct)


def test_forward_passes_stay_bounded(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []

    class Recording(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sizes.append(len(x))
            return world.target(x)

    monkeypatch.setattr(label_only, "_CHUNK", 8)
    scores = LabelOnlyAttack(queries=5).fit(audit(Recording(), world.examples)).score()
    assert scores.shape == (50,) and max(sizes) <= 8
    assert len(sizes) == 5 * 7  # ceil(50 / 8) chunks, one pass per query each


def test_shift_images_by_hand() -> None:
    image = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    images = np.repeat(image, 3, axis=0)
    shifted = shift_images(images, np.array([[0, 0], [1, 0], [-1, 1]]))
    np.testing.assert_array_equal(shifted[0, 0], image[0, 0])
    # Down one row: the top row repeats the old top row.
    np.testing.assert_array_equal(shifted[1, 0], [[0, 1, 2], [0, 1, 2], [3, 4, 5]])
    # Up one row and right one column: the bottom row and left column repeat the edge.
    np.testing.assert_array_equal(shifted[2, 0], [[3, 3, 4], [6, 6, 7], [6, 6, 7]])
    with pytest.raises(ValueError, match="`shifts` must have shape"):
        shift_images(images, np.zeros((2, 2), int))


def test_perturb_keeps_shape_and_dtype_and_spreads_noise() -> None:
    rng = np.random.default_rng(0)
    images = np.zeros((200, 1, 4, 4), np.float32)
    noisy = perturb(images, rng, noise_std=0.5, max_shift=1)
    assert noisy.shape == images.shape and noisy.dtype == np.float32
    assert np.std(noisy) == pytest.approx(0.5, rel=0.05)
    tabular = np.zeros((100, 3), np.float64)
    np.testing.assert_array_equal(perturb(tabular, rng, noise_std=0.0, max_shift=3), tabular)


def test_shifts_move_images_and_edges_are_repeated() -> None:
    # Class 1 exactly when the centre pixel of a 1×5×5 image is bright.
    class Centre(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            centre = x[:, 0, 2, 2]
            return torch.stack([torch.full_like(centre, 0.5), centre], dim=1)

    dot = np.zeros((300, 1, 5, 5), np.float32)
    dot[:, 0, 2, 2] = 1.0
    labels = np.ones(300, np.int64)
    attack = LabelOnlyAttack(queries=10, noise_std=0.0, max_shift=1)
    scores = attack.fit(AuditTarget(Centre(), ArrayDataset(dot, labels), 2, CPU, 0)).score()
    # The dot stays at the centre only on the unshifted copy and on the 1 in 9 zero shifts.
    expected = 0.1 + 0.9 / 9
    assert scores.mean() == pytest.approx(expected, abs=0.03)
    # A flat bright image is unchanged by any shift, because the border repeats the edge.
    flat = np.ones((20, 1, 5, 5), np.float32)
    scores = attack.fit(AuditTarget(Centre(), ArrayDataset(flat, labels[:20]), 2, CPU, 0)).score()
    np.testing.assert_array_equal(scores, np.ones(20))


def test_settings_checked() -> None:
    # Unknown keys, fit-before-score and the rest of the contract: tests/attacks/test_contract.py.
    assert LabelOnlyAttack.requires == frozenset()
    assert LabelOnlyAttack().settings() == {"queries": 32, "noise_std": 0.2, "max_shift": 1}
    for key, value in [
        ("queries", 0),
        ("noise_std", -0.1),
        ("noise_std", float("inf")),
        ("max_shift", -1),
        ("queries", 2.5),
    ]:
        with pytest.raises(ConfigError, match=f"mia_label_only: {key}="):
            LabelOnlyAttack(**{key: value})
