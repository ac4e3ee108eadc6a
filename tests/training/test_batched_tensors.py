"""The trainer's loader fetches a batch by one indexing per tensor (``BatchedTensors``): the
batches, Poisson ones included, must be exactly those of the per-example fetch it replaces."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from auditml.training.trainer import BatchedTensors, already_batched


def _tensors() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(37, 2, 3, generator=generator), torch.randint(0, 5, (37,),
                                                                   generator=generator)


def _epochs(loader: DataLoader, epochs: int = 3) -> list[list[tuple[torch.Tensor, ...]]]:
    return [[tuple(batch) for batch in loader] for _ in range(epochs)]


def _assert_same(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for got_epoch, expected_epoch in zip(got, expected, strict=True):
        assert len(got_epoch) == len(expected_epoch)
        for got_batch, expected_batch in zip(got_epoch, expected_epoch, strict=True):
            for got_tensor, expected_tensor in zip(got_batch, expected_batch, strict=True):
                assert got_tensor.shape == expected_tensor.shape
                assert got_tensor.dtype == expected_tensor.dtype
                assert torch.equal(got_tensor, expected_tensor)


def test_shuffled_batches_are_those_of_the_per_example_fetch() -> None:
    x, y = _tensors()
    plain = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    batched = DataLoader(BatchedTensors(x, y), batch_size=8, shuffle=True,
                         generator=torch.Generator().manual_seed(0), collate_fn=already_batched)
    _assert_same(_epochs(batched), _epochs(plain))


def test_poisson_batches_empty_ones_included_are_those_of_opacus_loader() -> None:
    from opacus.data_loader import DPDataLoader

    x, y = _tensors()

    def poisson(dataset: TensorDataset, **collate: object) -> DataLoader:
        # 37 examples in batches of 2 (q = 1/19): about one Poisson batch in seven is empty.
        return DPDataLoader.from_data_loader(DataLoader(
            dataset, batch_size=2, generator=torch.Generator().manual_seed(1), **collate))

    expected = _epochs(poisson(TensorDataset(x, y)))
    got = _epochs(poisson(BatchedTensors(x, y), collate_fn=already_batched))
    assert any(len(batch[1]) == 0 for epoch in expected for batch in epoch)
    _assert_same(got, expected)
