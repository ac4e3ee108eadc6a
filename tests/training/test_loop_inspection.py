"""What auditml sees of a loop besides its noisy sums: the loader, the layers, the first-batch
probe (:mod:`auditml.training.loop_inspection`)."""

from __future__ import annotations

import torch
from opacus.data_loader import DPDataLoader
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from auditml.records import HiddenStateProbe, LoopFacts
from auditml.training.loop_inspection import (
    LoopInspector,
    describe_loader,
    mixing_layers,
    running_stat_layers,
    static_facts,
)


def _data(count: int = 100) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(count, 6, generator=generator),
                         torch.randint(0, 3, (count,), generator=generator))


def test_opacus_poisson_loader_is_recognised_with_its_rate_and_size() -> None:
    loader = DPDataLoader.from_data_loader(DataLoader(_data(), batch_size=20))
    facts = describe_loader(loader)
    assert facts["sampling"] == "poisson"
    assert facts["loader_rate"] == 0.2 and facts["dataset_size"] == 100
    assert facts["steps_per_epoch"] == 5


def test_plain_loaders_are_fixed_size_and_say_how_they_draw() -> None:
    shuffled = describe_loader(DataLoader(_data(), batch_size=32, shuffle=True))
    assert shuffled["sampling"] == "shuffled"
    assert shuffled["loader"] == "shuffled fixed-size batches of 32 (RandomSampler)"
    assert shuffled["steps_per_epoch"] == 4 and shuffled["dataset_size"] == 100
    dropped = describe_loader(DataLoader(_data(), batch_size=32, shuffle=True, drop_last=True))
    assert dropped["loader"] == "shuffled fixed-size batches of 32 (drop_last) (RandomSampler)"
    in_order = describe_loader(DataLoader(_data(), batch_size=10))
    assert in_order["sampling"] == "in_order" and in_order["loader"].startswith("in-order")
    weighted = describe_loader(DataLoader(
        _data(), batch_size=10, sampler=WeightedRandomSampler(torch.ones(100), num_samples=50)))
    assert weighted["sampling"] == "weighted"
    assert weighted["loader"].startswith("weighted-sampler fixed-size")


def test_layers_that_mix_examples_are_found_trainable_or_not() -> None:
    frozen = nn.BatchNorm1d(4)
    frozen.requires_grad_(False)
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4, affine=False), nn.ReLU(), frozen,
                          nn.GroupNorm(2, 4), nn.InstanceNorm1d(4, track_running_stats=True))
    assert mixing_layers(model) == ["1: BatchNorm1d", "3: BatchNorm1d"]
    assert running_stat_layers(model) == ["1: BatchNorm1d", "3: BatchNorm1d",
                                          "5: InstanceNorm1d"]
    assert mixing_layers(nn.Sequential(nn.Linear(6, 4), nn.GroupNorm(2, 4))) == []
    facts = static_facts(model=model, secure_rng=True)
    assert facts.loader is None and facts.secure_rng is True and len(facts.mixing_layers) == 2


class MeanCentred(nn.Module):
    """A custom layer that subtracts the batch mean: it mixes examples, and no list names it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=0, keepdim=True)


def _probe(model: nn.Module, x: torch.Tensor) -> HiddenStateProbe:
    inspector = LoopInspector(model)
    model.train()
    model(x).sum().backward()
    inspector.close()
    assert inspector.probe is not None
    return inspector.probe


def test_the_probe_passes_a_per_example_model_even_with_dropout() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    probe = _probe(model, torch.randn(8, 6))
    assert probe.ran and probe.mixing is False and probe.max_change == 0.0
    assert probe.buffers_updated == [] and probe.batch == 8


def test_the_probe_catches_batch_norm_and_a_custom_mixing_layer() -> None:
    torch.manual_seed(0)
    norm = _probe(nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4, affine=False)),
                  torch.randn(8, 6))
    assert norm.mixing is True and set(norm.buffers_updated) == {
        "1.running_mean", "1.running_var", "1.num_batches_tracked"}
    custom = _probe(nn.Sequential(nn.Linear(6, 4), MeanCentred()), torch.randn(8, 6))
    assert custom.mixing is True and custom.buffers_updated == []
    # In eval mode a BatchNorm uses its running statistics: no mixing, nothing updated.
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    model[1].eval()
    frozen_stats = _probe_without_train(model, torch.randn(8, 6))
    assert frozen_stats.mixing is False and frozen_stats.buffers_updated == []


def _probe_without_train(model: nn.Module, x: torch.Tensor) -> HiddenStateProbe:
    inspector = LoopInspector(model)
    model(x).sum().backward()
    inspector.close()
    assert inspector.probe is not None
    return inspector.probe


def test_the_probe_waits_for_a_batch_of_two_past_empty_poisson_batches() -> None:
    """An empty first Poisson batch reached torch's reshape error (found by the API fuzz); a
    batch of one has nothing to compare. The probe runs on the first batch of two or more."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), MeanCentred()).train()
    inspector = LoopInspector(model)
    model(torch.randn(0, 6))
    model(torch.randn(1, 6))
    assert inspector.probe is None
    model(torch.randn(8, 6))
    inspector.close()
    assert inspector.probe is not None and inspector.probe.ran
    assert inspector.probe.batch == 8 and inspector.probe.mixing is True


def test_the_probe_leaves_training_exactly_as_without_it() -> None:
    """The same seed trains the same weights and buffers with and without the inspector: the
    probe puts back the random state (dropout) and the buffers (batch norm) it found."""
    def train(inspected: bool) -> list[torch.Tensor]:
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.3),
                              nn.Linear(8, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        inspector = LoopInspector(model) if inspected else None
        for _ in range(3):
            x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        if inspector is not None:
            assert inspector.probe is not None and inspector.probe.mixing is True
            assert inspector.facts(LoopFacts()).buffers_changed  # training itself moved them
            inspector.close()
        return [t.detach().clone() for t in [*model.parameters(), *model.buffers()]]

    for with_probe, without in zip(train(True), train(False), strict=True):
        assert torch.equal(with_probe, without)


def test_the_probe_says_why_it_could_not_run() -> None:
    same_rows = _probe(nn.Linear(6, 3), torch.ones(4, 6))
    assert not same_rows.ran and "no two different examples" in same_rows.reason

    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
            return x * scale

    inspector = LoopInspector(TwoInputs())
    inspector.model(torch.randn(3, 2, requires_grad=True), scale=torch.ones(3, 2))
    inspector.close()
    assert inspector.probe is not None and inspector.probe.ran  # keyword inputs are passed on
    dict_input = LoopInspector(nn.Linear(2, 2))
    dict_input.model.train()
    dict_input._before_forward(dict_input.model, ({"x": torch.ones(2)},), {})
    assert dict_input.probe is not None and not dict_input.probe.ran
    assert "not a tensor" in dict_input.probe.reason


def test_rows_of_training_passes_are_counted_and_eval_passes_are_not() -> None:
    model = nn.Linear(6, 3)
    inspector = LoopInspector(model)
    model(torch.randn(5, 6))
    model(torch.randn(7, 6))
    with torch.no_grad():
        model(torch.randn(100, 6))
    model.eval()
    model(torch.randn(100, 6))
    assert inspector.take_rows() == 12 and inspector.take_rows() == 0
    inspector.close()
