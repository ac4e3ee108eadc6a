"""The secret canaries' verdict is the f-DP test of the run's whole claimed privacy curve: it
rejects a small claim for a model that memorised the secrets it trained on, keeps it for a model
that learnt none of them, and tests nothing when each secret was trained on several times (a
group of rows, which the per-row claim does not cover)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.secret import SecretAudit
from auditml.data import ArrayDataset
from auditml.data.secrets import SecretCanaries, make_secrets
from auditml.data.text_tokens import encode_bytes
from auditml.metrics.dp.accounting import accountant_epsilon
from auditml.records import RunFacts
from toy_models import TEXT_LENGTH, train_language_model

pytestmark = pytest.mark.usefixtures("one_thread")

Canaries = tuple[SecretCanaries, np.ndarray, ArrayDataset]
DELTA = 1e-5
# One full-batch Gaussian step at σ = 4: ε ≈ 1.1 at δ = 1e-5.
HISTORY = [(4.0, 1.0, 1)]


def _claim() -> PrivacyClaim:
    return PrivacyClaim("rdp", HISTORY, accountant_epsilon(HISTORY, mechanism="rdp", delta=DELTA),
                        DELTA)


@pytest.fixture(scope="module")
def canaries() -> Canaries:
    secrets = make_secrets(100, kind="rare", length=4, seed=0, template="{id}:{secret}.")
    included = np.random.default_rng(1).random(len(secrets)) < 0.5
    texts = encode_bytes(list(secrets.texts), TEXT_LENGTH)
    return secrets, included, ArrayDataset(texts, np.zeros(len(texts), np.int64))


@pytest.fixture(scope="module")
def memorised(canaries: Canaries) -> nn.Module:
    """A small GPT-2 fitted hard to the canaries it trained on (by their coins)."""
    _, included, texts = canaries
    return train_language_model(texts.subset(np.flatnonzero(included)), seed=0, steps=150)


def _audit(model: nn.Module, canaries: Canaries,
           *, repeats: int = 1) -> dict[str, object]:
    secrets, included, texts = canaries
    evidence = CanaryEvidence(
        model=model, device=torch.device("cpu"), delta=DELTA,
        run_facts=RunFacts(experiment_name="lm", dp_enabled=True, epsilon=_claim().epsilon,
                           delta=DELTA, training_id="t"),
        input_canaries=texts, input_included=included, claim=_claim(), secrets=secrets,
        canary_repeats=repeats,
    )
    return SecretAudit(candidates=15).run(evidence).model_dump()


def test_a_model_that_memorised_its_secrets_contradicts_a_small_claim(
    canaries: Canaries, memorised: nn.Module,
) -> None:
    assert 0.9 < _claim().epsilon < 1.3
    record = _audit(memorised, canaries)
    test = record["claim_test"]
    assert test is not None and test["guesses"] == 20  # a tenth IN, a tenth OUT
    assert test["correct"] == 20 and test["violation"] and record["violation"] is True


def test_a_model_that_learnt_no_secret_keeps_the_claim(canaries: Canaries) -> None:
    record = _audit(train_language_model(None, seed=0), canaries)
    assert record["claim_test"]["violation"] is False and record["violation"] is False


def test_secrets_trained_on_several_times_are_not_tested_against_the_per_row_claim(
    canaries: Canaries, memorised: nn.Module,
) -> None:
    record = _audit(memorised, canaries, repeats=3)
    assert record["claim_test"] is None and record["violation"] is None
    assert record["epsilon_lower_bound"] > 0  # the bound is still shown
