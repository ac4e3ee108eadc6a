"""Gradient canaries (white-box audits): inject them into DP-SGD's clipped sum, record the result.

A canary ``j`` is the fixed gradient ``C·u_j`` with ``C = max_grad_norm`` and ``‖u_j‖ = 1``, over
the model's trainable parameters flattened in optimiser order (Nasr et al. 2021, 2023: the
strongest canary the mechanism allows is a gradient of exactly the clipping norm, since the
auditor need not find an input that produces it). ``dirac`` puts ``u_j`` on one coordinate, drawn
without replacement; ``random_direction`` draws ``u_j`` uniformly on the sphere from
``(seed, j)`` whenever it is needed, so the ``m × d`` directions are never stored.

Each canary's fair coin (``included``) is drawn from the seed once. At every DP-SGD step each
included canary is Poisson-sampled with the real examples' rate ``q`` (its own generator: the data
loader's draws and the noise draws are untouched, so the same seed gives the same noise with or
without canaries), and the sampled canaries' gradients are added to the clipped sum *before* the
noise, exactly as a real example's clipped gradient would be. The accountant is not touched: the
canaries are part of the dataset it accounts for (each changes one example's gradient by at most
``C``). After the noise, the noisy sum's projection on every ``u_j`` is recorded (the all-iterates
threat model), and the weights' projections at the start and the end (the last iterate).

One :class:`GradientCanaries` serves the three ``grad_sample_mode``: the fast path calls
:meth:`~GradientCanaries.add_to_sums` and :meth:`~GradientCanaries.observe` itself; for Opacus's
optimisers (``hooks``, ``ghost``, or a user's own loop) :func:`attach_to_dp_optimizer` wraps the
optimiser's ``add_noise``, which both keep the clipped sum in ``p.summed_grad`` for.

Cost per step: ``dirac`` gathers ``m`` coordinates (``O(m)``); ``random_direction`` regenerates
every direction to project on it (``O(m·d)``, on the CPU), which is slow for large models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from auditml.errors import ConfigError, ModelError
from auditml.gradient_canary_record import DIRECTIONS, GradientCanaryRecord, tensor_owners

# Independent streams of the canaries' seed, so that e.g. changing m keeps the coins' stream.
_COINS, _SAMPLING, _DIRECTIONS = 1, 2, 3
# Random directions are projected in blocks of at most this many floats (m × d never at once).
_BLOCK_FLOATS = 1 << 24
# Dirac canaries on a model of at most this many coordinates work on one flat copy of the sums.
_FLAT_DIMENSION = 1 << 20
# The divisor of a step is read off this many coordinates of its noisy sum (each carries noise, so
# the ratio is exact to rounding; a few hundred make it robust to coordinates that are 0).
_DIVISOR_COORDINATES = 256
# More canaries than this is no plan: every step regenerates and projects on each of them (10^7
# random directions took minutes to set up on a 15-parameter model; 10^12 would not fit in memory).
MAX_CANARIES = 100_000
# Coordinates of each trainable tensor read around every update (evenly spaced): an update made
# outside the DP optimiser (a second optimiser, a manual step) moves nearly all of a tensor's.
_WATCHED_PER_TENSOR = 16


class GradientCanaries:
    """``count`` gradient canaries over ``parameters`` (in optimiser order).

    Create it before training (it records the weights' initial projections), call
    :meth:`add_to_sums` with each step's clipped sums before the noise and :meth:`observe` with
    the noisy sums, and :meth:`record` after training.
    """

    def __init__(
        self,
        parameters: Sequence[torch.Tensor],
        *,
        count: int,
        direction: str,
        max_grad_norm: float,
        sample_rate: float,
        noise_multiplier: float,
        seed: int,
        dataset_size: int = 0,
    ) -> None:
        self.parameters = list(parameters)
        sizes = [p.numel() for p in self.parameters]
        dimension = sum(sizes)
        if direction not in DIRECTIONS:
            raise ConfigError(
                f"gradient canary direction must be one of {', '.join(DIRECTIONS)}, got "
                f"{direction!r}"
            )
        if not 1 <= count <= MAX_CANARIES:
            raise ConfigError(f"gradient canaries: count must be in [1, {MAX_CANARIES:,}], got "
                              f"{count}")
        if direction == "dirac" and count > dimension:
            raise ConfigError(
                f"{count} dirac canaries need as many trainable coordinates, the model has "
                f"{dimension}; use fewer canaries or direction: random_direction"
            )
        if not (0 < sample_rate <= 1) or not (max_grad_norm > 0) or not (noise_multiplier >= 0):
            raise ConfigError(
                f"gradient canaries need 0 < sample_rate <= 1, max_grad_norm > 0 and "
                f"noise_multiplier >= 0, got {sample_rate}, {max_grad_norm}, {noise_multiplier}"
            )
        self.count, self.direction, self.seed = count, direction, seed
        self.max_grad_norm, self.sample_rate = float(max_grad_norm), float(sample_rate)
        self.noise_multiplier = float(noise_multiplier)
        self.included = np.random.default_rng([seed, _COINS]).random(count) < 0.5
        self._sampling = np.random.default_rng([seed, _SAMPLING])
        self._directions: _Dirac | _RandomDirections
        if direction == "dirac":
            coordinates = np.random.default_rng([seed, _DIRECTIONS]).choice(
                dimension, size=count, replace=False
            ).astype(np.int64)
            self._directions = _Dirac(sizes, coordinates)
        else:
            self._directions = _RandomDirections(sizes, seed, count)
        self.initial = self._project_weights()
        self._observations: list[torch.Tensor] = []
        self._sampled: list[np.ndarray] = []
        self._pending: np.ndarray | None = None
        # The real batches: the evidence of the sampling-rate check (0 = dataset size unknown).
        self.dataset_size = int(dataset_size)
        self._batch_sizes: list[int] = []
        self._batch: int = -1
        # What each noisy sum was divided by before it was applied (normalisation check).
        self._divisors: list[float] = []
        self._rates: list[float] = []
        self._noisy_head: torch.Tensor | None = None
        # The updates check: a few coordinates of each tensor as the last noisy update left
        # them, and, per update, whether they had changed since (by code outside the optimiser).
        self._watched = [
            torch.linspace(0, p.numel() - 1, min(p.numel(), _WATCHED_PER_TENSOR),
                           device=p.device).long()
            for p in self.parameters
        ]
        self._after_update: list[torch.Tensor] | None = None
        self._changed_outside: list[bool] = []
        self._changed_tensors = np.zeros(len(self.parameters), np.int64)

    @property
    def coordinates(self) -> np.ndarray:
        """Each Dirac canary's flat coordinate (empty for random directions)."""
        if isinstance(self._directions, _Dirac):
            return self._directions.coordinates
        return np.empty(0, np.int64)

    def dirac_rows(
        self, sampled: np.ndarray, norm: float, like: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The ``sampled`` Dirac canaries as per-example gradients of norm ``norm``: one row
        each (in canary order), as per-parameter blocks ``(rows, *shape)`` on ``like``'s
        devices and dtypes (:mod:`auditml.training.clipping_probe` clips them)."""
        if not isinstance(self._directions, _Dirac):
            raise ModelError("only Dirac canaries can be given as per-example rows")
        return self._directions.rows(sampled, norm, like)

    def note_batch(self, size: int) -> None:
        """Say how many real examples this step's clipped sum holds (kept with the step at
        :meth:`observe`; a step never noted is recorded as unknown)."""
        self._batch = int(size)

    def add_to_sums(self, sums: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Draw this step's canaries and return ``sums`` plus the sampled canaries' gradients.

        ``sums`` are the clipped per-parameter sums in optimiser order; they are not changed in
        place (a parameter no sampled canary touches keeps its tensor).
        """
        self._check(sums)
        sampled = self.draw()
        if not sampled.any():
            return list(sums)
        return self._directions.add(sums, sampled, self.max_grad_norm)

    def draw(self) -> np.ndarray:
        """Draw which canaries this step's sum holds (Poisson at ``q``, included ones only);
        :meth:`observe` records the step. :meth:`add_to_sums` calls it; a caller that puts
        the canaries in itself (:mod:`auditml.training.clipping_probe`) calls it directly."""
        if self._pending is not None:
            raise ModelError("gradient canaries: a step was injected but its noisy sum was "
                             "never observed; call observe() after the noise")
        self._pending = (self._sampling.random(self.count) < self.sample_rate) & self.included
        return self._pending

    def observe(self, noisy_sums: Sequence[torch.Tensor]) -> None:
        """Record the projections of this step's noisy sums (after the noise, before the
        division by the expected batch size) on every canary's direction."""
        self._check(noisy_sums)
        if self._pending is None:
            raise ModelError("gradient canaries: observe() without add_to_sums() for the step")
        with torch.no_grad():
            self._observations.append(self._directions.project(noisy_sums))
        self._sampled.append(self._pending)
        self._pending = None
        self._batch_sizes.append(self._batch)
        self._batch = -1
        self._divisors.append(float("nan"))
        self._rates.append(float("nan"))
        self._noisy_head = _head(noisy_sums)

    def note_applied(self, gradients: Sequence[torch.Tensor]) -> None:
        """Say what the optimiser applies for the step :meth:`observe` recorded last (its
        gradients after the normalisation): the step's divisor is kept, the least-squares ratio
        of the noisy sum to them on the first coordinates. A second call for the same step, or
        one before any step, is ignored."""
        if self._noisy_head is None or not gradients:
            return
        noisy, self._noisy_head = self._noisy_head, None
        applied = _head(gradients)
        if applied.shape != noisy.shape or applied.dtype != noisy.dtype:
            return
        # Single precision is plenty: two sums of 256 products agree with float64 to ~1e-6,
        # a thousandth of what the normalisation check tells apart.
        overlap, energy = float(noisy @ applied), float(noisy @ noisy)
        if overlap != 0 and np.isfinite(overlap):
            self._divisors[-1] = energy / overlap

    def note_rate(self, rate: object) -> None:
        """Say the learning rate the optimiser applies the last observed step with (a step of
        plain SGD moves the weights by it times the normalised sum: a rate that follows the
        batch's size is a normalisation by it)."""
        if self._rates and isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0:
            self._rates[-1] = float(rate)

    def before_update(self) -> None:
        """Call just before the optimiser applies a noisy update: notes whether the weights
        changed since the last one (nothing but the noisy updates should move them)."""
        changed = self._changed_since_update()
        self._changed_tensors += changed
        self._changed_outside.append(bool(changed.any()))

    def after_update(self) -> None:
        """Call just after the optimiser applied a noisy update."""
        self._after_update = self._read_watched()

    def _read_watched(self) -> list[torch.Tensor]:
        with torch.no_grad():  # advanced indexing copies: what the weights are now
            return [p.detach().reshape(-1)[index]
                    for p, index in zip(self.parameters, self._watched, strict=True)]

    def _changed_since_update(self) -> np.ndarray:
        """Per tensor, whether its watched coordinates differ from the last update's (none
        before the first update: initialisation and loading are not training)."""
        if self._after_update is None:
            return np.zeros(len(self.parameters), bool)
        return np.array([not torch.equal(then, now) for then, now in
                         zip(self._after_update, self._read_watched(), strict=True)], bool)

    def record(self) -> GradientCanaryRecord:
        """Everything an audit needs, with the weights' projections now (the last iterate)."""
        steps = len(self._observations)
        observations = (
            torch.stack(self._observations).cpu().numpy().astype(np.float32)
            if steps else np.zeros((0, self.count), np.float32)
        )
        sampled = np.stack(self._sampled) if steps else np.zeros((0, self.count), bool)
        after_last = self._changed_since_update()
        return GradientCanaryRecord(
            direction=self.direction, seed=self.seed, coordinates=self.coordinates,
            dimension=self._directions.dimension, included=self.included.copy(),
            sample_rate=self.sample_rate, noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm, observations=observations, sampled=sampled,
            initial=self.initial, final=self._project_weights(),
            batch_sizes=np.asarray(self._batch_sizes, np.int64), dataset_size=self.dataset_size,
            parameter_sizes=np.array([p.numel() for p in self.parameters], np.int64),
            divisors=np.asarray(self._divisors, np.float64),
            learning_rates=np.asarray(self._rates, np.float64),
            # Each update's check, then one more from the last update to now.
            changed_outside=np.asarray(
                [*self._changed_outside, bool(after_last.any())], np.bool_),
            changed_tensors=self._changed_tensors + after_last,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything recorded so far and the sampling generator's state, as tensors and plain
        values (``torch.save`` writes it, ``torch.load(..., weights_only=True)`` reads it): saved
        with a checkpoint, it lets a resumed loop go on with the same canaries
        (:meth:`load_state_dict`)."""
        if self._pending is not None:
            raise ModelError("gradient canaries: a step was injected but not observed; save "
                             "the state between optimiser steps")
        steps = len(self._observations)
        return {
            "seed": self.seed, "count": self.count, "direction": self.direction,
            "dimension": self._directions.dimension, "sample_rate": self.sample_rate,
            "noise_multiplier": self.noise_multiplier, "max_grad_norm": self.max_grad_norm,
            "dataset_size": self.dataset_size, "initial": torch.from_numpy(self.initial.copy()),
            "observations": (torch.stack(self._observations).cpu() if steps
                             else torch.zeros((0, self.count))),
            "sampled": torch.from_numpy(np.stack(self._sampled) if steps
                                        else np.zeros((0, self.count), bool)),
            "batch_sizes": torch.tensor(self._batch_sizes, dtype=torch.int64),
            "divisors": torch.tensor(self._divisors, dtype=torch.float64),
            "learning_rates": torch.tensor(self._rates, dtype=torch.float64),
            "changed_outside": torch.tensor(self._changed_outside, dtype=torch.bool),
            "changed_tensors": torch.from_numpy(self._changed_tensors.copy()),
            "sampling": self._sampling.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from a :meth:`state_dict` of canaries drawn with the same settings over the same
        parameters (refused otherwise: other canaries would make the record meaningless)."""
        same = ("seed", "count", "direction", "sample_rate", "noise_multiplier", "max_grad_norm")
        mine = {"seed": self.seed, "count": self.count, "direction": self.direction,
                "sample_rate": self.sample_rate, "noise_multiplier": self.noise_multiplier,
                "max_grad_norm": self.max_grad_norm}
        try:
            differs = [key for key in same if state[key] != mine[key]]
            if state["dimension"] != self._directions.dimension:
                differs.append("dimension (the trainable parameters)")
            observations = torch.as_tensor(state["observations"], dtype=torch.float32)
            sampled = np.asarray(state["sampled"], dtype=bool)
            sizes = [int(v) for v in state["batch_sizes"]]
            divisors = [float(v) for v in state["divisors"]]
            # Absent from states saved before learning rates were kept: unknown there.
            rates = [float(v) for v in state.get("learning_rates", [math.nan] * len(divisors))]
            initial = np.asarray(state["initial"], dtype=np.float32)
            # Absent from states saved before the updates check: it then starts at the resume.
            changed = [bool(v) for v in state.get("changed_outside", ())]
            tensors = np.asarray(state.get("changed_tensors", np.zeros(len(self.parameters))),
                                 dtype=np.int64)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"gradient canaries: not a saved canary state ({error})") from None
        if differs:
            raise ModelError("gradient canaries: the saved state is of other canaries ("
                             + ", ".join(differs) + " differ); resume with the settings it was "
                             "saved with")
        steps = len(observations)
        if (observations.shape != (steps, self.count) or sampled.shape != (steps, self.count)
                or len(sizes) != steps or len(divisors) != steps or len(rates) != steps
                or initial.shape != (self.count,) or tensors.shape != (len(self.parameters),)):
            raise ModelError("gradient canaries: the saved state's arrays do not fit together")
        self._changed_outside, self._changed_tensors = changed, tensors
        self._observations = list(observations.to(self.parameters[0].device))
        self._sampled = list(sampled)
        self._batch_sizes, self._divisors, self._rates = sizes, divisors, rates
        self.initial = initial
        self.dataset_size = int(state["dataset_size"])
        self._sampling.bit_generator.state = state["sampling"]

    def _project_weights(self) -> np.ndarray:
        with torch.no_grad():
            projected = self._directions.project([p.detach() for p in self.parameters])
        return projected.cpu().numpy().astype(np.float32)

    def _check(self, tensors: Sequence[torch.Tensor]) -> None:
        shapes = [tuple(t.shape) for t in tensors]
        if shapes != [tuple(p.shape) for p in self.parameters]:
            raise ModelError(
                "gradient canaries: the optimiser's parameters changed after the canaries were "
                "drawn (another number or shape of trainable parameters); create them after "
                "the model and optimiser are final"
            )


def attach_to_dp_optimizer(
    optimizer: torch.optim.Optimizer, canaries: GradientCanaries, *,
    rows: Callable[[], int] | None = None,
) -> Callable[[], None]:
    """Add ``canaries`` inside an Opacus ``DPOptimizer``'s step; return a function that detaches.

    Both ``DPOptimizer`` (``hooks``) and ``DPOptimizerFastGradientClipping`` (``ghost``) hold the
    clipped sum in ``p.summed_grad`` when they call ``add_noise``, which sets
    ``p.grad = summed_grad + noise``; the division by the expected batch size comes after, in
    ``scale_grad``. Wrapping ``add_noise`` therefore puts the canaries exactly where a real
    example's clipped gradient is, and reads the noisy sum before the division; everything else
    the optimiser does (clipping, skipped steps of gradient accumulation, the accountant's step
    hook) is left alone. It also records each step's real batch size and, through
    :func:`watch_applied_gradients`, the divisor of its noisy sum.

    ``rows`` (e.g. :meth:`auditml.training.loop_inspection.LoopInspector.take_rows`) counts the
    examples of the training forward passes since the last step: the batch size where the
    optimiser keeps no per-example rows (``ghost``) and the caller did not say.
    """
    if "add_noise" in vars(optimizer):
        raise ModelError("this optimiser already carries gradient canaries (or another wrapper "
                         "of add_noise); attach one set of canaries per optimiser")
    add_noise = optimizer.add_noise  # type: ignore[attr-defined]
    counted = _ClippedRows(optimizer)

    def add_noise_with_canaries() -> None:
        parameters = optimizer.params  # type: ignore[attr-defined]
        seen = counted.take()
        forward_rows = rows() if rows is not None else None
        if seen is not None:  # the optimiser's own per-example rows (hooks), all micro-batches
            canaries.note_batch(seen)
        elif canaries._batch < 0 and forward_rows is not None:
            canaries.note_batch(forward_rows)
        sums = canaries.add_to_sums([p.summed_grad.view_as(p) for p in parameters])
        for parameter, summed in zip(parameters, sums, strict=True):
            # Opacus marks a sum it noised ("_processed") and refuses to noise it again: a loop
            # that never clears the optimiser's gradients re-releases every earlier sum. The
            # new tensor keeps the mark, so that guard still stops such a loop.
            if getattr(parameter.summed_grad, "_processed", False):
                summed._processed = True  # type: ignore[attr-defined]
            parameter.summed_grad = summed
        add_noise()
        canaries.observe([p.grad for p in parameters])

    optimizer.add_noise = add_noise_with_canaries  # type: ignore[attr-defined]
    detach_applied = watch_applied_gradients(optimizer, canaries)

    def detach() -> None:
        vars(optimizer).pop("add_noise", None)
        counted.detach()
        detach_applied()

    return detach


class _ClippedRows:
    """Counts the per-example rows each ``clip_and_accumulate`` call of a ``hooks`` optimiser
    clips (every micro-batch of a logical batch, e.g. under Opacus's ``BatchMemoryManager``)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.rows: int | None = None
        self.previous = vars(optimizer).get("clip_and_accumulate")
        clip = optimizer.clip_and_accumulate  # type: ignore[attr-defined]

        def clip_and_count() -> None:
            rows = per_example_rows(optimizer.params[0])  # type: ignore[attr-defined]
            if rows is not None:
                self.rows = (self.rows or 0) + rows
            clip()

        optimizer.clip_and_accumulate = clip_and_count  # type: ignore[attr-defined]

    def take(self) -> int | None:
        rows, self.rows = self.rows, None
        return rows

    def detach(self) -> None:
        if self.previous is None:
            vars(self.optimizer).pop("clip_and_accumulate", None)
        else:
            self.optimizer.clip_and_accumulate = self.previous  # type: ignore[attr-defined]


def per_example_rows(parameter: torch.Tensor) -> int | None:
    """How many per-example rows Opacus holds for ``parameter`` (``grad_sample``: one tensor,
    or a list of them when backward passes accumulate), counted without concatenating them;
    None where there are none (ghost clipping)."""
    samples = getattr(parameter, "grad_sample", None)
    if samples is None:
        return None
    return sum(len(part) for part in samples) if isinstance(samples, list) else len(samples)


def watch_applied_gradients(
    optimizer: torch.optim.Optimizer, canaries: GradientCanaries
) -> Callable[[], None]:
    """Show ``canaries`` the gradients an Opacus ``DPOptimizer`` hands its inner optimiser (after
    ``scale_grad`` or whatever normalisation the loop does), so each step's divisor is recorded
    (:meth:`GradientCanaries.note_applied`); return a function that detaches."""
    inner = getattr(optimizer, "original_optimizer", None)
    if inner is None:
        return lambda: None
    previous = vars(inner).get("step")
    step = inner.step

    def step_after_noting(*args: object, **kwargs: object) -> object:
        # An inner step with no noisy sum before it (a direct call of the inner optimiser's
        # step) is not a noisy update: what it changes is seen as a change outside them.
        noisy = canaries._noisy_head is not None
        canaries.note_applied([p.grad for p in optimizer.params  # type: ignore[attr-defined]
                               if p.grad is not None])
        if not noisy:
            return step(*args, **kwargs)
        canaries.note_rate(inner.param_groups[0].get("lr"))
        canaries.before_update()
        try:
            return step(*args, **kwargs)
        finally:
            canaries.after_update()

    inner.step = step_after_noting  # type: ignore[method-assign]

    def detach() -> None:
        if previous is None:
            vars(inner).pop("step", None)
        else:
            inner.step = previous  # type: ignore[method-assign]

    return detach


def _head(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A copy of the first :data:`_DIVISOR_COORDINATES` coordinates of ``tensors`` flattened in
    order (one slice of the first tensor where it is large enough: no per-step concatenation)."""
    first = tensors[0].detach().reshape(-1) if tensors else torch.zeros(0)
    if len(first) >= _DIVISOR_COORDINATES or len(tensors) == 1:
        return first[:_DIVISOR_COORDINATES].clone()
    parts, left = [], _DIVISOR_COORDINATES
    for tensor in tensors:
        if left <= 0:
            break
        part = tensor.detach().reshape(-1)[:left]
        parts.append(part.to(first.device, first.dtype))
        left -= len(part)
    return torch.cat(parts)


def optimizer_parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The trainable parameters in optimiser order: the order Opacus draws noise in."""
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]


class _Dirac:
    """``u_j`` = the one-hot vector at ``coordinates[j]``: projections are gathers.

    A model of at most :data:`_FLAT_DIMENSION` coordinates is handled as one flat vector (one
    concatenation, one gather or scatter per step), where per-tensor work would cost a step's
    worth of small operations; larger models, tensor by tensor (no copy of every gradient).
    """

    def __init__(self, sizes: list[int], coordinates: np.ndarray) -> None:
        self.coordinates = coordinates
        self.dimension = sum(sizes)
        self.sizes = sizes
        self._flat_coordinates: dict[torch.device, torch.Tensor] = {}
        owner, local = tensor_owners(coordinates, np.asarray(sizes))
        # Per parameter: which canaries live in it, and where in its flattened tensor.
        self._groups = [
            (k, np.flatnonzero(owner == k), local[owner == k])
            for k in np.unique(owner)
        ]
        self._on_device: dict[torch.device, list[tuple[int, torch.Tensor, torch.Tensor]]] = {}

    def _groups_on(self, device: torch.device) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        if device not in self._on_device:
            self._on_device[device] = [
                (int(k), torch.as_tensor(ids, device=device), torch.as_tensor(local, device=device))
                for k, ids, local in self._groups
            ]
        return self._on_device[device]

    def _flat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """``tensors`` concatenated into a new flat vector, where the model is small and they
        share a device and a dtype (else None)."""
        first = tensors[0]
        if self.dimension > _FLAT_DIMENSION or any(
                t.device != first.device or t.dtype != first.dtype for t in tensors):
            return None
        return torch.cat([t.reshape(-1) for t in tensors])

    def _coordinates_on(self, device: torch.device) -> torch.Tensor:
        if device not in self._flat_coordinates:
            self._flat_coordinates[device] = torch.as_tensor(self.coordinates, device=device)
        return self._flat_coordinates[device]

    def project(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        device = tensors[0].device
        flat = self._flat(tensors)
        if flat is not None:
            return flat[self._coordinates_on(device)].float()
        out = torch.empty(len(self.coordinates), dtype=torch.float32, device=device)
        for k, ids, local in self._groups_on(device):
            out[ids] = tensors[k].reshape(-1)[local].float()
        return out

    def rows(
        self, sampled: np.ndarray, norm: float, like: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        order = np.flatnonzero(sampled)  # row r holds canary order[r]
        rows = [torch.zeros((len(order), *t.shape[1:]), dtype=t.dtype, device=t.device)
                for t in like]
        for k, ids, local in self._groups:
            chosen = sampled[ids]
            if chosen.any():
                flat = rows[k].view(len(order), -1)
                flat[np.searchsorted(order, ids[chosen]), local[chosen]] = norm
        return rows

    def add(
        self, tensors: Sequence[torch.Tensor], sampled: np.ndarray, scale: float
    ) -> list[torch.Tensor]:
        flat = self._flat(tensors)
        if flat is not None:  # a new vector: the inputs are left as they were
            index = torch.as_tensor(self.coordinates[sampled], device=flat.device)
            flat.index_add_(0, index, torch.full((len(index),), scale, dtype=flat.dtype,
                                                 device=flat.device))
            return [piece.view_as(t) for piece, t in
                    zip(torch.split(flat, self.sizes), tensors, strict=True)]
        result = list(tensors)
        for k, ids, local in self._groups:
            chosen = local[sampled[ids]]
            if not len(chosen):
                continue
            tensor = result[k]
            index = torch.as_tensor(chosen, device=tensor.device)
            values = torch.full((len(chosen),), scale, dtype=tensor.dtype, device=tensor.device)
            result[k] = tensor.flatten().index_add(0, index, values).view_as(tensor)
        return result


class _RandomDirections:
    """``u_j`` uniform on the unit sphere, regenerated from ``(seed, j)`` on the CPU when used."""

    def __init__(self, sizes: list[int], seed: int, count: int) -> None:
        self.sizes = sizes
        self.dimension = sum(sizes)
        states = [np.random.SeedSequence([seed, _DIRECTIONS, j]).generate_state(2)
                  for j in range(count)]
        self._seeds = [(int(a) << 31 | int(b) >> 1) for a, b in states]

    def _block(self, canaries: Sequence[int]) -> torch.Tensor:
        block = torch.empty(len(canaries), self.dimension)
        for row, j in zip(block, canaries, strict=True):
            torch.randn(self.dimension, generator=torch.Generator().manual_seed(self._seeds[j]),
                        out=row)
        return block / torch.linalg.vector_norm(block, dim=1, keepdim=True)

    def project(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        flat = torch.cat([t.reshape(-1).float().cpu() for t in tensors])
        rows = max(1, _BLOCK_FLOATS // self.dimension)
        count = len(self._seeds)
        parts = [self._block(range(start, min(start + rows, count))) @ flat
                 for start in range(0, count, rows)]
        return torch.cat(parts)

    def add(
        self, tensors: Sequence[torch.Tensor], sampled: np.ndarray, scale: float
    ) -> list[torch.Tensor]:
        chosen = np.flatnonzero(sampled).tolist()
        rows = max(1, _BLOCK_FLOATS // self.dimension)
        total = torch.zeros(self.dimension)
        for start in range(0, len(chosen), rows):
            total += self._block(chosen[start:start + rows]).sum(dim=0)
        total *= scale
        pieces = torch.split(total, self.sizes)
        return [
            tensor + piece.view_as(tensor).to(device=tensor.device, dtype=tensor.dtype)
            for tensor, piece in zip(tensors, pieces, strict=True)
        ]
