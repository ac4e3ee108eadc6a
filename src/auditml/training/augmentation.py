"""Augmentation multiplicity for DP-SGD (De et al. 2022, "Unlocking high-accuracy differentially
private image classification through scale", section 3.1).

Each example of a batch is seen as ``K`` randomly shifted copies, and its gradient is the
*average* of the copies' gradients, taken before clipping:

    g_i = (1/K) sum_k grad L(f(shift_k(x_i)), y_i),    then    clip(g_i) to C

So each example still contributes one vector of norm at most C to the noisy sum, whatever K:
the mechanism (σ, sampling rate, steps, clipping) and the accountant's ε are those of the run
without it. The copies only lower the variance of each example's gradient, at K times the
forward and backward cost.

The shifts are translations by up to ``max_shift(H)`` pixels in each direction (2 for 28x28
images, 1 for 8x8), the uncovered border filled with zeros (the standardised background is not
exactly zero; a small, consistent border effect). They are drawn from a generator of their own,
so the noise draws of the run are those of the run without copies.

The per-example average is formed on Opacus's per-sample gradients (``grad_sample_mode:
hooks``): the copies are one batch of ``B K`` rows, whose ``grad_sample`` is averaged in groups
of ``K`` before the optimiser clips (:func:`average_copies`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def max_shift(height: int) -> int:
    """The largest shift in pixels for images ``height`` pixels high (about 1/14 of it)."""
    return max(1, round(height / 14))


def shifted_copies(x: torch.Tensor, copies: int, generator: torch.Generator) -> torch.Tensor:
    """``(B, C, H, W)`` images as ``(B * copies, C, H, W)``: row ``i * copies + k`` is ``x[i]``
    translated by ``(dy, dx)`` drawn uniformly from ``[-s, s]²`` (``s = max_shift(H)``), with
    zeros where the shift uncovers the border."""
    if x.dim() != 4:
        raise ValueError(f"shifted_copies needs (B, C, H, W) images, got shape {tuple(x.shape)}")
    batch, _, height, width = x.shape
    s = max_shift(height)
    padded = torch.nn.functional.pad(x, (s, s, s, s))
    offsets = torch.randint(0, 2 * s + 1, (2, batch, copies), generator=generator,
                            device=generator.device).to(x.device)
    rows = offsets[0, :, :, None] + torch.arange(height, device=x.device)  # (B, K, H)
    cols = offsets[1, :, :, None] + torch.arange(width, device=x.device)  # (B, K, W)
    example = torch.arange(batch, device=x.device)[:, None, None, None]
    # (B, K, H, W, C): the window of each copy, then channels back in front.
    windows = padded.permute(0, 2, 3, 1)[example, rows[:, :, :, None], cols[:, :, None, :]]
    return windows.permute(0, 1, 4, 2, 3).reshape(batch * copies, *x.shape[1:])


def average_copies(parameters: Iterable[torch.nn.Parameter], copies: int) -> None:
    """Replace each parameter's per-sample gradients of ``B * copies`` rows (Opacus's
    ``grad_sample``, one row per copy) by the mean over each example's ``copies`` rows."""
    for parameter in parameters:
        per_row = getattr(parameter, "grad_sample", None)
        if per_row is None:
            continue
        if isinstance(per_row, list):  # several forward passes accumulated: one per step here
            per_row = torch.cat(per_row, dim=0)
        if len(per_row) % copies:
            raise ValueError(f"{len(per_row)} per-sample gradients are not whole groups of "
                             f"{copies} copies")
        parameter.grad_sample = per_row.view(-1, copies, *per_row.shape[1:]).mean(1)
