"""Canaries and the clipping probe through an Opacus optimiser's own clipping.

Through a correct per-example clipping, the rows must add to the sum exactly what the module
docstring says (canaries of norm C, the decoy ``C·s·w``, the probe ``−C·s·w``) and nothing else:
checked without noise against the same step without the audit.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from torch import nn

from auditml.errors import ModelError, RunDirectoryError
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.training.clipping_probe import ClippingProbe, attach_through_clipping
from auditml.training.gradient_canaries import GradientCanaries

CLIP = 1.5


def _private(noise: float) -> tuple[nn.Module, Any, torch.utils.data.DataLoader]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    data = torch.utils.data.TensorDataset(torch.randn(40, 6) * 3, torch.randint(0, 3, (40,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = PrivacyEngine().make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=torch.utils.data.DataLoader(data, batch_size=20),
            noise_multiplier=noise, max_grad_norm=CLIP, grad_sample_mode="hooks",
            poisson_sampling=False,
        )
    return model, optimizer, loader


def _sum_of_one_step(audited: bool) -> tuple[list[torch.Tensor], Any, Any]:
    model, optimizer, loader = _private(0.0)
    canaries = GradientCanaries(list(optimizer.params), count=12, direction="dirac",
                                max_grad_norm=CLIP, sample_rate=0.5, noise_multiplier=0.0, seed=3)
    probe = ClippingProbe(list(optimizer.params), seed=3, max_grad_norm=CLIP)
    if audited:
        attach_through_clipping(optimizer, canaries, probe, canary_norm=7.0)
    inputs, labels = next(iter(loader))
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(inputs), labels).backward()
    optimizer.pre_step()  # clip, add the (zero) noise, scale: the update before the SGD step
    scale = optimizer.expected_batch_size
    return [p.grad.detach().clone() * scale for p in optimizer.params], canaries, probe


def test_through_a_correct_clipping_the_rows_add_exactly_their_clipped_selves() -> None:
    plain, _, _ = _sum_of_one_step(False)
    audited, canaries, probe = _sum_of_one_step(True)
    record = canaries.record()
    added = torch.cat([(a - p).flatten() for a, p in zip(audited, plain, strict=True)])
    sampled = record.coordinates[record.sampled[0]]
    assert len(sampled) > 0
    expected = torch.zeros_like(added)
    expected[torch.as_tensor(sampled)] = CLIP  # each sampled canary, clipped from 7 to C
    direction = probe._direction
    along = float((added - expected) @ direction)
    _, coin = probe.arrays()
    # The decoy C·s·w, and with the probe −C·s·w as well: the sum moves along w by C or 0.
    assert abs(along) == pytest.approx(0.0 if coin[0] else CLIP, abs=1e-3)
    residual = added - expected - along * direction
    assert float(residual.norm()) < 1e-3  # nothing else moved
    # The canaries read the audited sum itself at their coordinates.
    flat = torch.cat([a.flatten() for a in audited])
    assert record.observations[0] == pytest.approx(
        flat[torch.as_tensor(record.coordinates)].numpy(), abs=1e-4)


def test_probe_rows_follow_the_seed_and_the_bound() -> None:
    like = [torch.zeros(4, 3, 2), torch.zeros(4, 5)]
    probes = [ClippingProbe([torch.zeros(3, 2), torch.zeros(5)], seed=9, max_grad_norm=2.0)
              for _ in range(2)]
    coins = []
    for _step in range(200):
        rows = [probe.rows(10.0, like) for probe in probes]
        assert all(torch.equal(a, b) for a, b in zip(*rows, strict=True))
        flat = torch.cat([r.reshape(len(r), -1) for r in rows[0]], dim=1)
        assert flat.shape[1] == 11 and len(flat) in (1, 2)
        assert float(flat[0].norm()) == pytest.approx(1000 * 10.0, rel=1e-5)
        if len(flat) == 2:
            assert torch.allclose(flat[1], -2 * flat[0])
        coins.append(len(flat) == 2)
        for probe in probes:
            probe.observe([torch.zeros(3, 2), torch.zeros(5)])
    assert 70 < sum(coins) < 130  # a fair coin, 200 draws
    y, sampled = probes[0].arrays()
    assert y.tolist() == [1.0] * 200 and sampled.tolist() == coins
    with pytest.raises(ModelError, match="never observed"):
        probes[0].rows(1.0, like)
        probes[0].rows(1.0, like)


def test_the_probe_round_trips_in_the_record_and_bad_probes_are_refused(tmp_path: Any) -> None:
    canaries = GradientCanaries([torch.zeros(3, 2)], count=4, direction="dirac", max_grad_norm=1,
                                sample_rate=0.5, noise_multiplier=1.0, seed=0)
    for _ in range(3):
        canaries.observe(canaries.add_to_sums([torch.zeros(3, 2)]))
    record = dataclasses.replace(canaries.record(), probe=np.array([0.5, 1.0, -1.0], np.float32),
                                 probe_sampled=np.array([True, False, True]))
    path = tmp_path / "gradient_canaries.npz"
    record.save(path)
    loaded = GradientCanaryRecord.load(path)
    assert loaded.probe is not None and loaded.probe.tolist() == [0.5, 1.0, -1.0]
    assert loaded.probe_sampled is not None and loaded.probe_sampled.tolist() == [1, 0, 1]
    with np.load(path) as saved:
        arrays = dict(saved)
    for bad in ({"probe": np.zeros(2, np.float32)},
                {"probe": np.array([0, np.nan, 1], np.float32)},
                {"probe": np.zeros(3, np.float64)},
                {"probe_sampled": None}):
        changed = {k: v for k, v in {**arrays, **bad}.items() if v is not None}
        with path.open("wb") as handle:
            np.savez(handle, **changed)
        with pytest.raises(RunDirectoryError, match="probe"):
            GradientCanaryRecord.load(path)
