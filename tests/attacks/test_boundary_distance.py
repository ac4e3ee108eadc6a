"""The boundary-distance attack: HopSkipJump's distance against the closed form of a linear
classifier, misclassified examples at 0, labels only, a bounded query budget, and chance on
data the target never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget
from auditml.attacks.boundary_distance import BoundaryDistanceAttack
from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from toy_models import CLASSES, Scaled, draw, join, train_planted

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def linear(dim: int, classes: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(dim, classes)).double().eval()


def closed_form(model: nn.Module, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The L2 distance from each row to the nearest point labelled otherwise by the linear
    classifier: the smallest over the other classes j of |(w_y − w_j)·x + b_y − b_j| / ‖w_y −
    w_j‖ (the region of class y is an intersection of half-spaces, one per j)."""
    layer = model[1]
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    flat = x.reshape(len(x), -1)
    gaps = (flat @ weight.T + bias)[np.arange(len(x)), labels][:, None] - (flat @ weight.T + bias)
    normals = np.linalg.norm(weight[labels][:, None, :] - weight[None, :, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        distances = np.abs(gaps) / normals
    distances[np.arange(len(x)), labels] = np.inf
    return distances.min(axis=1)


def labelled_by(model: nn.Module, x: np.ndarray) -> ArrayDataset:
    with torch.no_grad():
        labels = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return ArrayDataset(x, labels)


def scores_of(model: nn.Module, examples: ArrayDataset, classes: int, seed: int = 0,
              **settings: int) -> tuple[np.ndarray, BoundaryDistanceAttack]:
    attack = BoundaryDistanceAttack(**settings)
    target = AuditTarget(model, examples, classes, CPU, seed)
    return attack.fit(target).score(), attack


@pytest.mark.parametrize("shape", [(8,), (1, 3, 3)], ids=["tabular", "image"])
def test_two_classes_the_distance_is_the_closed_form(shape: tuple[int, ...]) -> None:
    dim = int(np.prod(shape))
    model = linear(dim, 2, seed=0)
    examples = labelled_by(model, np.random.default_rng(0).normal(size=(120, *shape)))
    scores, _ = scores_of(model, examples, 2)
    ratio = scores / closed_form(model, examples.x, examples.y)
    # The point found is on the other side, so never nearer than the boundary; HopSkipJump
    # with the default budget gets within a few percent of it.
    assert ratio.min() >= 1 - 1e-9
    assert np.median(ratio) < 1.02 and ratio.max() < 1.1, (np.median(ratio), ratio.max())


def test_many_classes_the_distance_is_the_nearest_boundary() -> None:
    model = linear(6, 5, seed=1)
    examples = labelled_by(model, np.random.default_rng(1).normal(size=(150, 6)))
    scores, _ = scores_of(model, examples, 5)
    ratio = scores / closed_form(model, examples.x, examples.y)
    assert ratio.min() >= 1 - 1e-9
    # A search can settle on a face of the polytope that is not the nearest one: most do not.
    assert np.median(ratio) < 1.05 and np.mean(ratio < 1.1) > 0.8, np.median(ratio)


def test_misclassified_examples_score_zero() -> None:
    model = linear(4, 3, seed=2)
    examples = labelled_by(model, np.random.default_rng(2).normal(size=(60, 4)))
    wrong = np.arange(60) % 4 == 0
    labels = np.where(wrong, (examples.y + 1) % 3, examples.y)
    scores, attack = scores_of(model, ArrayDataset(examples.x, labels), 3)
    assert np.all(scores[wrong] == 0) and np.all(scores[~wrong] > 0)
    assert attack.fitted_values()["misclassified"] == wrong.sum()


class Recording(nn.Module):
    """The wrapped model, counting the inputs it is asked about."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.queried = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.queried += len(x)
        return self.model(x)


def test_the_scores_depend_on_predicted_labels_only() -> None:
    model = linear(5, 4, seed=3)
    examples = labelled_by(model, np.random.default_rng(3).normal(size=(40, 5)))
    scores, _ = scores_of(model, examples, 4, max_queries=300)
    for factor in (0.01, 50.0):
        again, _ = scores_of(Scaled(model, factor), examples, 4, max_queries=300)
        np.testing.assert_array_equal(again, scores)


@pytest.mark.parametrize("budget", [1, 12, 35, 45, 150, 600])
def test_no_example_is_queried_more_than_the_budget(budget: int) -> None:
    model = linear(5, 3, seed=4)
    examples = labelled_by(model, np.random.default_rng(4).normal(size=(30, 5)))
    recording = Recording(model)
    scores, attack = scores_of(recording, examples, 3, max_queries=budget, gradient_queries=20)
    fitted = attack.fitted_values()
    assert fitted["queries_max"] <= budget
    assert recording.queried <= budget * len(examples)
    # Every query is counted: the model saw exactly what the record says was spent.
    assert recording.queried == round(fitted["queries_mean"] * len(examples))
    assert np.all(scores >= closed_form(model, examples.x, examples.y) * (1 - 1e-9))


def test_a_larger_budget_finds_nearer_boundary_points() -> None:
    model = linear(20, 3, seed=5)
    examples = labelled_by(model, np.random.default_rng(5).normal(size=(60, 20)))
    true = closed_form(model, examples.x, examples.y)
    small, _ = scores_of(model, examples, 3, max_queries=30)  # the bisection only
    large, _ = scores_of(model, examples, 3, max_queries=2000)
    assert np.median(large / true) < 1.05 < np.median(small / true)


def test_chance_on_a_trained_model_that_saw_neither_set() -> None:
    rng = np.random.default_rng(5)
    model = train_planted(join(draw(300, rng, planted=False), draw(10, rng, planted=True)), 2)
    first = join(draw(60, rng, planted=False), draw(40, rng, planted=True))
    second = join(draw(60, rng, planted=False), draw(40, rng, planted=True))
    scores, _ = scores_of(model, join(first, second), CLASSES, max_queries=400)
    standard_error = np.sqrt((100 + 100 + 1) / (12 * 100 * 100))
    assert abs(roc_auc_score(np.arange(200) < 100, scores) - 0.5) < 4 * standard_error


def test_members_that_were_memorised_are_far_from_the_boundary() -> None:
    rng = np.random.default_rng(6)
    members = draw(30, rng, planted=True)
    model = train_planted(join(draw(300, rng, planted=False), members), 1)
    nonmembers = draw(30, rng, planted=True)
    scores, _ = scores_of(model, join(members, nonmembers), CLASSES, max_queries=400)
    assert roc_auc_score(np.arange(60) < 30, scores) > 0.9


def test_settings_checked() -> None:
    # Unknown keys, fit-before-score and the rest of the contract: tests/attacks/test_contract.py.
    assert ATTACKS.get("mia_boundary_distance") is BoundaryDistanceAttack
    assert BoundaryDistanceAttack.requires == frozenset()
    assert BoundaryDistanceAttack().settings() == {"max_queries": 1000, "gradient_queries": 100}
    for key, value in [("max_queries", 0), ("gradient_queries", 0), ("max_queries", 2.5)]:
        with pytest.raises(ConfigError, match=f"mia_boundary_distance: {key}="):
            BoundaryDistanceAttack(**{key: value})
