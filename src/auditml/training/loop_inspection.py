"""What a DP-SGD loop does besides its noisy sums: its loader, its engine, its model's hidden state.

The accountant's ε is the privacy of one mechanism: Poisson-sampled batches, each example's
clipped gradient in one noisy sum, nothing else released. Much of what breaks that is visible
before or at the first step, without statistics:

- **the loader** (:func:`describe_loader`): an Opacus ``DPDataLoader`` draws Poisson batches at
  its ``sample_rate``; a plain ``DataLoader`` draws fixed-size batches (shuffled, in order, or by
  a weighted sampler), whatever the accountant was told;
- **the model** (:func:`mixing_layers`, :func:`running_stat_layers`): batch normalisation mixes
  the examples of a batch in training mode and keeps running statistics of the private data in
  its buffers. Opacus's validator only looks at layers with trainable parameters, so a
  ``BatchNorm(affine=False)`` or a frozen one passes it;
- **the first batch, run twice** (:class:`LoopInspector`): the model's training-mode outputs on
  the loop's own first batch, and again with one example replaced by another of the batch. If
  any *other* example's output moves, some layer mixes examples, whatever it is (a custom layer
  no list names); any buffer the forward pass changed is state kept from private data outside
  the clipped, noised gradients. The two passes run without gradients, from the same random
  state (dropout draws the same masks), and the probe puts back the buffers and the random state
  it found, so training goes on exactly as without it.

All of it ends in a :class:`~auditml.records.LoopFacts`; the checks that turn facts into findings
live in :mod:`auditml.audit.canaries.assumptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from auditml.records import HiddenStateProbe, LoopFacts

# Layers that normalise over the batch in training mode (every BatchNorm; SyncBatchNorm too).
_MIXING_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
# A change of another example's output above this share of the outputs' scale is mixing; the same
# rows through the same kernels agree to rounding (1e-7 relative), so this leaves a wide margin.
_MIXING_TOLERANCE = 1e-4


def describe_loader(loader: Any) -> dict[str, Any]:
    """The :class:`~auditml.records.LoopFacts` fields a data loader shows: how its batches are
    sampled (in words), whether that is Poisson sampling and at what rate, the number of
    examples it draws from and its length (steps per epoch)."""
    facts: dict[str, Any] = {}
    dataset = getattr(loader, "dataset", None)
    try:
        facts["dataset_size"] = len(dataset) if dataset is not None else None  # type: ignore[arg-type]
    except TypeError:
        facts["dataset_size"] = None
    try:
        facts["steps_per_epoch"] = len(loader) or None
    except TypeError:
        facts["steps_per_epoch"] = None
    batch_sampler = getattr(loader, "batch_sampler", None)
    sampler = getattr(batch_sampler, "sampler", None)
    from opacus.utils.batch_memory_manager import BatchSplittingSampler
    from opacus.utils.uniform_sampler import (
        DistributedUniformWithReplacementSampler,
        UniformWithReplacementSampler,
    )

    poisson = (UniformWithReplacementSampler, DistributedUniformWithReplacementSampler)
    if isinstance(batch_sampler, BatchSplittingSampler):  # BatchMemoryManager's physical batches
        batch_sampler, sampler = sampler, None
    if isinstance(batch_sampler, poisson):
        facts.update(
            loader=f"Poisson sampling ({type(batch_sampler).__name__}) at rate "
                   f"{batch_sampler.sample_rate:.4g}",
            sampling="poisson", loader_rate=float(batch_sampler.sample_rate),
        )
        if isinstance(batch_sampler, UniformWithReplacementSampler):
            facts["dataset_size"] = int(batch_sampler.num_samples)
        return facts
    size = getattr(batch_sampler, "batch_size", None) or getattr(loader, "batch_size", None)
    drop_last = bool(getattr(batch_sampler, "drop_last", getattr(loader, "drop_last", False)))
    sampling, words = _FIXED_SIZE_SAMPLERS.get(type(sampler).__name__, ("other", None))
    named = words or f"{type(sampler).__name__ or 'custom'}-sampled"
    facts["sampling"] = sampling
    facts["loader"] = (
        f"batches from a {type(batch_sampler).__name__} (not Opacus's Poisson sampler)"
        if size is None else
        f"{named} fixed-size batches of {size}" + (" (drop_last)" if drop_last else "")
        + f" ({type(sampler).__name__})"
    )
    return facts


# torch's samplers behind a fixed-size BatchSampler: how they order the examples, in words.
_FIXED_SIZE_SAMPLERS = {
    "RandomSampler": ("shuffled", "shuffled"),
    "SubsetRandomSampler": ("shuffled", "shuffled-subset"),
    "SequentialSampler": ("in_order", "in-order"),
    "WeightedRandomSampler": ("weighted", "weighted-sampler"),
}


def mixing_layers(model: nn.Module) -> list[str]:
    """``"path: Type"`` of every layer that normalises over the batch in training mode, trainable
    or not (Opacus's validator skips the layers without trainable parameters)."""
    return _layers(model, lambda module: isinstance(module, _MIXING_TYPES))


def running_stat_layers(model: nn.Module) -> list[str]:
    """``"path: Type"`` of every layer that keeps running statistics of its inputs in buffers."""
    return _layers(model, lambda module: bool(getattr(module, "track_running_stats", False)))


def _layers(model: nn.Module, chosen: Callable[[nn.Module], bool]) -> list[str]:
    """``"path: Type"`` of the user's layers (inside Opacus's GradSampleModule) ``chosen`` picks."""
    inner = getattr(model, "_module", None)
    user = inner if isinstance(inner, nn.Module) else model
    return [f"{name or '(model)'}: {type(module).__name__}"
            for name, module in user.named_modules() if chosen(module)]


# Coordinates read of each parameter outside the DP optimiser.
_OUTSIDE_COORDINATES = 16


def _spaced(size: int) -> torch.Tensor:
    """Up to :data:`_OUTSIDE_COORDINATES` evenly spaced flat indices of a tensor of ``size``."""
    return torch.linspace(0, max(size - 1, 0), min(size, _OUTSIDE_COORDINATES)).long()


class LoopInspector:
    """Inspects ``model`` while the loop trains it: the first-batch probe (module docstring), the
    rows of each training forward pass (a batch size where the optimiser keeps no per-example
    rows), and the buffers at the start and the end. ``close()`` removes its hook."""

    def __init__(self, model: nn.Module, tracked: Sequence[torch.Tensor] = ()) -> None:
        self.model = model
        self._start = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
        # The parameters outside the DP optimiser (``tracked``: its own), frozen or not: a few
        # evenly spaced coordinates of each, to see whether anything trained them meanwhile.
        ids = {id(parameter) for parameter in tracked}
        self._outside = {
            name: (index, parameter.detach().reshape(-1)[index].clone())
            for name, parameter in model.named_parameters() if id(parameter) not in ids
            for index in [_spaced(parameter.numel())]
        }
        self.probe: HiddenStateProbe | None = None
        self.rows = 0
        self._probing = False
        self._handle = model.register_forward_pre_hook(self._before_forward, with_kwargs=True)

    def take_rows(self) -> int:
        """The examples of the training forward passes since the last call (then reset)."""
        rows, self.rows = self.rows, 0
        return rows

    def facts(self, static: LoopFacts) -> LoopFacts:
        """``static`` (what was seen without training) with what watching the model added: the
        first-batch probe and the buffers that changed since the inspector was attached."""
        changed = [name for name, buffer in self.model.named_buffers()
                   if name in self._start and not torch.equal(buffer.detach(), self._start[name])]
        parameters = dict(self.model.named_parameters())
        outside = [name for name, (index, start) in self._outside.items()
                   if name in parameters and not torch.equal(
                       parameters[name].detach().reshape(-1)[index], start)]
        return static.model_copy(update={
            "outside_changed": outside,
            "probe": self.probe or HiddenStateProbe(
                ran=False, reason="the model ran no training forward pass of two or more "
                "examples while it was watched"),
            "buffers_changed": changed,
        })

    def close(self) -> None:
        self._handle.remove()

    def _before_forward(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._probing or not (module.training and torch.is_grad_enabled()):
            return
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.dim() > 0:
            self.rows += len(first)
        # A Poisson batch can be empty or hold one example: nothing to compare there, so the
        # probe waits for the first batch of two or more.
        small = isinstance(first, torch.Tensor) and first.dim() > 0 and len(first) < 2
        if self.probe is None and not small:
            self.probe = self._run_probe(module, args, kwargs)

    def _run_probe(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> HiddenStateProbe:
        first = args[0] if args else None
        if not isinstance(first, torch.Tensor) or first.dim() == 0:
            return HiddenStateProbe(ran=False, reason="the model's first input is not a tensor")
        batch = len(first)
        other = _differing_row(first)
        if other is None:
            return HiddenStateProbe(ran=False, reason=f"the first training batch ({batch} "
                                    "examples) has no two different examples", batch=batch)
        changed = first.clone()
        changed[0] = first[other]
        buffers = {name: b.detach().clone() for name, b in module.named_buffers()}

        def put_back_buffers() -> None:
            with torch.no_grad():
                for name, b in module.named_buffers():
                    b.copy_(buffers[name])

        self._probing = True
        try:
            with torch.no_grad(), _SameRandomness(first.device) as replay:
                before = _first_tensor(module(first, *args[1:], **kwargs))
                updated = [name for name, b in module.named_buffers()
                           if not torch.equal(b.detach(), buffers[name])]
                put_back_buffers()
                replay()
                after = _first_tensor(module(changed, *args[1:], **kwargs))
        except Exception as error:  # the probe must never break the user's training
            return HiddenStateProbe(
                ran=False, batch=batch,
                reason=f"the model could not be run again on its first batch "
                       f"({type(error).__name__}: {str(error)[:120]})")
        finally:
            self._probing = False
            put_back_buffers()
        if before is None or after is None or before.shape != after.shape or len(before) != batch:
            return HiddenStateProbe(
                ran=False, batch=batch, buffers_updated=updated,
                reason="the model's output is not one tensor with a row per example")
        rest = slice(1, None)
        scale = float(before[rest].abs().max()) if batch > 1 else 0.0
        change = float((before[rest] - after[rest]).abs().max()) / max(scale, 1e-12)
        return HiddenStateProbe(
            ran=True, batch=batch, mixing=change > _MIXING_TOLERANCE, max_change=change,
            buffers_updated=updated,
            reason=f"the first training batch ({batch} examples), its example 0 replaced by "
                   f"its example {other}",
        )


def _differing_row(batch: torch.Tensor) -> int | None:
    """An index of a row of ``batch`` that differs from row 0 (None if all are equal)."""
    flat = batch.reshape(len(batch), -1)
    differs = (flat[1:] != flat[:1]).any(dim=1).nonzero()
    return int(differs[0]) + 1 if len(differs) else None


def _first_tensor(output: Any) -> torch.Tensor | None:
    """The model's output tensor (the first of a tuple or of a mapping, e.g. logits)."""
    if isinstance(output, torch.Tensor):
        return output.detach().float()
    values = list(output.values()) if isinstance(output, dict) else (
        list(output) if isinstance(output, tuple | list) else [])
    return next((_first_tensor(v) for v in values if isinstance(v, torch.Tensor)), None)


class _SameRandomness:
    """Run the probe's two passes from one random state, and leave the state as it was found."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def __enter__(self) -> Callable[[], None]:
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(self.device) if self.cuda else None
        return self._restore

    def _restore(self) -> None:
        torch.set_rng_state(self.cpu_state)
        if self.cuda_state is not None:
            torch.cuda.set_rng_state(self.cuda_state, self.device)

    def __exit__(self, *exc: object) -> None:
        self._restore()


def static_facts(
    *, model: nn.Module | None = None, loader: Any = None, secure_rng: bool | None = None,
    clipping: str | None = None,
) -> LoopFacts:
    """The facts seen without training: the loader's sampling, the model's layers, the engine's
    noise source (each left unknown where its object is not given), and where the canaries join
    the clipped sum (:attr:`auditml.records.LoopFacts.clipping`)."""
    fields: dict[str, Any] = {"secure_rng": secure_rng, "clipping": clipping}
    if loader is not None:
        fields.update(describe_loader(loader))
    if model is not None:
        fields.update(mixing_layers=mixing_layers(model), running_stats=running_stat_layers(model))
    return LoopFacts(**fields)
