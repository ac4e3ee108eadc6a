"""The reference-model engine: balanced keep matrix, reuse, and parallel == serial."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rich.console import Console

from auditml.config import parse_config
from auditml.training import build_run_model
from auditml.training.reference import (
    ReferenceJob,
    ReferenceStore,
    paired_keep,
    train_reference_models,
)


def test_paired_keep_puts_every_example_in_half_the_models() -> None:
    keep = paired_keep(6, 101, seed=3)
    assert keep.shape == (6, 101)
    np.testing.assert_array_equal(keep.sum(axis=0), np.full(101, 3))
    np.testing.assert_array_equal(keep[0], ~keep[1])
    assert set(keep.sum(axis=1)) == {50, 51}
    # Adding models never changes the existing ones.
    np.testing.assert_array_equal(paired_keep(4, 101, seed=3), keep[:4])
    assert not np.array_equal(paired_keep(2, 101, seed=4), keep[:2])


@pytest.mark.slow
def test_store_trains_once_and_reuses(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    config = parse_config(tiny_config(training={"epochs": 1}))
    indices = np.arange(40)
    store = ReferenceStore(tmp_path / "reference" / "audit")
    log = io.StringIO()

    def ensure(count: int) -> Any:
        return store.ensure(
            config, indices, count, lambda: build_run_model(config), workers=1,
            console=Console(file=log, width=200), description="reference models",
        )

    first = ensure(2)
    assert len(first) == 2 and first.keep.shape == (2, 40)
    assert log.getvalue().count("trained") == 2
    again = ensure(2)
    assert log.getvalue().count("trained") == 2  # nothing retrained
    for a, b in zip(first.models, again.models, strict=True):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
    more = ensure(4)
    assert log.getvalue().count("trained") == 4  # only the two new ones
    np.testing.assert_array_equal(more.keep[:2], first.keep)
    np.testing.assert_array_equal(more.keep.sum(axis=0), np.full(40, 2))
    # A different recipe is a different set of models.
    other = parse_config(tiny_config(training={"epochs": 1, "learning_rate": 0.01}))
    store.ensure(other, indices, 2, lambda: build_run_model(other), workers=1,
                 console=Console(file=log, width=200), description="reference models")
    assert log.getvalue().count("trained") == 6


@pytest.mark.slow
def test_parallel_training_equals_serial(tiny_config: Callable[..., dict[str, Any]]) -> None:
    raw = parse_config(tiny_config(training={"epochs": 1})).resolved().model_dump(mode="json")
    # One job with DP-SGD (auditml's fast clipping, Poisson batches, noise from the seed).
    dp = {"epochs": 2, "dp": {"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3}}
    raw_dp = parse_config(tiny_config(training=dp)).resolved().model_dump(mode="json")
    jobs = [ReferenceJob(config, seed, np.arange(seed, seed + 50))
            for config, seed in [(raw, 1), (raw, 2), (raw_dp, 3)]]
    # With as many workers as cores each worker gets one thread; serial training with one
    # thread runs the same kernels in the same order, so the weights agree bit for bit.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = train_reference_models(jobs, workers=1)
    finally:
        torch.set_num_threads(threads)
    parallel = train_reference_models(jobs, workers=max(2, os.cpu_count() or 2))
    for one, other in zip(serial, parallel, strict=True):
        assert one.keys() == other.keys()
        for name in one:
            np.testing.assert_array_equal(one[name], other[name])
