"""The shadow-model attack: planted memorisation found, chance on unseen data, contract checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from auditml.attacks import AuditTarget, MissingResourceError, NotFittedError
from auditml.attacks.shadow import ShadowModelAttack, prediction_features
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError
from auditml.metrics import roc_auc
from auditml.training.reference import ReferenceModels, paired_keep
from toy_models import CLASSES, draw, join, train_planted

CPU = torch.device("cpu")
train = train_planted


@dataclass(frozen=True)
class World:
    target: nn.Module  # trained on bulk data plus the planted members
    unseen_target: nn.Module  # trained on other data: every audited example is new to it
    members: ArrayDataset
    nonmembers: ArrayDataset
    population: ArrayDataset
    shadow: ReferenceModels

    def audit(self, model: nn.Module | None = None, **changes: object) -> AuditTarget:
        fields: dict[str, object] = {
            "model": self.target if model is None else model,
            "examples": join(self.members, self.nonmembers),
            "num_classes": CLASSES,
            "device": CPU,
            "seed": 0,
            "population": self.population,
            "shadow": self.shadow,
        }
        fields.update(changes)
        return AuditTarget(**fields)  # type: ignore[arg-type]

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
    population = join(draw(300, rng, planted=False), draw(40, rng, planted=True))
    keep = paired_keep(4, len(population), seed=0)
    shadow = ReferenceModels(
        [train(population.subset(np.flatnonzero(row)), seed=10 + k) for k, row in enumerate(keep)],
        keep,
        CPU,
    )
    unseen_target = train(join(draw(300, rng, planted=False), draw(10, rng, planted=True)), seed=2)
    return World(target, unseen_target, members, nonmembers, population, shadow)


def test_planted_members_rank_on_top(world: World) -> None:
    scores = ShadowModelAttack().fit(world.audit()).score()
    assert scores.shape == (50,)
    assert np.all((scores >= 0) & (scores <= 1))
    member, nonmember = scores[world.is_member], scores[~world.is_member]
    assert roc_auc(scores, world.is_member) > 0.9
    assert member.mean() > np.quantile(nonmember, 0.95)


@pytest.mark.parametrize("classifier", ["gradient_boosting", "mlp"])
def test_other_classifiers_prefer_members_and_are_reproducible(
    world: World, classifier: str
) -> None:
    first = ShadowModelAttack(classifier=classifier).fit(world.audit()).score()
    again = ShadowModelAttack(classifier=classifier).fit(world.audit()).score()
    np.testing.assert_array_equal(first, again)
    assert roc_auc(first, world.is_member) > 0.75


def test_chance_when_the_target_saw_neither_set(world: World) -> None:
    rng = np.random.default_rng(5)
    # Both sets come from one distribution (bulk and planted alike) and neither was trained on.
    first = join(draw(50, rng, planted=False), draw(50, rng, planted=True))
    second = join(draw(50, rng, planted=False), draw(50, rng, planted=True))
    target = world.audit(world.unseen_target, examples=join(first, second))
    scores = ShadowModelAttack().fit(target).score()
    is_member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    n1 = n2 = 100
    standard_error = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert abs(roc_auc(scores, is_member) - 0.5) < 4 * standard_error


def test_rare_class_falls_back_to_the_global_classifier(world: World) -> None:
    labels = world.population.y
    # Keep a single example of class 3: 4 shadow rows, too few for a classifier of its own.
    columns = np.flatnonzero(labels != 3)
    columns = np.sort(np.r_[columns, np.flatnonzero(labels == 3)[:1]])
    shadow = ReferenceModels(world.shadow.models, world.shadow.keep[:, columns], CPU)
    attack = ShadowModelAttack().fit(
        world.audit(population=world.population.subset(columns), shadow=shadow)
    )
    assert 3 not in attack.classes_with_own_classifier
    assert len(attack.classes_with_own_classifier) == CLASSES - 1
    scores = attack.score()
    rare = join(world.members, world.nonmembers).y == 3
    assert rare.any()
    assert np.all(np.isfinite(scores)) and np.all((scores[rare] >= 0) & (scores[rare] <= 1))


def test_population_beyond_the_keep_matrix_is_ignored(world: World) -> None:
    extra = draw(30, np.random.default_rng(9), planted=True)
    longer = join(world.population, extra)
    base = ShadowModelAttack().fit(world.audit()).score()
    padded = ShadowModelAttack().fit(world.audit(population=longer)).score()
    np.testing.assert_array_equal(base, padded)


def test_shadow_models_need_out_examples(world: World) -> None:
    # A missing shadow or population is checked for every attack in test_contract.py.
    all_in = ReferenceModels(world.shadow.models, np.ones_like(world.shadow.keep), CPU)
    with pytest.raises(MissingResourceError, match="every keep entry is IN"):
        ShadowModelAttack().fit(world.audit(shadow=all_in))


def test_class_count_mismatch_is_an_error(world: World) -> None:
    with pytest.raises(AuditMLError, match="shadow models output 10 classes but the audit has 12"):
        ShadowModelAttack().fit(world.audit(num_classes=12))


def test_settings_checked_and_classes_need_fit() -> None:
    # Unknown keys, fit-before-score and the rest of the contract: tests/attacks/test_contract.py.
    assert ShadowModelAttack.requires == frozenset({"shadow", "population"})
    assert ShadowModelAttack().settings() == {"classifier": "logistic"}
    with pytest.raises(ConfigError, match="mia_shadow: classifier='svm': Input should be"):
        ShadowModelAttack(classifier="svm")
    with pytest.raises(NotFittedError, match="call fit"):
        _ = ShadowModelAttack(classifier="gradient_boosting").classes_with_own_classifier


def test_prediction_features_are_logit_scaled_probabilities() -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(prediction_features(logits), np.log(probs / (1 - probs)))
    # p_top = 1 − 2e−50 rounds to 1 in float64; the stable form still gives 50 − log 2.
    extreme = prediction_features(np.array([[50.0, 0.0, 0.0]]))
    assert extreme[0, 0] == pytest.approx(50 - np.log(2))
    assert extreme[0, 1] == pytest.approx(-np.log(np.exp(50.0) + 1.0))
    # Leading dimensions are kept: (models, examples, classes).
    assert prediction_features(np.zeros((4, 5, 3))).shape == (4, 5, 3)
