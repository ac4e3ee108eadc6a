"""Canaries through the optimiser's own clipping, and the clipping probe (Opacus ``hooks``).

Gradient canaries are normally added to the clipped sum (:mod:`.gradient_canaries`). That tests
the noise and the sampling but never the clipping: a canary of norm C is what a correct clipping
makes of it anyway. :func:`attach_through_clipping` instead gives each step's sampled canaries
to the optimiser's own ``clip_and_accumulate`` as per-example gradients (``p.grad_sample``) of
norm ``canary_norm`` (> C), in a call of their own after the real examples' (as Opacus clips a
further micro-batch, so the real rows are clipped exactly as without the audit): whatever the
optimiser does to a real example's gradient it does to them. A correct clipping turns each
into exactly the canary of norm C, so the record and every audit read as before; a clipping
that lets a gradient through (a tensor left out of the norm, a wrong norm) shows in the
mechanism check's sensitivity part.

One bug no canary of its own can show is clipping *after* summing (``clip(Σ g_i)`` instead of
``Σ clip(g_i)``): it bounds the whole sum by C, so each canary moves it by less than a correct
mechanism would. Its extra leakage is in the worst case, sensitivity 2C, reached by a gradient
that cancels the rest of the batch. The **clipping probe** builds that case with two more rows
along a unit direction w (random, from the seed) and a fair sign s_t drawn each step:

- the *decoy* ``b·s_t·w`` in every step, with b = 1000 × an upper bound on the norm of
  everything else the step sums (the real examples' accumulated sum, plus the canaries' norms);
- the *probe* ``−2b·s_t·w``, in the step by its own fair coin.

With correct per-example clipping the decoy becomes ``C·s_t·w`` and the probe ``−C·s_t·w``: the
probe moves the sum along w by exactly C. Clipping after the sum: without the probe the sum is
≈ ``b·s_t·w`` and is clipped to ≈ ``C·s_t·w``; with it, ≈ ``−b·s_t·w``, clipped to
≈ ``−C·s_t·w``: the probe moves it by ≈ 2C. Each step keeps ``y_t = 1 − s_t·⟨noisy sum, w⟩/C``
(centred: about 0 without the probe and 1 with it under a correct mechanism) and the probe's
coin; the mechanism check bounds from below how far the probe moves the sum
(:func:`auditml.metrics.dp.mechanism_check.sensitivity_lower_bound`, at the coin's rate ½) and flags
a bound above 1. The real batch adds ``s_t·⟨Σ clip(g_i), w⟩`` to ``y_t``: of mean zero (the sign)
and small, since w is a random direction. The decoy and the probe share the canaries' call, so
a clipping of each call's sum (of the micro-batch) shows as well as one of the whole step's.

Privacy: under a correct mechanism the two rows contribute ``C·s_t·w`` or 0, whatever b is
(b ≥ C), so their outputs are no function of the data: a random walk along w with a public sign,
and a canary present at one step. The accountant's claim for the real examples is unchanged. Under
a *broken* clipping, though, rows of norm b may pass unclipped: audit a configuration, not a model
you will deploy.

Cost: the optimiser's per-example tensors are dense, so every step clips k + 2 more dense rows
for its k sampled canaries (k ≈ q·m/2) in one more call, and projects the noisy sum on w once
(``benchmarks/canary_overhead.py --own-loop``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from auditml.errors import ConfigError, ModelError
from auditml.training.gradient_canaries import (
    GradientCanaries,
    per_example_rows,
    watch_applied_gradients,
)

# A stream of the canaries' seed that gradient_canaries.py does not use (it uses 1, 2, 3).
_PROBE = 4
_DECOY_MARGIN = 1000.0
"""b = this × the norm bound of the other rows: the decoy and the probe dominate the sum."""


class ClippingProbe:
    """The decoy and probe rows of the module docstring over ``parameters`` (optimiser order)."""

    def __init__(self, parameters: Sequence[torch.Tensor], *, seed: int,
                 max_grad_norm: float) -> None:
        self.shapes = [tuple(p.shape) for p in parameters]
        sizes = [p.numel() for p in parameters]
        generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([seed, _PROBE]).generate_state(1)[0]))
        direction = torch.randn(sum(sizes), generator=generator, dtype=torch.float64)
        self._direction = (direction / torch.linalg.vector_norm(direction)).float()
        self._sizes = sizes
        self._draws = np.random.default_rng([seed, _PROBE])
        self.max_grad_norm = float(max_grad_norm)
        self._pending: tuple[float, bool] | None = None
        self._observations: list[float] = []
        self._sampled: list[bool] = []

    def rows(self, bound: float, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Draw this step's sign and coin; the decoy (and the probe if its coin says so) as
        per-parameter row blocks shaped like ``like`` (each ``(rows, *shape)``), for a step
        whose other rows' sum has norm at most ``bound``."""
        if self._pending is not None:
            raise ModelError("clipping probe: a step was injected but its noisy sum was never "
                             "observed")
        sign = 1.0 if self._draws.random() < 0.5 else -1.0
        probe = bool(self._draws.random() < 0.5)
        self._pending = (sign, probe)
        b = _DECOY_MARGIN * max(float(bound), self.max_grad_norm)
        scales = torch.tensor([sign * b] + ([-2 * sign * b] if probe else []),
                              dtype=torch.float64)
        flat = scales[:, None] * self._direction.double()[None, :]
        pieces = torch.split(flat, self._sizes, dim=1)
        return [piece.reshape(len(scales), *shape).to(t.device, t.dtype)
                for piece, shape, t in zip(pieces, self.shapes, like, strict=True)]

    def observe(self, noisy_sums: Sequence[torch.Tensor]) -> None:
        """Record ``y_t`` (module docstring) from the step's noisy sums."""
        if self._pending is None:
            raise ModelError("clipping probe: observe() without rows() for the step")
        sign, probe = self._pending
        flat = torch.cat([t.detach().reshape(-1).float().cpu() for t in noisy_sums])
        along = float(flat @ self._direction)
        self._observations.append(1.0 - sign * along / self.max_grad_norm)
        self._sampled.append(probe)
        self._pending = None

    def state_dict(self) -> dict[str, Any]:
        """The probe's record so far and its generator's state (see
        :meth:`auditml.training.gradient_canaries.GradientCanaries.state_dict`)."""
        if self._pending is not None:
            raise ModelError("clipping probe: save the state between optimiser steps")
        return {"observations": torch.tensor(self._observations, dtype=torch.float64),
                "sampled": torch.tensor(self._sampled, dtype=torch.bool),
                "draws": self._draws.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            observations = [float(v) for v in state["observations"]]
            sampled = [bool(v) for v in state["sampled"]]
            self._draws.bit_generator.state = state["draws"]
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"clipping probe: not a saved probe state ({error})") from None
        if len(observations) != len(sampled):
            raise ModelError("clipping probe: the saved state's arrays do not fit together")
        self._observations, self._sampled = observations, sampled

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, sampled)``: one value and one coin per observed step."""
        return (np.asarray(self._observations, np.float32),
                np.asarray(self._sampled, np.bool_))


def attach_through_clipping(
    optimizer: torch.optim.Optimizer, canaries: GradientCanaries, probe: ClippingProbe, *,
    canary_norm: float,
) -> Callable[[], None]:
    """Put ``canaries`` and ``probe`` through an Opacus ``DPOptimizer``'s own clipping (module
    docstring); return a function that detaches.

    Wraps ``clip_and_accumulate`` (every call clips the real rows as before; the first call
    after a noisy step then calls it once more with this step's rows as ``p.grad_sample``, and
    puts the real ones back; later calls of a step that accumulates micro-batches add nothing)
    and ``add_noise``
    (records the noisy sum for the canaries and the probe). It needs per-example gradients:
    ``grad_sample_mode="hooks"``; the ghost optimiser never materialises them.
    """
    from opacus.optimizers import DPOptimizerFastGradientClipping

    if isinstance(optimizer, DPOptimizerFastGradientClipping):
        raise ConfigError("canaries through the clipping need per-example gradients, which "
                          "ghost clipping never materialises: make the model private with "
                          "grad_sample_mode='hooks'")
    if canaries.direction != "dirac":
        raise ConfigError("canaries through the clipping must be dirac canaries (a random "
                          "direction is a dense row per canary per step)")
    if not canary_norm >= canaries.max_grad_norm:
        raise ConfigError(f"canary_norm must be at least the clipping norm "
                          f"{canaries.max_grad_norm:g}, got {canary_norm!r}")
    for wrapped in ("clip_and_accumulate", "add_noise"):
        if wrapped in vars(optimizer):
            raise ModelError("this optimiser already carries gradient canaries (or another "
                             f"wrapper of {wrapped}); attach one set of canaries per optimiser")
    clip_and_accumulate = optimizer.clip_and_accumulate  # type: ignore[attr-defined]
    add_noise = optimizer.add_noise  # type: ignore[attr-defined]
    parameters = list(optimizer.params)  # type: ignore[attr-defined]
    state = {"fresh": True, "batch": 0}

    def clip_with_rows() -> None:
        if any(getattr(p, "grad_sample", None) is None for p in parameters):
            raise ModelError("canaries through the clipping need per-example gradients "
                             "(p.grad_sample): make the model private with "
                             "grad_sample_mode='hooks'")
        state["batch"] += per_example_rows(parameters[0]) or 0
        clip_and_accumulate()  # the real rows, exactly as without the audit
        if not state["fresh"]:
            return
        state["fresh"] = False
        sampled = canaries.draw()
        summed = [p.summed_grad for p in parameters if p.summed_grad is not None]
        bound = math.sqrt(sum(float(t.double().square().sum()) for t in summed))
        like = [p.detach().unsqueeze(0) for p in parameters]
        extra = [torch.cat([c, d]) for c, d in zip(
            canaries.dirac_rows(sampled, canary_norm, like),
            probe.rows(bound + canary_norm * int(sampled.sum()), like), strict=True)]
        originals = [p.grad_sample for p in parameters]  # marked processed by the call above
        try:
            for p, rows in zip(parameters, extra, strict=True):
                p.grad_sample = rows
            clip_and_accumulate()  # the extra rows, as Opacus clips a further micro-batch
        finally:
            for p, original in zip(parameters, originals, strict=True):
                p.grad_sample = original

    def add_noise_and_observe() -> None:
        add_noise()
        noisy = [p.grad for p in parameters]
        canaries.note_batch(state["batch"])
        canaries.observe(noisy)
        probe.observe(noisy)
        state.update(fresh=True, batch=0)

    optimizer.clip_and_accumulate = clip_with_rows  # type: ignore[attr-defined]
    optimizer.add_noise = add_noise_and_observe  # type: ignore[attr-defined]
    detach_applied = watch_applied_gradients(optimizer, canaries)

    def detach() -> None:
        vars(optimizer).pop("clip_and_accumulate", None)
        vars(optimizer).pop("add_noise", None)
        detach_applied()

    return detach

