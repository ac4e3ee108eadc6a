"""DP-SGD for the training loop: Opacus's engine, or auditml's own per-example clipping.

Both routes implement one mechanism, Opacus's (Abadi et al., 2016, with Poisson sampling):

1. draw each example into the batch independently with probability ``q = 1 / batches_per_epoch``;
2. clip each example's gradient to norm ``C = max_grad_norm`` (factor ``min(1, C/(||g||+1e-6))``);
3. add ``N(0, (sigma C)^2)`` noise to every coordinate of the sum, then divide by the expected
   batch size ``int(n q)``;
4. let the accountant (Opacus's PRV or RDP) record one step of ``(sigma, q)``.

``grad_sample_mode`` picks how step 2 is computed: ``fast`` (:mod:`.per_example`, one backward
pass, no per-example tensors where a layer allows), or Opacus's ``hooks`` or ``ghost``. Opacus's
``functorch`` and ``ew`` modes are not offered: both fail on the empty batches Poisson sampling
draws. The data loader, noise draws (the global torch RNG, parameter by parameter in optimiser
order) and accountant are Opacus's own in every mode, so the modes differ only in floating point.
``auto`` is resolved to one of them before this module is called, by timing each on the device
(:mod:`.grad_sample_choice`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from auditml.config import DPConfig
from auditml.metrics.dp.accounting import new_accountant, spent_epsilon
from auditml.training.augmentation import average_copies, shifted_copies
from auditml.training.gradient_canaries import GradientCanaries, attach_to_dp_optimizer
from auditml.training.per_example import PerExampleClipper, covered_layers
from auditml.training.privacy import NoisePlan

# (inputs, labels) -> (logits, mean loss over the batch); one optimiser step.
TrainingStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def plain_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module | None = None
) -> TrainingStep:
    """One step without DP: ``criterion`` (cross-entropy by default) of the outputs and the
    targets (:mod:`auditml.training.task`), back-propagated, and the optimiser's step."""
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        return logits, loss.detach()

    return step


@dataclass
class PrivateTraining:
    """What the training loop needs from a DP-SGD set-up, whichever mode computes it."""

    step: TrainingStep
    loader: DataLoader
    epsilon: Callable[[float], float]  # delta -> ε spent so far
    mode: str
    close: Callable[[], None]


def make_private(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    *,
    plan: NoisePlan,
    dp: DPConfig,
    mode: str,
    canaries: GradientCanaries | None = None,
    copies: int = 1,
    augment_seed: int = 0,
    criterion: nn.Module | None = None,
) -> PrivateTraining:
    """Set up DP-SGD on ``model`` in ``mode`` ("fast", or Opacus's "hooks" or "ghost").

    ``canaries`` (drawn over ``optimizer``'s trainable parameters) join every step's clipped sum
    before the noise, in every mode (:mod:`auditml.training.gradient_canaries`). ``copies > 1``
    (``hooks`` only) averages each example's gradient over that many shifted copies before
    clipping, the shifts drawn from a generator seeded with ``augment_seed``
    (:mod:`auditml.training.augmentation`). ``criterion`` is the batch-mean loss
    (cross-entropy by default; a language model's next-token loss, :mod:`.task`); the ``fast``
    mode computes cross-entropy itself and takes no other.
    """
    if copies > 1 and mode != "hooks":
        raise ValueError(f"augmentation multiplicity needs grad_sample_mode hooks, not {mode}")
    # Opacus is imported here, not with the module: a run without DP never pays for it (~2 s).
    from opacus import GradSampleModule, PrivacyEngine

    if mode == "fast":
        if criterion is not None and not isinstance(criterion, nn.CrossEntropyLoss):
            raise ValueError("grad_sample_mode fast computes cross-entropy; use hooks")
        return _fast(model, optimizer, loader, plan, dp, canaries)
    engine = PrivacyEngine(accountant=dp.accountant)
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    made = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader, criterion=criterion,
        noise_multiplier=plan.noise_multiplier, max_grad_norm=dp.max_grad_norm,
        poisson_sampling=True, grad_sample_mode=mode,
    )
    # Ghost clipping returns the criterion wrapped (its backward runs the second pass).
    if mode == "ghost":
        wrapped, private_optimizer, criterion, private_loader = made
    else:
        wrapped, private_optimizer, private_loader = made
    detach_canaries = (
        attach_to_dp_optimizer(private_optimizer, canaries) if canaries is not None else None
    )

    shifts = torch.Generator(device=next(model.parameters()).device).manual_seed(augment_seed)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        private_optimizer.zero_grad(set_to_none=True)
        if canaries is not None:
            canaries.note_batch(len(y))
        if copies > 1 and len(y):
            logits = wrapped(shifted_copies(x, copies, shifts))
            loss = criterion(logits, y.repeat_interleave(copies))
            loss.backward()
            # One row per example again, each the mean of its copies' gradients: then clipped.
            average_copies(wrapped.parameters(), copies)
            private_optimizer.step()
            return logits.view(len(y), copies, -1)[:, 0], loss.detach()
        logits = wrapped(x)
        # A Poisson batch can be empty; it still counts as a step for the accountant.
        loss = criterion(logits, y) if len(y) else logits.sum() * 0.0
        loss.backward()
        private_optimizer.step()
        return logits, loss.detach()

    def close() -> None:
        if isinstance(wrapped, GradSampleModule):
            wrapped.remove_hooks()
        if detach_canaries is not None:
            detach_canaries()

    return PrivateTraining(
        step, private_loader, lambda delta: _spent(spent_epsilon(engine.accountant, delta)),
        mode, close,
    )


def _fast(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    plan: NoisePlan,
    dp: DPConfig,
    canaries: GradientCanaries | None,
) -> PrivateTraining:
    from opacus.data_loader import DPDataLoader

    private_loader = DPDataLoader.from_data_loader(loader)
    sample_rate = 1 / len(private_loader)
    step_with_noise = FastDPSGD(
        model, optimizer, noise_multiplier=plan.noise_multiplier,
        max_grad_norm=dp.max_grad_norm,
        expected_batch_size=int(len(loader.dataset) * sample_rate),  # type: ignore[arg-type]
        canaries=canaries,
    )
    accountant = new_accountant(dp.accountant)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)
        loss_sum = nn.functional.cross_entropy(logits, y, reduction="sum")
        step_with_noise.step(loss_sum, len(y))
        accountant.step(noise_multiplier=plan.noise_multiplier, sample_rate=sample_rate)
        return logits, loss_sum.detach() / max(len(y), 1)

    return PrivateTraining(
        step, private_loader,
        lambda delta: _spent(spent_epsilon(accountant, delta)), "fast", step_with_noise.close,
    )


def _spent(epsilon: float) -> float:
    """The accountant's ε, read as 0 when it is negative: at δ near its allowed maximum (0.1)
    both accountants can report ε < 0 for much noise, and ε ≤ 0 is the same claim as ε = 0."""
    return max(0.0, float(epsilon))


class FastDPSGD:
    """Steps 2-3 of the mechanism with :class:`PerExampleClipper`, then the optimiser's step.

    The result equals Opacus's ``DPOptimizer`` with ``loss_reduction="mean"``: the same clip
    factor, the same noise draws in the same order, the same division by the expected batch size
    (``tests/training/test_dp_sgd.py`` checks it against Opacus to 1e-5).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        canaries: GradientCanaries | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.canaries = canaries
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.clipper = PerExampleClipper(model, covered_layers(model))
        owned = set(self.clipper.parameters)
        # Opacus's optimiser order, which fixes the order of the noise draws.
        self.parameters = [
            p for group in optimizer.param_groups for p in group["params"]
            if p.requires_grad and p in owned
        ]

    def clipped_noised_gradients(self, loss_sum: torch.Tensor, batch_size: int) -> None:
        """Set each parameter's ``.grad`` to ``(sum_i c_i g_i + noise) / expected_batch_size``.

        With canaries, the sampled ones join ``sum_i c_i g_i`` before the noise; they draw from
        their own generators, so the noise is the same as without them.
        """
        if batch_size:
            sums, _ = self.clipper.clipped_sum(loss_sum, self.max_grad_norm)
        else:
            self.clipper.discard()
            sums = {}
        summed = [sums[p] if p in sums else torch.zeros_like(p) for p in self.parameters]
        if self.canaries is not None:
            self.canaries.note_batch(batch_size)
            summed = self.canaries.add_to_sums(summed)
        std = self.noise_multiplier * self.max_grad_norm
        if std > 0:
            summed = [
                s + torch.normal(mean=0, std=std, size=p.shape, device=p.device)
                for p, s in zip(self.parameters, summed, strict=True)
            ]
        if self.canaries is not None:
            self.canaries.observe(summed)
        for parameter, noisy in zip(self.parameters, summed, strict=True):
            parameter.grad = noisy / self.expected_batch_size
        if self.canaries is not None:
            self.canaries.note_applied([p.grad for p in self.parameters])

    def step(self, loss_sum: torch.Tensor, batch_size: int) -> None:
        self.clipped_noised_gradients(loss_sum, batch_size)
        if self.canaries is not None:
            self.canaries.before_update()
        self.optimizer.step()
        if self.canaries is not None:
            self.canaries.after_update()

    def close(self) -> None:
        self.clipper.close()
