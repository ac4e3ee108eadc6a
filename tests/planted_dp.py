"""A tiny DP-SGD with planted bugs, to show that the white-box canary audit catches them.

Test support only: the bugs are monkeypatches of the fast path built here, never a setting of
auditml. Usage (``tests`` is on ``pythonpath``)::

    from planted_dp import BUGS, train_planted
    run = train_planted("noise_halved", seed=0)          # or None for the correct mechanism
    run.record        # GradientCanaryRecord: observations (steps, m), coins, q, σ, C as CLAIMED
    run.accountant    # the Opacus accountant as the (buggy) trainer stepped it: the claim
    run.claimed_epsilon

The bugs (each a real mechanism that differs from what the accountant is told):

``noise_halved``          noise std σC/2 while the accountant and the record say σ.
``accountant_half_rate``  batches and canaries are sampled at q; the accountant is told q/2.
``unclipped_parameter``   the last layer's bias is neither clipped nor counted in the norm.
``clip_after_sum``        examples are summed unclipped and the sum is clipped to C.

What gradient canaries can see: a canary is a per-example gradient. With ``canary_norm = C``
(the default) clipping it is a no-op, so the two clipping bugs are invisible to it: in the
buggy mechanisms canaries are therefore passed through the buggy clipping with norm
``canary_norm`` (e.g. ``10 * C``): a correct mechanism clips each to C, ``unclipped_parameter``
lets those that fall in the unclipped bias through at full norm (few of the coordinates: expect
few canaries to show it: the mechanism check's per-tensor sensitivity finds them), and
``clip_after_sum`` clips their sum together with the real examples' to C (which bounds every
step by C: this bug is mostly invisible to canaries whose gradients are not anti-aligned with
the batch's, and Dirac canaries alone do not flag it). What catches it is the clipping probe of
:mod:`auditml.training.clipping_probe`, which needs the optimiser's own clipping: it is tested
on an Opacus loop in ``tests/audit/test_own_loop_planted.py``
(``CanaryAudit(through_clipping=True)``), not in this harness.
The record's ``max_grad_norm`` is always the claimed C.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from opacus.accountants import create_accountant
from opacus.data_loader import DPDataLoader
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.training.dp_sgd import FastDPSGD
from auditml.training.gradient_canaries import GradientCanaries, optimizer_parameters
from toy_models import CLASSES, DIM

BUGS = ("noise_halved", "accountant_half_rate", "unclipped_parameter", "clip_after_sum")


@dataclass(frozen=True)
class PlantedRun:
    bug: str | None
    record: GradientCanaryRecord
    accountant: Any  # opacus IAccountant, stepped with what the trainer believes
    delta: float

    @property
    def claimed_epsilon(self) -> float:
        return float(self.accountant.get_epsilon(delta=self.delta))


def train_planted(
    bug: str | None,
    *,
    seed: int,
    canaries: int = 1000,
    examples: int = 1000,
    sample_rate: float = 0.05,
    epochs: int = 5,
    noise_multiplier: float = 1.0,
    max_grad_norm: float = 1.0,
    canary_norm: float | None = None,
    delta: float = 1e-5,
    accountant: str = "prv",
) -> PlantedRun:
    """Train an MLP (2442 coordinates) on the toy task with DP-SGD and Dirac canaries."""
    if bug is not None and bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}; one of {BUGS}")
    clip = max_grad_norm
    injected = canary_norm if canary_norm is not None and bug in (
        "unclipped_parameter", "clip_after_sum") else clip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        x = torch.from_numpy(rng.normal(size=(examples, DIM)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, CLASSES, examples))
        model = nn.Sequential(nn.Linear(DIM, 128), nn.ReLU(), nn.Linear(128, CLASSES))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        parameters = optimizer_parameters(optimizer)
        gradient_canaries = GradientCanaries(
            parameters, count=canaries, direction="dirac", max_grad_norm=injected,
            sample_rate=sample_rate, noise_multiplier=noise_multiplier, seed=seed,
            dataset_size=examples,
        )
        loader = DPDataLoader.from_data_loader(
            DataLoader(TensorDataset(x, y), batch_size=round(examples * sample_rate))
        )
        mechanism = FastDPSGD(
            model, optimizer,
            noise_multiplier=noise_multiplier * (0.5 if bug == "noise_halved" else 1.0),
            max_grad_norm=clip, expected_batch_size=round(examples * sample_rate),
            canaries=gradient_canaries,
        )
        _plant(bug, mechanism, gradient_canaries, parameters, clip)
        claim = create_accountant(mechanism=accountant)
        claimed_rate = sample_rate / 2 if bug == "accountant_half_rate" else sample_rate
        for _ in range(epochs):
            for inputs, labels in loader:
                loss_sum = nn.functional.cross_entropy(model(inputs), labels, reduction="sum")
                mechanism.step(loss_sum, len(labels))
                claim.step(noise_multiplier=noise_multiplier, sample_rate=claimed_rate)
        mechanism.close()
    record = dataclasses.replace(gradient_canaries.record(), max_grad_norm=clip)
    return PlantedRun(bug, record, claim, delta)


def _plant(
    bug: str | None, mechanism: FastDPSGD, canaries: GradientCanaries,
    parameters: Sequence[torch.Tensor], clip: float,
) -> None:
    if bug == "unclipped_parameter":
        _leave_unclipped(mechanism, canaries, parameters, clip)
    elif bug == "clip_after_sum":
        _clip_after_sum(mechanism, canaries, clip)


def _leave_unclipped(
    mechanism: FastDPSGD, canaries: GradientCanaries, parameters: Sequence[torch.Tensor],
    clip: float,
) -> None:
    """The last layer's bias: left out of the norm and summed unclipped."""
    layers = mechanism.clipper._layers
    name, module, rule = layers[-1]

    def leaky_rule(layer: nn.Module, activation: torch.Tensor, backprop: torch.Tensor) -> Any:
        gradients = rule(layer, activation, backprop)
        bias = gradients["bias"]
        gradients["bias"] = dataclasses.replace(
            bias, squared_norms=torch.zeros_like(bias.squared_norms),
            weighted_sum=lambda scale: bias.weighted_sum(torch.ones_like(scale)),
        )
        return gradients

    layers[-1] = (name, module, leaky_rule)
    # Canaries outside the bias are clipped to C like any example's gradient; inside, not.
    offsets = np.cumsum([0, *[p.numel() for p in parameters]])
    outside = canaries.coordinates < offsets[-2]
    add = canaries.add_to_sums

    def add_clipping_outside(sums: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        result = add(sums)
        sampled = canaries._pending
        assert sampled is not None
        excess = canaries.max_grad_norm - clip
        fixed = [torch.zeros_like(s) for s in result]
        for j in np.flatnonzero(sampled & outside):
            k = int(np.searchsorted(offsets, canaries.coordinates[j], side="right") - 1)
            fixed[k].view(-1)[canaries.coordinates[j] - offsets[k]] -= excess
        return [s + f for s, f in zip(result, fixed, strict=True)]

    canaries.add_to_sums = add_clipping_outside  # type: ignore[method-assign]


def _clip_after_sum(mechanism: FastDPSGD, canaries: GradientCanaries, clip: float) -> None:
    """Examples (real and canaries) summed unclipped; the total clipped to C."""
    clipped_sum = mechanism.clipper.clipped_sum
    mechanism.clipper.clipped_sum = (  # type: ignore[method-assign]
        lambda loss_sum, _: clipped_sum(loss_sum, float("inf"))
    )
    add = canaries.add_to_sums

    def add_then_clip(sums: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        total = add(sums)
        norm = math.sqrt(sum(float((t * t).sum()) for t in total))
        return [t * min(1.0, clip / (norm + 1e-6)) for t in total]

    canaries.add_to_sums = add_then_clip  # type: ignore[method-assign]
