"""The label-only attack by data augmentation (Choquette-Choo et al. 2021, "Label-Only Membership
Inference Attacks", ICML).

The attack sees only the target's predicted labels — the argmax of its output, never a
probability or a logit. Models are not only more often right on their training data; they stay
right on it under small perturbations, because training pulled the decision boundary away
from each member. The score of an example (x, y) is the robustness of its prediction:

    score(x, y) = (1 / Q) Σ_{q=0}^{Q-1} [ argmax f(x_q) = y ]

over Q = ``queries`` label queries: x_0 = x itself, and x_1 … x_{Q-1} perturbed copies. A
perturbed copy of an image ``(C, H, W)`` is translated by (dy, dx), each drawn uniformly from
{−max_shift, …, max_shift} (the border filled by repeating the edge pixels, so no artificial
frame appears), plus Gaussian noise of standard deviation ``noise_std`` in the normalised input
space on every coordinate. Inputs that are not images (e.g. tabular ``(N, D)``) get the noise
only. With ``queries=1`` this is the gap attack (score = 1 if correctly classified).

Draws come from a numpy Generator seeded with the audit's seed, so scores are reproducible.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditml.attacks.base import AttackSettings, MembershipAttack
from auditml.models import predict_logits

# Examples per forward pass; the perturbed copies of one chunk are made one query at a time, so
# memory holds at most this many inputs whatever the number of queries.
_CHUNK = 1024


class LabelOnlySettings(AttackSettings):
    queries: int = Field(
        default=32, ge=1, description="label queries per example, the unperturbed one included"
    )
    noise_std: float = Field(default=0.2, ge=0.0, allow_inf_nan=False)
    max_shift: int = Field(default=1, ge=0, description="largest translation, in pixels")


class LabelOnlyAttack(MembershipAttack):
    """Robustness of the predicted label under augmentation (Choquette-Choo et al. 2021)."""

    name = "mia_label_only"
    Settings = LabelOnlySettings
    requires = frozenset()

    def score(self) -> np.ndarray:
        target = self.target
        params = self.params
        x, y = target.examples.x, np.asarray(target.examples.y)
        perturbs = params.noise_std > 0 or (params.max_shift > 0 and x.ndim == 4)
        queries = params.queries if perturbs else 1  # identical copies answer identically
        rng = np.random.default_rng(target.seed)
        correct = np.zeros(len(y), dtype=np.int64)
        for start in range(0, len(y), _CHUNK):
            chunk, labels = x[start : start + _CHUNK], y[start : start + _CHUNK]
            for query in range(queries):
                inputs = (
                    chunk
                    if query == 0
                    else perturb(chunk, rng, noise_std=params.noise_std, max_shift=params.max_shift)
                )
                predicted = predicted_labels(target.model, inputs, target.device)
                correct[start : start + len(labels)] += predicted == labels
        return correct / queries


def predicted_labels(model: nn.Module, x: np.ndarray, device: torch.device) -> np.ndarray:
    """The model's top-1 labels: everything of the model this attack observes."""
    return predict_logits(model, x, device=device).argmax(axis=1)


def perturb(
    x: np.ndarray, rng: np.random.Generator, *, noise_std: float, max_shift: int
) -> np.ndarray:
    """One random augmented copy of each row of ``x``: a shift (images only), then noise."""
    out = x
    if x.ndim == 4 and max_shift > 0:
        out = shift_images(x, rng.integers(-max_shift, max_shift + 1, size=(len(x), 2)))
    if noise_std > 0:
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        out = out + noise_std * rng.standard_normal(x.shape, dtype=dtype)
    return out.astype(x.dtype, copy=False)


def shift_images(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Translate image i of ``(N, C, H, W)`` down by ``shifts[i, 0]`` rows and right by
    ``shifts[i, 1]`` columns (negative = up/left), repeating the edge pixels into the gap."""
    shifts = np.asarray(shifts, dtype=np.int64)
    n, c, h, w = images.shape
    if shifts.shape != (n, 2):
        raise ValueError(f"`shifts` must have shape ({n}, 2), got {shifts.shape}.")
    if n == 0:
        return images.copy()
    margin = int(np.abs(shifts).max())
    padded = np.pad(images, ((0, 0), (0, 0), (margin, margin), (margin, margin)), mode="edge")
    # Output pixel (r, s) of image i comes from input pixel (r − dy, s − dx).
    rows = (margin - shifts[:, 0])[:, None] + np.arange(h)
    cols = (margin - shifts[:, 1])[:, None] + np.arange(w)
    return padded[
        np.arange(n)[:, None, None, None],
        np.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
