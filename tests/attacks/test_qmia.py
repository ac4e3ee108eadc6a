"""QMIA: the regression against direct computations, per-example thresholds that beat a global
one, chance on unseen data, and a fit that reads the population only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget
from auditml.attacks.qmia import QmiaAttack, ScoreRegressor, hinge_scores
from auditml.data import ArrayDataset
from auditml.errors import ConfigError
from toy_models import CLASSES, draw, join, train_planted

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def regressor(regression: str, quantile: float | None = None, **settings: float) -> ScoreRegressor:
    defaults = {"hidden": 16, "epochs": 1500, "learning_rate": 1e-2, "weight_decay": 0.0,
                "validation_fraction": 0.0}
    return ScoreRegressor(regression=regression, quantile=quantile,  # type: ignore[arg-type]
                          **{**defaults, **settings})  # type: ignore[arg-type]


@pytest.mark.parametrize("quantile", [0.1, 0.5, 0.9, 0.99])
def test_on_a_constant_input_the_quantile_regression_is_the_empirical_quantile(
    quantile: float,
) -> None:
    # One input for every example: the best the regression can do is one number, and the
    # pinball loss's minimiser is the empirical quantile of the scores.
    scores = np.random.default_rng(1).normal(2.0, 3.0, size=400)
    x, labels = np.ones((400, 5), np.float32), np.zeros(400, np.int64)
    fitted = regressor("quantile", quantile).fit(x, labels, scores, num_classes=3, seed=0)
    location, scale = fitted.predict(x[:7], labels[:7])
    np.testing.assert_allclose(scale, 1.0)
    # The pinball loss is minimised anywhere between the two order statistics around the
    # quantile (numpy interpolates between them), so that is how close it can be asked to be.
    ordered = np.sort(scores)
    position = quantile * (len(scores) - 1)
    low, high = ordered[int(np.floor(position)) - 1], ordered[int(np.ceil(position)) + 1]
    assert low <= np.quantile(scores, quantile) <= high
    assert np.all((low <= location) & (location <= high)), (location[0], low, high)


def test_on_a_constant_input_the_gaussian_regression_is_the_mean_and_deviation() -> None:
    scores = np.random.default_rng(2).gamma(2.0, 1.5, size=500)
    x, labels = np.zeros((500, 4), np.float32), np.full(500, 2, np.int64)
    fitted = regressor("gaussian").fit(x, labels, scores, num_classes=3, seed=0)
    location, scale = fitted.predict(x[:3], labels[:3])
    # The Gaussian likelihood's maximiser: the sample mean and the deviation with ddof=0.
    np.testing.assert_allclose(location, scores.mean(), atol=0.01 * scores.std())
    np.testing.assert_allclose(scale, scores.std(), rtol=0.01)


def test_each_label_has_its_own_head() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 600)
    scores = np.where(labels == 1, 5.0, -5.0) + rng.normal(size=600)
    x = np.zeros((600, 2), np.float32)
    fitted = regressor("quantile", 0.5).fit(x, labels, scores, num_classes=2, seed=0)
    location, _ = fitted.predict(x[:2], np.array([0, 1]))
    np.testing.assert_allclose(location, [np.median(scores[labels == 0]),
                                          np.median(scores[labels == 1])], atol=0.1)


def test_hinge_scores_by_hand() -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(hinge_scores(logits, np.array([0, 0, 1])), [1.5, -3.0, 0.0])


class Margin(nn.Module):
    """Two classes, every example labelled 1, with the logit margin 3·x₀ + sin(997·x₁): the
    first feature sets how easy an example is (the regression can learn it), the second adds
    noise it cannot. Members (rows of ``members``) get 1 more: memorisation."""

    def __init__(self, members: np.ndarray) -> None:
        super().__init__()
        self.members = torch.from_numpy(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = 3.0 * x[:, 0] + torch.sin(997.0 * x[:, 1])
        if len(self.members):
            margin = margin + (torch.cdist(x, self.members).min(dim=1).values < 1e-6).float()
        return torch.stack([torch.zeros_like(margin), margin], dim=1)


def _margin_audit(members: int, nonmembers: int, seed: int = 0) -> tuple[AuditTarget, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(members + nonmembers + 1000, 3)).astype(np.float32)
    y = np.ones(len(x), np.int64)
    examples = ArrayDataset(x[: members + nonmembers], y[: members + nonmembers])
    population = ArrayDataset(x[members + nonmembers :], y[members + nonmembers :])
    target = AuditTarget(Margin(x[:members]), examples, 2, CPU, seed, population=population)
    return target, np.r_[np.ones(members, bool), np.zeros(nonmembers, bool)]


@pytest.mark.parametrize("settings", [{}, {"regression": "quantile"},
                                      {"regression": "quantile", "quantile": 0.5}])
def test_per_example_thresholds_beat_one_threshold(settings: dict[str, object]) -> None:
    target, is_member = _margin_audit(300, 300)
    scores = QmiaAttack(**settings).fit(target).score()
    global_auc = roc_auc_score(is_member, hinge_scores(target.logits(), target.examples.y))
    qmia_auc = roc_auc_score(is_member, scores)
    # Computed: one threshold on the margin gives about Φ(1/√19) ≈ 0.59; removing the
    # learnable 3·x₀ leaves noise of variance 1/2, about Φ(1) ≈ 0.84.
    assert global_auc < 0.66
    assert qmia_auc > 0.76, (global_auc, qmia_auc)
    assert len(np.unique(scores)) == len(scores)  # a continuous score: a full ROC


def test_chance_when_nobody_memorised() -> None:
    target, is_member = _margin_audit(0, 400)
    is_member = np.arange(400) < 200  # an arbitrary half of non-members called members
    scores = QmiaAttack().fit(target).score()
    standard_error = np.sqrt((200 + 200 + 1) / (12 * 200 * 200))
    assert abs(roc_auc_score(is_member, scores) - 0.5) < 4 * standard_error


def test_chance_on_a_trained_model_that_saw_neither_set() -> None:
    rng = np.random.default_rng(5)
    model = train_planted(join(draw(300, rng, planted=False), draw(10, rng, planted=True)), 2)
    first = join(draw(60, rng, planted=False), draw(40, rng, planted=True))
    second = join(draw(60, rng, planted=False), draw(40, rng, planted=True))
    population = join(draw(300, rng, planted=False), draw(200, rng, planted=True))
    target = AuditTarget(model, join(first, second), CLASSES, CPU, 0, population=population)
    scores = QmiaAttack().fit(target).score()
    standard_error = np.sqrt((100 + 100 + 1) / (12 * 100 * 100))
    assert abs(roc_auc_score(np.arange(200) < 100, scores) - 0.5) < 4 * standard_error


def test_the_regression_learns_from_the_population_only() -> None:
    # If the audited examples entered the fit, auditing more of them would change the scores
    # of the others (and a memorised example would raise its own threshold).
    target, _ = _margin_audit(100, 100)
    scores = QmiaAttack().fit(target).score()
    fewer = AuditTarget(target.model, target.examples.subset(np.arange(50, 150)), 2, CPU, 0,
                        population=target.population)
    np.testing.assert_array_equal(QmiaAttack().fit(fewer).score(), scores[50:150])


def test_settings_checked_and_recorded() -> None:
    # Unknown keys, fit-before-score and the rest of the contract: tests/attacks/test_contract.py.
    assert ATTACKS.get("mia_qmia") is QmiaAttack
    assert QmiaAttack.requires == frozenset({"population"})
    assert QmiaAttack().settings()["regression"] == "gaussian"
    for key, value in [("regression", "median"), ("quantile", 1.0), ("epochs", 0),
                       ("validation_fraction", 1.0), ("hidden", 0)]:
        with pytest.raises(ConfigError, match=f"mia_qmia: {key}="):
            QmiaAttack(**({"regression": "quantile"} if key == "quantile" else {}),
                       **{key: value})
    with pytest.raises(ConfigError, match=r"mia_qmia: quantile=0\.9: .*only with regression"):
        QmiaAttack(quantile=0.9)
    target, _ = _margin_audit(20, 20)
    fitted = QmiaAttack(regression="quantile", epochs=5).fit(target).fitted_values()
    assert fitted["quantile"] == 0.99 and 1 <= fitted["epoch"] <= 5
    assert "quantile" not in QmiaAttack(epochs=5).fit(target).fitted_values()
