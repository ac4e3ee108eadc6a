from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.special import softmax

from auditml.attacks import ATTACKS, AuditTarget, MissingResourceError
from auditml.attacks.lira import lira_scores
from auditml.attacks.multi_signal import (
    MultiSignalAttack,
    membership_signals,
    played_references,
    signal_names,
)
from auditml.attacks.signals import logit_confidence
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError
from auditml.metrics import roc_auc
from auditml.training.reference import paired_keep

CLASSES = 5


@dataclasses.dataclass(frozen=True)
class StoredLogits:
    """Reference models given by their logits on the audited examples (the protocol)."""

    stored: np.ndarray  # (K, N, C)
    keep: np.ndarray  # (K, N)

    def __len__(self) -> int:
        return len(self.keep)

    def logits(self, x: np.ndarray) -> np.ndarray:
        assert len(x) == self.stored.shape[1]
        return self.stored


def _logits(difficulty: np.ndarray, labels: np.ndarray, inside: np.ndarray,
            rng: np.random.Generator, shift: float) -> np.ndarray:
    """Logits whose true-class logit is the example's difficulty, plus ``shift`` where the
    model trained on it, plus noise."""
    logits = rng.normal(0.0, 1.0, size=(*inside.shape, CLASSES))
    true = difficulty + shift * inside + rng.normal(0.0, 1.0, size=inside.shape)
    np.put_along_axis(logits, labels[None, :, None] if inside.ndim == 2 else labels[:, None],
                      (true[..., None]), axis=-1)
    return logits


def _audit(*, members_easier: float = 0.0, target_shift: float, models: int = 8,
           examples: int = 600, seed: int = 0) -> tuple[AuditTarget, np.ndarray]:
    """Reference models that memorise (true-class logit +3 where IN) and a target whose members
    get ``target_shift``; members' difficulty is raised by ``members_easier``."""
    rng = np.random.default_rng(seed)
    is_member = rng.permutation(examples) < examples // 2
    labels = rng.integers(0, CLASSES, examples)
    difficulty = rng.normal(1.0, 2.0, examples) + members_easier * is_member
    keep = paired_keep(models, examples, seed=seed)
    reference = StoredLogits(_logits(difficulty, labels, keep, rng, 3.0), keep)
    outputs = _logits(difficulty, labels, is_member, rng, target_shift)
    target = AuditTarget(
        model=None, examples=ArrayDataset(np.zeros((examples, 1), np.float32), labels),
        num_classes=CLASSES, device=None, seed=seed, reference=reference, outputs=outputs,
    )
    return target, is_member


def _null_band(is_member: np.ndarray) -> float:
    """Four standard errors of the AUC of scores unrelated to membership."""
    n1, n2 = int(is_member.sum()), int((~is_member).sum())
    return 4 * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))


# ---------------------------------------------------------------------------------------------
# Soundness


def test_planted_leak_is_recovered() -> None:
    target, is_member = _audit(target_shift=3.0)
    scores = MultiSignalAttack().fit(target).score()
    assert scores.shape == is_member.shape and np.isfinite(scores).all()
    assert roc_auc(scores, is_member) > 0.9


@pytest.mark.parametrize(("models", "settings"),
                         [(2, {}), (8, {}), (8, {"lira_signals": False})])
def test_chance_when_the_target_saw_neither_set(models: int, settings: dict[str, bool]) -> None:
    # Members are easier examples, so the target's raw confidence alone would rank them high
    # (AUC well above 0.5) though it trained on none of them; the signals are relative to the
    # reference models, which see the same difficulty, and so the attack must not.
    target, is_member = _audit(members_easier=1.5, target_shift=0.0, models=models, seed=1)
    raw = logit_confidence(target.logits(), np.asarray(target.examples.y))
    assert roc_auc(raw, is_member) > 0.6  # the trap is real
    scores = MultiSignalAttack(**settings).fit(target).score()
    assert abs(roc_auc(scores, is_member) - 0.5) < _null_band(is_member)


def test_weights_are_learned_from_the_reference_models_alone() -> None:
    # The target's membership is never seen: permuting the target's outputs permutes the
    # scores and changes nothing the attack learned.
    target, _ = _audit(target_shift=3.0, seed=4)
    order = np.random.default_rng(5).permutation(len(target.examples))
    attack = MultiSignalAttack().fit(target)
    shuffled = MultiSignalAttack().fit(dataclasses.replace(target, outputs=target.logits()[order]))
    assert attack.fitted_values() == shuffled.fitted_values()
    learned = attack.fitted_values()
    assert learned["played_models"] == 8 and learned["partner_used"] is False
    assert list(learned["weights"]) == signal_names((1.0, 2.0, 4.0), True)
    assert learned["played_auc"] > 0.9


# ---------------------------------------------------------------------------------------------
# The signals and the played models


def test_signals_by_hand() -> None:
    rng = np.random.default_rng(6)
    labels = np.array([0, 2, 1, 1])
    own = rng.normal(size=(4, 3))
    references = rng.normal(size=(4, 4, 3))
    keep = paired_keep(4, 4, seed=0)
    signals = membership_signals(own, references, keep, labels, temperatures=(1.0, 3.0))
    assert signals.shape == (4, 4)
    for column, temperature in enumerate((1.0, 3.0)):
        for i, y in enumerate(labels):
            mean = np.mean([softmax(references[k, i] / temperature)[y] for k in range(4)])
            expected = math.log(softmax(own[i] / temperature)[y] / mean)
            assert signals[i, column] == pytest.approx(expected, rel=1e-9)
    phi = logit_confidence(own, labels)[None]
    phi_references = logit_confidence(references, np.broadcast_to(labels, (4, 4)))[None]
    for column, mode in ((2, "online"), (3, "offline")):
        np.testing.assert_allclose(
            signals[:, column],
            lira_scores(phi, phi_references, keep, mode=mode, variance="fixed"),
        )
    only_rmia = membership_signals(own, references, keep, labels, lira_signals=False)
    assert only_rmia.shape == (4, 3)


def test_signal_inputs_are_checked() -> None:
    own, labels = np.zeros((3, 2)), np.zeros(3, dtype=int)
    with pytest.raises(AuditMLError, match="`reference_logits` must be"):
        membership_signals(own, np.zeros((2, 4, 2)), np.ones((2, 4), bool), labels)
    with pytest.raises(AuditMLError, match="`labels` must have shape"):
        membership_signals(own, np.zeros((2, 3, 2)), np.ones((2, 3), bool), labels[:2])


def test_a_played_model_never_has_its_partner_as_reference() -> None:
    keep = paired_keep(6, 10, seed=0)
    for played in range(6):
        others = played_references(keep, played)
        assert played not in others and (played ^ 1) not in others and len(others) == 4
    assert played_references(keep[:2], 0) == []


def test_two_reference_models_use_the_partner_with_rmia_signals_only() -> None:
    target, is_member = _audit(target_shift=3.0, models=2, seed=7)
    attack = MultiSignalAttack().fit(target)
    learned = attack.fitted_values()
    assert learned["partner_used"] is True
    assert list(learned["weights"]) == signal_names((1.0, 2.0, 4.0), False)
    assert roc_auc(attack.score(), is_member) > 0.9


def test_one_reference_model_is_refused_naming_the_setting() -> None:
    target, _ = _audit(target_shift=3.0, models=2)
    reference = target.reference
    assert isinstance(reference, StoredLogits)
    one = StoredLogits(reference.stored[:1], reference.keep[:1])
    with pytest.raises(MissingResourceError,
                       match=r"at least 2 reference models.*reference_models"):
        MultiSignalAttack().fit(dataclasses.replace(target, reference=one))


# ---------------------------------------------------------------------------------------------
# Settings


def test_registered() -> None:
    assert ATTACKS.get("mia_multi_signal") is MultiSignalAttack


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperatures": []}, r"temperatures=\[\]: .*at least 1"),
        ({"temperatures": [2.0, 0.0]}, r"temperatures=\[2\.0, 0\.0\]: .*positive"),
        ({"temperatures": [2.0, 2.0]}, r"temperatures=\[2\.0, 2\.0\]: .*distinct"),
        ({"l2": 0.0}, r"l2=0\.0: .*greater than 0"),
        ({"lira_signals": "sometimes"}, r"lira_signals='sometimes'"),
    ],
)
def test_settings_checked_naming_the_argument(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"mia_multi_signal: {message}"):
        MultiSignalAttack(**settings)


def test_settings_change_the_signals_and_are_recorded() -> None:
    target, is_member = _audit(target_shift=3.0, seed=8)
    attack = MultiSignalAttack(temperatures=[2.0], lira_signals=False, l2=0.01).fit(target)
    assert attack.settings() == {"temperatures": [2.0], "lira_signals": False, "l2": 0.01}
    assert list(attack.fitted_values()["weights"]) == ["rmia_log_ratio_t2"]
    assert roc_auc(attack.score(), is_member) > 0.9
