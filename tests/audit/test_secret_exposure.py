"""Secret canaries' exposure on a space no larger than the candidates asked for: the audit ranks
every secret of it once, so each exposure is the true one, as brute force computes it. Sampling
as many secrets with replacement repeated some and missed others (the secret itself, possibly),
and the exposure metric took the sample for the whole space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from auditml.audit.canaries.base import CanaryEvidence
from auditml.audit.canaries.secret import SecretAudit
from auditml.data import ArrayDataset
from auditml.data.secrets import SecretCanaries, make_secrets
from auditml.data.text_tokens import encode_bytes
from auditml.models.causal_lm import token_statistics
from auditml.records import RunFacts
from toy_models import TEXT_LENGTH, train_language_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return train_language_model(None, seed=0)


def _secrets(length: int) -> tuple[SecretCanaries, np.ndarray, ArrayDataset]:
    secrets = make_secrets(8, kind="digits", length=length, seed=0, template="{id}:{secret}.")
    included = np.arange(len(secrets)) % 2 == 0
    texts = encode_bytes(list(secrets.texts), TEXT_LENGTH)
    return secrets, included, ArrayDataset(texts, np.zeros(len(texts), np.int64))


def _audit(model: nn.Module, length: int, candidates: int) -> dict[str, object]:
    secrets, included, texts = _secrets(length)
    evidence = CanaryEvidence(
        model=model, device=torch.device("cpu"), delta=1e-5,
        run_facts=RunFacts(experiment_name="lm", dp_enabled=False, training_id="t"),
        input_canaries=texts, input_included=included, secrets=secrets,
    )
    record = SecretAudit(candidates=candidates).run(evidence).model_dump()
    secrets_record: dict[str, object] = record["secrets"]
    return secrets_record


def _brute_force_exposures(model: nn.Module, length: int) -> np.ndarray:
    """log2 |R| − log2 rank of each canary's secret among every secret of the space, each scored
    by its log-likelihood given the canary's prefix (ties count against the secret)."""
    secrets, _, _ = _secrets(length)
    space = secrets.design.candidates()
    exposures = []
    for index, (start, stop) in enumerate(secrets.secret_spans()):
        rows = encode_bytes(secrets.with_secrets(index, space), TEXT_LENGTH)
        log_probs = token_statistics(model, rows).log_probs
        scores = log_probs[:, start - 1 : stop - 1].sum(axis=1)
        own = scores[secrets.design.index_of(secrets.secrets[index])]
        rank = int(np.count_nonzero(scores >= own))
        exposures.append(math.log2(len(space)) - math.log2(rank))
    return np.array(exposures)


@pytest.mark.parametrize("candidates", [10, 11, 255])
def test_a_space_no_larger_than_the_candidates_is_ranked_whole(
    model: nn.Module, candidates: int,
) -> None:
    truth = _brute_force_exposures(model, length=1)
    record = _audit(model, length=1, candidates=candidates)
    for group, chosen in (("included", slice(0, None, 2)), ("excluded", slice(1, None, 2))):
        assert record[group]["mean_exposure"] == pytest.approx(truth[chosen].mean())
        assert record[group]["max_exposure"] == pytest.approx(truth[chosen].max())
    assert record["enumerated"] is True and record["candidates"] == 10
    assert record["exposure_cap"] == pytest.approx(math.log2(10))


def test_a_larger_space_is_sampled_and_not_exact(model: nn.Module) -> None:
    record = _audit(model, length=2, candidates=99)  # |R| = 100
    assert record["enumerated"] is False and record["candidates"] == 99
    assert record["exposure_cap"] == pytest.approx(math.log2(100))
