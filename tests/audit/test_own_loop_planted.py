"""Canaries through the optimiser's own clipping (``CanaryAudit(through_clipping=True)``): an
Opacus loop whose ``DPOptimizer`` clips wrongly is caught, a correct one is not.

The harness: Opacus ``hooks`` on the toy MLP of ``tests/planted_dp.py`` (2442 coordinates,
1000 examples with random labels, q = 0.05, σ = 1, C = 1, 20 epochs = 400 steps), with the
bug planted as a ``DPOptimizer`` subclass:

- ``clip_after_sum``: the per-example gradients are summed unclipped and the sum clipped to C.
- ``unclipped_bias``: the last layer's bias is left out of the norm and summed unclipped.

The design's predictions (module docstring of :mod:`auditml.training.clipping_probe`): the
probe's centred observation has mean 1 (correct) or ≈ 2 (``clip_after_sum``) when the probe is
in, 0 when not, and noise of std σ = 1, so over 400 steps its sensitivity estimate has a
standard error of ≈ 2σ/√T = 0.1. The check's share of the 1 % (the noise, the rate and the
sensitivity parts; the probe and the 4 tensors) puts the lower bound ≈ 3.1 standard errors
below the estimate: ≈ 1.7 under ``clip_after_sum`` (flagged: above 1, and DP-SGD at σ/1.7 has
far more than the claimed ε), ≈ 0.7 under a correct clipping (not flagged; it would be, by the
theorem, in at most 1 % of runs). ``unclipped_bias`` lets the probe's rows of norm
b ≥ 1000 C through the bias coordinates, and the canaries there at 10 C: its estimate is
orders of magnitude above 1. Measured over seeds 0–9 (seeds 0–2 here): correct, never flagged,
the probe's estimate 0.79–1.17 and lower bound 0.48–0.84; ``clip_after_sum`` flagged in 10 of
10, estimate 1.79–2.14, lower bound 1.48–1.82; ``unclipped_bias`` flagged in 10 of 10, lower
bound ≥ 870.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from opacus import PrivacyEngine
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _mark_as_processed
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import auditml
from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.white_box import AllIteratesAudit
from auditml.audit.own_loop import CanaryAuditResult
from auditml.errors import ConfigError, ModelError
from auditml.records import RunFacts
from toy_models import CLASSES, DIM

pytestmark = pytest.mark.slow
DELTA = 1e-5


class ClipAfterSum(DPOptimizer):
    """The bug: ``clip(Σ g_i)`` instead of ``Σ clip(g_i)``."""

    def clip_and_accumulate(self) -> None:
        total = [self._get_flat_grad_sample(p).sum(0) for p in self.params]
        norm = math.sqrt(sum(float((t * t).sum()) for t in total))
        factor = min(1.0, self.max_grad_norm / (norm + 1e-6))
        for p, t in zip(self.params, total, strict=True):
            p.summed_grad = t * factor if p.summed_grad is None else p.summed_grad + t * factor
            _mark_as_processed(p.grad_sample)


class UnclippedBias(DPOptimizer):
    """The bug: the last parameter (the output bias) is neither in the norm nor clipped."""

    def clip_and_accumulate(self) -> None:
        samples = [self._get_flat_grad_sample(p) for p in self.params]
        norms = torch.stack([g.reshape(len(g), -1).norm(dim=1) for g in samples[:-1]]).norm(dim=0)
        factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        for p, g, last in zip(self.params, samples, [False] * (len(samples) - 1) + [True],
                              strict=True):
            grad = g.sum(0) if last else torch.einsum("i,i...", factor, g)
            p.summed_grad = grad if p.summed_grad is None else p.summed_grad + grad
            _mark_as_processed(p.grad_sample)


BUGS = {"clip_after_sum": ClipAfterSum, "unclipped_bias": UnclippedBias}


def _train(
    bug: str | None, seed: int, *, epochs: int = 20, through_clipping: bool = True,
) -> tuple[auditml.CanaryAudit, PrivacyEngine]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(1000, DIM)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, CLASSES, 1000))
    model = nn.Sequential(nn.Linear(DIM, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    engine = PrivacyEngine(accountant="prv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            data_loader=DataLoader(TensorDataset(x, y), batch_size=50),
            noise_multiplier=1.0, max_grad_norm=1.0, grad_sample_mode="hooks",
        )
    if bug is not None:
        optimizer.__class__ = BUGS[bug]
    audit = auditml.CanaryAudit(optimizer, count=1000, seed=seed, dataset_size=1000,
                                through_clipping=through_clipping)
    for _ in range(epochs):
        for inputs, labels in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs), labels).backward()
            optimizer.step()
    return audit, engine


def _result(bug: str | None, seed: int) -> CanaryAuditResult:
    audit, engine = _train(bug, seed)
    return audit.result(engine, delta=DELTA)


def _weakened(bug: str | None, seed: int) -> CanaryAuditResult:
    """The same audit with the probe's observations thrown away (canaries alone)."""
    audit, engine = _train(bug, seed)
    record = dataclasses.replace(audit._record(), probe=None, probe_sampled=None)
    claimed = float(engine.accountant.get_epsilon(delta=DELTA))
    evidence = CanaryEvidence(
        model=None, device=torch.device("cpu"), delta=DELTA,
        run_facts=RunFacts(experiment_name="weakened", dp_enabled=True, epsilon=claimed,
                           delta=DELTA),
        gradient_canaries=record,
        claim=PrivacyClaim(engine.accountant.mechanism(), list(engine.accountant.history),
                           claimed, DELTA),
    )
    canary = AllIteratesAudit().run(evidence)
    return CanaryAuditResult(canary.epsilon_lower_bound, claimed, bool(canary.violation),
                             "all_iterates", canary)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clipping_after_the_sum_is_caught_by_the_probe(seed: int) -> None:
    result = _result("clip_after_sum", seed)
    check = result.record.mechanism_check
    assert check is not None and check.sensitivity.probe is True
    assert check.sensitivity.estimate > 1.6 and check.sensitivity.lower > 1.2
    assert check.violation is True and result.violation is True


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_correct_clipping_is_consistent(seed: int) -> None:
    result = _result(None, seed)
    check = result.record.mechanism_check
    assert check is not None and check.violation is False and result.violation is False
    assert check.sensitivity.lower < 1.0
    # Correct per-example clipping turns the canaries of norm 10 into canaries of norm 1.
    assert check.noise.estimate == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1])
def test_without_the_probe_clipping_after_the_sum_goes_unseen(seed: int) -> None:
    # The weakened audit (the canaries alone) misses what the probe catches.
    result = _weakened("clip_after_sum", seed)
    assert result.violation is False
    check = result.record.mechanism_check
    assert check is not None and not check.sensitivity.probe


def test_a_parameter_left_unclipped_is_caught() -> None:
    result = _result("unclipped_bias", 0)
    check = result.record.mechanism_check
    assert check is not None and check.sensitivity.lower > 5
    assert result.violation is True


def test_a_correct_loop_reads_the_same_through_the_clipping() -> None:
    # Through a correct clipping the canaries arrive with norm C exactly as when added after it.
    through, _ = _train(None, 0, epochs=2)
    after, _ = _train(None, 0, epochs=2, through_clipping=False)
    a, b = through._record(), after._record()
    assert np.array_equal(a.sampled, b.sampled) and np.array_equal(a.included, b.included)
    assert a.probe is not None and a.probe_sampled is not None and b.probe is None
    for record in (a, b):  # a sampled canary moves its coordinate by C = 1 (noise std 1)
        moved = record.observations[record.sampled].mean() - record.observations[
            ~record.sampled & record.included].mean()
        assert moved == pytest.approx(1.0, abs=0.3)
    assert len(a.probe) == a.steps and 0.3 < a.probe_sampled.mean() < 0.7


def test_through_clipping_refusals() -> None:
    model = nn.Sequential(nn.Linear(DIM, 4))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, optimizer, _ = engine.make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            data_loader=DataLoader(TensorDataset(torch.zeros(10, DIM),
                                                 torch.zeros(10, dtype=torch.long)),
                                   batch_size=5),
            noise_multiplier=1.0, max_grad_norm=1.0,
        )
    with pytest.raises(ConfigError, match="canary_norm"):
        auditml.CanaryAudit(optimizer, count=10, through_clipping=True, canary_norm=0.5)
    with pytest.raises(ConfigError, match="dirac"):
        auditml.CanaryAudit(optimizer, count=10, through_clipping=True,
                            direction="random_direction")
    auditml.CanaryAudit(optimizer, count=10, through_clipping=True)
    with pytest.raises(ModelError, match="already carries"):
        auditml.CanaryAudit(optimizer, count=10, through_clipping=True)
    ghost, layer = PrivacyEngine(), nn.Sequential(nn.Linear(DIM, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, optimizer, _, _ = ghost.make_private(
            module=layer, optimizer=torch.optim.SGD(layer.parameters(), lr=0.1),
            criterion=nn.CrossEntropyLoss(),
            data_loader=DataLoader(TensorDataset(torch.zeros(10, DIM),
                                                 torch.zeros(10, dtype=torch.long)),
                                   batch_size=5),
            noise_multiplier=1.0, max_grad_norm=1.0, grad_sample_mode="ghost",
        )
    with pytest.raises(ConfigError, match="grad_sample_mode='hooks'"):
        auditml.CanaryAudit(optimizer, count=10, through_clipping=True)


def test_micro_batches_read_as_the_whole_batch() -> None:
    # Opacus's BatchMemoryManager clips a logical batch in several calls and adds the noise once:
    # the canaries and the probe go in once per noisy step, so the record is the same.
    from opacus.utils.batch_memory_manager import BatchMemoryManager

    def record(physical: int | None) -> Any:
        torch.manual_seed(0)
        x, y = torch.randn(400, 20), torch.randint(0, 4, (400,))
        model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, optimizer, loader = PrivacyEngine().make_private(
                module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                data_loader=DataLoader(TensorDataset(x, y), batch_size=80),
                noise_multiplier=1.0, max_grad_norm=1.0, grad_sample_mode="hooks",
                noise_generator=torch.Generator().manual_seed(1),
            )
            audit = auditml.CanaryAudit(optimizer, count=50, seed=0, dataset_size=400,
                                        through_clipping=True)
            for _ in range(3):
                with BatchMemoryManager(data_loader=loader, optimizer=optimizer,
                                        max_physical_batch_size=physical or 400) as batches:
                    for inputs, labels in batches:
                        optimizer.zero_grad()
                        nn.functional.cross_entropy(model(inputs), labels).backward()
                        optimizer.step()
        return audit._record()

    whole, split = record(None), record(16)
    assert whole.steps == split.steps == 15
    assert split.batch_sizes is not None and max(split.batch_sizes) > 16  # it was split
    assert np.array_equal(whole.sampled, split.sampled)
    assert np.array_equal(whole.batch_sizes, split.batch_sizes)
    assert np.allclose(whole.observations, split.observations, atol=1e-4)
    assert whole.probe is not None and split.probe is not None
    assert np.allclose(whole.probe, split.probe, atol=1e-4)
