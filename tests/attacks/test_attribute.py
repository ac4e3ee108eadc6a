"""Attribute-inference attacks recover a planted leak, and find nothing in a model that never saw
the data; the imputation baseline never queries the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from auditml.attacks.attribute import (
    ATTRIBUTE_ATTACKS,
    AttributeTarget,
    ConfidenceAttack,
    ImputationBaseline,
    ModelOutputAttack,
    hide_attribute,
)
from auditml.attacks.attribute.model_output import softmax
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.errors import ConfigError
from auditml.metrics.attribute import (
    advantage_over_imputation,
    member_gap,
    predicted_categories,
)
from auditml.models import predict_logits

SEX = SensitiveAttribute(name="s", columns=(0,), values=np.array([[-1.0], [1.0]]),
                         categories=("s0", "s1"))
CPU = torch.device("cpu")


def _records(count: int, seed: int) -> ArrayDataset:
    """Attribute in column 0 (±1) and 3 other attributes, label independent of both: the
    population holds nothing that imputation could use."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 4)).astype(np.float32)
    x[:, 0] = rng.choice([-1.0, 1.0], count)
    return ArrayDataset(x, rng.integers(0, 2, count).astype(np.int64))


def _memorising_model(members: ArrayDataset) -> nn.Module:
    """A model that memorised each member's attribute: trained on every member and on its twin
    with the attribute and the label flipped, so its answer on a member turns with the
    attribute (the planted leak)."""
    torch.manual_seed(0)
    twins = SEX.with_class(members.x, 0)
    twins[:, 0] = -members.x[:, 0]
    x = torch.from_numpy(np.concatenate([members.x, twins]))
    y = torch.from_numpy(np.concatenate([members.y, 1 - members.y]))
    model = nn.Sequential(nn.Linear(4, 128), nn.ReLU(), nn.Linear(128, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _target(model: nn.Module, records: ArrayDataset, auxiliary: ArrayDataset) -> AttributeTarget:
    return AttributeTarget(
        records=hide_attribute(records, SEX), attribute=SEX, auxiliary=auxiliary, num_classes=2,
        device=CPU, seed=0, model=model,
        record_outputs=softmax(predict_logits(model, records.x, device=CPU)),
    )


def _correct(attack_name: str, target: AttributeTarget, truth: np.ndarray) -> np.ndarray:
    scores = ATTRIBUTE_ATTACKS.get(attack_name)().fit(target).score()
    assert scores.shape == (len(truth), 2) and np.isfinite(scores).all()
    return predicted_categories(scores) == truth


@pytest.fixture(scope="module")
def data() -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
    return _records(120, 1), _records(120, 2), _records(200, 3)


def test_confidence_attack_recovers_a_memorised_attribute_on_members_only(
    data: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
) -> None:
    members, nonmembers, auxiliary = data
    model = _memorising_model(members)
    hits = {}
    for records, leaks in [(members, True), (nonmembers, False)]:
        target = _target(model, records, auxiliary)
        truth = SEX.classes(records.x)
        attack = _correct("confidence", target, truth)
        baseline = _correct("imputation", target, truth)
        found = advantage_over_imputation(attack, baseline)
        if leaks:
            assert attack.mean() > 0.9 and found.advantage > 0.3 and found.p_value < 1e-6
        else:
            assert abs(found.advantage) < 0.2 and found.p_value > 0.01
        hits[leaks] = attack
    gap = member_gap(hits[True], hits[False])
    assert gap.gap > 0.3 and gap.p_value < 1e-6


def test_no_advantage_on_a_model_that_never_saw_the_data(
    data: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
) -> None:
    """The confidence attack finds nothing. The output attack does beat imputation — any
    model's output on a record is a function of its attribute, and the attacker learns to invert
    it on auxiliary records — but equally on members and non-members: no member is exposed."""
    members, nonmembers, auxiliary = data
    torch.manual_seed(5)
    untrained = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    correct = {}
    for kind, records in [("members", members), ("nonmembers", nonmembers)]:
        target = _target(untrained, records, auxiliary)
        truth = SEX.classes(records.x)
        for name in ["imputation", "confidence", "model_output"]:
            correct[kind, name] = _correct(name, target, truth)
    found = advantage_over_imputation(
        correct["members", "confidence"], correct["members", "imputation"]
    )
    assert found.p_value > 0.01 and found.interval[0] < 0.1
    for name in ["confidence", "model_output"]:
        gap = member_gap(correct["members", name], correct["nonmembers", name])
        assert gap.p_value > 0.01 and abs(gap.gap) < 0.15, name


def test_imputation_uses_what_the_population_correlates(
    data: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
) -> None:
    """Where the label predicts the attribute, imputation alone infers it, without the model."""
    _, _, auxiliary = data
    correlated = ArrayDataset(auxiliary.x, (auxiliary.x[:, 0] > 0).astype(np.int64))
    records = _records(100, 9)
    records = ArrayDataset(records.x, (records.x[:, 0] > 0).astype(np.int64))
    target = AttributeTarget(
        records=hide_attribute(records, SEX), attribute=SEX, auxiliary=correlated,
        num_classes=2, device=CPU, seed=0, model=None,
    )
    scores = ImputationBaseline().fit(target).score()
    assert (predicted_categories(scores) == SEX.classes(records.x)).mean() == 1.0


def test_attacks_never_see_the_hidden_attribute(
    data: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
) -> None:
    members = data[0]
    hidden = hide_attribute(members, SEX)
    assert (SEX.classes(hidden.x) == 0).all()
    assert np.array_equal(hidden.x[:, 1:], members.x[:, 1:])


def test_model_querying_attacks_need_a_model(
    data: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
) -> None:
    members, _, auxiliary = data
    target = AttributeTarget(
        records=hide_attribute(members, SEX), attribute=SEX, auxiliary=auxiliary, num_classes=2,
        device=CPU, seed=0,
    )
    for attack in [ConfidenceAttack(), ModelOutputAttack()]:
        with pytest.raises(ConfigError, match="queries the model"):
            attack.fit(target)
    with pytest.raises(ConfigError, match="classifier"):
        ImputationBaseline(classifier="forest")
