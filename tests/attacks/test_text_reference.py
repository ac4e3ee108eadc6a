"""LiRA and RMIA on sequence scores (``mia_text_lira``, ``mia_text_rmia``): each is LiRA's or
RMIA's own test on the mean token log-likelihood, computed the same way for the target and the
reference models; comparing each text with itself, they find members that the LOSS attack
ranks below easy non-members, and find nothing in a model that never trained on the audited
texts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from auditml.attacks import ATTACKS, AuditTarget, MissingResourceError
from auditml.attacks.lira import lira_scores
from auditml.attacks.rmia import rmia_scores
from auditml.attacks.text_reference import reference_sequence_scores
from auditml.data import ArrayDataset
from auditml.data.text_tokens import encode_bytes
from auditml.errors import ConfigError
from auditml.models.causal_lm import per_example_loss
from auditml.training.reference import ReferenceModels, paired_keep
from toy_models import TEXT_LENGTH, join, train_language_model

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
COUNT = 25  # members, and as many non-members


def _texts(count: int, rng: np.random.Generator, letters: bytes) -> ArrayDataset:
    """``count`` rows of bytes drawn from ``letters``, encoded."""
    alphabet = np.frombuffer(letters, np.uint8)
    rows = alphabet[rng.integers(0, len(alphabet), size=(count, TEXT_LENGTH - 2))]
    return ArrayDataset(encode_bytes([row.tobytes() for row in rows], TEXT_LENGTH),
                        np.zeros(count, np.int64))


EASY, ALL_LETTERS = b"abc", b"abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Mixed:
    """Audited texts of two difficulties: 25 of all 26 letters and 25 of 3 letters that every
    model finds easy (its bulk data are of those 3); members are a random half of them, so the
    target trains on a mix like every reference model's."""

    target: nn.Module
    null: nn.Module  # the same recipe on other texts of the same mix: no audited text
    examples: ArrayDataset
    is_member: np.ndarray
    population: ArrayDataset
    reference: ReferenceModels

    def audit(self, model: nn.Module) -> AuditTarget:
        return AuditTarget(model=model, examples=self.examples, num_classes=1, device=CPU,
                           seed=0, population=self.population, reference=self.reference)


@pytest.fixture(scope="module")
def mixed() -> Mixed:
    rng = np.random.default_rng(3)
    bulk = _texts(60, rng, EASY)
    examples = join(_texts(COUNT, rng, ALL_LETTERS), _texts(COUNT, rng, EASY))
    other = join(_texts(13, rng, ALL_LETTERS), _texts(12, rng, EASY))
    population = join(_texts(COUNT, rng, EASY), _texts(COUNT, rng, ALL_LETTERS))
    is_member = np.zeros(2 * COUNT, bool)
    is_member[rng.permutation(2 * COUNT)[:COUNT]] = True
    keep = paired_keep(4, len(examples), seed=7)
    steps = 150

    def trained(data: ArrayDataset, seed: int) -> nn.Module:
        return train_language_model(join(bulk, data), seed=seed, steps=steps)

    reference = ReferenceModels(
        [trained(examples.subset(np.flatnonzero(row)), 20 + k) for k, row in enumerate(keep)],
        keep, CPU,
    )
    return Mixed(target=trained(examples.subset(np.flatnonzero(is_member)), 1),
                 null=trained(other, 1), examples=examples, is_member=is_member,
                 population=population, reference=reference)


def _auc(name: str, target: AuditTarget, is_member: np.ndarray) -> float:
    return float(roc_auc_score(is_member, ATTACKS.get(name)().fit(target).score()))


def test_comparing_each_text_with_itself_finds_the_members(mixed: Mixed) -> None:
    # The LOSS attack ranks every easy text above every hard one, members or not; RMIA compares
    # each text's likelihood with the reference models' (measured: LOSS 0.74, RMIA 0.97, LiRA
    # 0.84, whose one variance per side fits neither the easy texts nor the hard ones).
    target = mixed.audit(mixed.target)
    loss = _auc("mia_text_loss", target, mixed.is_member)
    assert _auc("mia_text_rmia", target, mixed.is_member) > max(0.9, loss + 0.1)
    assert _auc("mia_text_lira", target, mixed.is_member) > 0.75


def test_no_member_is_found_in_a_model_that_trained_on_none_of_the_audited_texts(
    mixed: Mixed,
) -> None:
    # Chance is 0.5 ± 0.08 (one standard error at 25 against 25).
    target = mixed.audit(mixed.null)
    for name in ("mia_text_lira", "mia_text_rmia"):
        assert 0.3 < _auc(name, target, mixed.is_member) < 0.7, name


def _mean_log_likelihood(model: nn.Module, ids: np.ndarray) -> np.ndarray:
    """Direct: minus each row's mean next-token cross-entropy, one forward pass."""
    with torch.no_grad():
        batch = torch.from_numpy(ids)
        return -per_example_loss(model(batch), batch).double().numpy()


def test_the_signals_are_each_texts_mean_token_log_likelihood_under_each_model(
    mixed: Mixed,
) -> None:
    x = mixed.examples.x
    direct = np.stack([_mean_log_likelihood(model, x) for model in mixed.reference.models])
    np.testing.assert_allclose(reference_sequence_scores(mixed.reference, x), direct,
                               rtol=1e-5, atol=1e-6)

    target = mixed.audit(mixed.target)
    keep = mixed.reference.keep
    target_x = _mean_log_likelihood(mixed.target, x)
    lira = ATTACKS.get("mia_text_lira")(mode="online").fit(target).score()
    np.testing.assert_allclose(
        lira, lira_scores(target_x[None], direct[None], keep, mode="online", variance="fixed"),
        rtol=1e-4, atol=1e-6,
    )
    z = mixed.population.x
    reference_z = np.stack([_mean_log_likelihood(m, z) for m in mixed.reference.models])
    rmia = ATTACKS.get("mia_text_rmia")().fit(target).score()
    expected = rmia_scores(
        np.exp(target_x), np.exp(direct), keep, np.exp(_mean_log_likelihood(mixed.target, z)),
        np.exp(reference_z), mode="online", a=None, gamma=1.0,
    )
    np.testing.assert_allclose(rmia, expected, rtol=1e-6)


def test_their_settings_are_their_tests_and_nothing_of_the_image_signals() -> None:
    lira, rmia = ATTACKS.get("mia_text_lira"), ATTACKS.get("mia_text_rmia")
    assert lira(mode="offline", variance="fixed").settings() == {"mode": "offline",
                                                                   "variance": "fixed"}
    with pytest.raises(ConfigError, match="mia_text_lira: augmentations"):
        lira(augmentations="flip")
    with pytest.raises(ConfigError, match="mia_text_rmia: temperature"):
        rmia(temperature=2.0)
    with pytest.raises(ConfigError, match=r"mia_text_rmia: a=0\.5"):
        rmia(mode="online", a=0.5)
    for attack in (lira, rmia):
        with pytest.raises(ConfigError, match="cannot attack a classifier"):
            attack().check_task("classification")


def test_without_reference_models_or_population_they_say_what_is_missing(
    mixed: Mixed,
) -> None:
    bare = AuditTarget(model=mixed.target, examples=mixed.examples, num_classes=1,
                       device=CPU, seed=0)
    with pytest.raises(MissingResourceError, match="mia_text_lira needs reference"):
        ATTACKS.get("mia_text_lira")().fit(bare)
    with pytest.raises(MissingResourceError, match="mia_text_rmia needs population and "
                       "reference"):
        ATTACKS.get("mia_text_rmia")().fit(bare)
