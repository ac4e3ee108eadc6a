from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget
from auditml.attacks.threshold import ThresholdAttack, membership_signal
from auditml.data import ArrayDataset
from auditml.errors import ConfigError

LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [10.0, -5.0, 1.0]])
LABELS = np.array([0, 2, 1])


def _probs(row: np.ndarray) -> np.ndarray:
    e = np.exp(row - row.max())
    return e / e.sum()


def test_loss_is_negative_cross_entropy() -> None:
    ce = nn.functional.cross_entropy(
        torch.tensor(LOGITS), torch.tensor(LABELS), reduction="none"
    ).numpy()
    np.testing.assert_allclose(membership_signal(LOGITS, LABELS, "loss"), -ce, rtol=1e-12)


def test_confidence_and_entropy_by_hand() -> None:
    probs = np.array([_probs(row) for row in LOGITS])
    np.testing.assert_allclose(
        membership_signal(LOGITS, LABELS, "confidence"), probs[np.arange(3), LABELS]
    )
    entropy = -np.sum(probs * np.log(probs), axis=1)
    np.testing.assert_allclose(membership_signal(LOGITS, LABELS, "entropy"), -entropy)
    # A uniform prediction has entropy log(3): the least member-like.
    assert membership_signal(LOGITS, LABELS, "entropy")[1] == pytest.approx(-np.log(3))


def test_logit_confidence_and_modified_entropy_by_hand() -> None:
    probs = np.array([_probs(row) for row in LOGITS])
    p_true = probs[np.arange(3), LABELS]
    np.testing.assert_allclose(
        membership_signal(LOGITS, LABELS, "logit_confidence"), np.log(p_true / (1 - p_true))
    )
    # Song & Mittal 2021: Mentr = −(1−p_y) log p_y − Σ_{i≠y} p_i log(1−p_i), a naive loop.
    expected = []
    for row, label in zip(probs, LABELS, strict=True):
        value = -(1 - row[label]) * np.log(row[label])
        value -= sum(p * np.log(1 - p) for i, p in enumerate(row) if i != label)
        expected.append(-value)
    np.testing.assert_allclose(membership_signal(LOGITS, LABELS, "modified_entropy"), expected)


def test_modified_entropy_punishes_confident_mistakes() -> None:
    confident_right = membership_signal(np.array([[9.0, 0.0]]), np.array([0]), "modified_entropy")
    confident_wrong = membership_signal(np.array([[9.0, 0.0]]), np.array([1]), "modified_entropy")
    assert confident_right[0] > confident_wrong[0]
    # The plain entropy cannot tell them apart.
    right = membership_signal(np.array([[9.0, 0.0]]), np.array([0]), "entropy")
    wrong = membership_signal(np.array([[9.0, 0.0]]), np.array([1]), "entropy")
    assert right[0] == wrong[0]


def test_extreme_logits_stay_finite() -> None:
    logits = np.array([[1000.0, -1000.0]])
    for metric in ["loss", "confidence", "entropy", "modified_entropy"]:
        assert np.isfinite(membership_signal(logits, np.array([1]), metric)).all()
    assert np.isfinite(membership_signal(logits, np.array([0]), "logit_confidence")).all()


def test_settings_checked() -> None:
    # Unknown keys, fit-before-score and the rest of the contract: tests/attacks/test_contract.py.
    with pytest.raises(ConfigError, match="mia_threshold: metric='margin': Input should be"):
        ThresholdAttack(metric="margin")
    attack = ATTACKS.get("mia_threshold")(metric="entropy")
    assert attack.settings() == {"metric": "entropy"}


def test_scores_rank_a_memorised_example_first() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype(np.float32) * 0.1
    x[0] = [20.0, 0.0, 0.0, 0.0]  # far from the rest, so fitting it barely moves their outputs
    y = rng.integers(0, 3, 20)
    # Fit example 0 hard: its loss becomes the smallest.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x[:1])), torch.from_numpy(y[:1]))
        loss.backward()
        optimizer.step()
    target = AuditTarget(
        model=model, examples=ArrayDataset(x, y), num_classes=3, device=torch.device("cpu"), seed=0
    )
    scores = ThresholdAttack().fit(target).score()
    assert scores.shape == (20,)
    assert int(np.argmax(scores)) == 0
