"""The likelihood-ratio attack, LiRA (Carlini et al. 2022, "Membership Inference Attacks From
First Principles", IEEE S&P).

Signal. For a model f and an example (x, y), the logit-scaled confidence

    φ(f, x, y) = log(p_y / (1 − p_y)),     p = softmax(f(x)),

whose distribution over training runs is close to Gaussian. Reference models
are trained like the target on random halves of the audited examples; ``keep[k, i]`` says whether
model k trained on example i (IN) or not (OUT). For example i, the IN and OUT signals of the
reference models are each summarised by a Gaussian, N(μ_in,i, σ²_in,i) and N(μ_out,i, σ²_out,i).

Score (higher = member), with φ_t the target model's signal on example i:

- ``online``:  Λ_i = log N(φ_t; μ_in,i, σ²_in,i) − log N(φ_t; μ_out,i, σ²_out,i), the log of the
  likelihood ratio of "member" against "non-member" (the paper's Algorithm 1).
- ``offline``: Λ_i = −log P(Φ ≥ φ_t), Φ ~ N(μ_out,i, σ²_out,i): the paper's one-sided test
  against OUT only (its offline variant), which needs no IN models; it grows with the
  evidence that φ_t is too high for a model that did not train on the example.

Estimates (one set per augmented copy, below):

- μ_side,i is the mean of the example's signals in that side's models (the paper's Algorithm 1;
  its reference code takes the median, which for two models is the same).
- ``variance="auto"`` (the default): ``fixed`` with fewer than :data:`PER_EXAMPLE_MIN_MODELS`
  (64) reference models, ``per_example`` from there on — the paper's advice (per-example
  variances need many models; below 64 a global variance per side works better). The choice and
  its reason are recorded in the attack's ``fitted`` values; ``per_example`` asked for with
  fewer models warns.
- ``variance="per_example"``: σ²_side,i is their unbiased sample variance (needs two models on
  that side; otherwise the fixed variance below is used).
- ``variance="fixed"``: one variance per side for all examples, the pooled within-example
  variance Σ_i Σ_k∈side(i) (φ_k,i − μ_side,i)² / Σ_i (n_side,i − 1) — what the paper recommends
  with few reference models (per-example variances from a handful of models are noisy); the
  residuals about each example's own mean are pooled, as TensorFlow Privacy's LiRA does, so the
  spread of difficulty between examples does not inflate it. When no example has two models on
  a side (one or two reference models), there is no within-example spread to pool, and the
  variance of all that side's signals about their overall mean is used instead (which is how
  the paper's reference code computes its global variance in every case).
- Every σ is floored at :data:`MIN_STD`, so identical signals do not divide by zero.
- An example with no model on a side (possible with one reference model, or any unbalanced keep
  matrix) takes that side's global statistics: the mean of every signal on that side and the
  fixed variance. With a single reference model the online attack therefore compares each
  example's one side with the population-wide other side.

Augmentations. With ``augmentations`` other than ``"none"``, the target and every reference model
are queried on the same augmented copies of each image (horizontal flip; shifts by one pixel in
the four directions, borders filled by reflection as in the paper's code; or both), one Gaussian
pair per copy is fitted, and Λ is the mean over copies of the per-copy scores — the paper's
treatment of augmented queries as independent Gaussian coordinates (whose summed log-likelihood
ratio orders examples the same way as the mean), as its reference code averages them.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_ndtr

from auditml.attacks.base import (
    AttackSettings,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    ReferenceModels,
)
from auditml.attacks.signals import logit_confidence
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError
from auditml.models import predict_logits

LiraMode = Literal["online", "offline"]
LiraVariance = Literal["auto", "per_example", "fixed"]
FittedVariance = Literal["per_example", "fixed"]
Augmentations = Literal["none", "flip", "shift", "flip_shift"]

MIN_STD = 1e-3
"""Smallest standard deviation a fitted Gaussian may have: far below the spread of logit-scaled
confidences across training runs (of order 1), so it only acts when signals are identical."""

# One-pixel shifts (rows, columns) in the four directions; (0, 0) is the unshifted image.
PER_EXAMPLE_MIN_MODELS = 64
"""Fewest reference models for which ``variance="auto"`` fits per-example variances: Carlini et
al. 2022 find a global (fixed) variance better with fewer (each example's variance is estimated
from about half of the models)."""

_SHIFTS: tuple[tuple[int, int], ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class LiraCoreSettings(AttackSettings):
    """The settings of LiRA's test, whatever its signal."""

    mode: LiraMode = "online"
    variance: LiraVariance = "auto"


class LiraSettings(LiraCoreSettings):
    augmentations: Augmentations = "none"


class LiraAttack(MembershipAttack):
    """Gaussian likelihood ratio of the logit-scaled confidence (Carlini et al. 2022)."""

    name = "mia_lira"
    Settings = LiraSettings
    requires = frozenset({"reference"})
    _variance: FittedVariance | None = None  # chosen by fit (choose_variance)
    _variance_reason = ""

    def _fit(self, target: AuditTarget) -> None:
        reference = target.reference
        if reference is None:  # fit() has checked; this narrows the type
            raise MissingResourceError(f"{self.name} needs reference models")
        keep = self.reference_keep(target)
        self._variance, self._variance_reason = choose_variance(
            self.params.variance, len(keep), owner=self.name
        )
        self.check_inputs(target.examples.x.shape[1:])
        self._reference_signal = self._reference_signals(reference, target.examples)
        self._keep = keep

    def _reference_signals(self, reference: ReferenceModels, examples: ArrayDataset
                           ) -> np.ndarray:
        """``(A, K, N)``: every reference model's signal on each augmented copy."""
        x, y = examples.x, np.asarray(examples.y)
        labels = np.broadcast_to(y, (len(reference), len(y)))
        # Copies are made one at a time so memory holds one augmented dataset, not all of them.
        return np.stack([
            logit_confidence(reference.logits(augment(x, *copy)), labels)
            for copy in augmentation_copies(self.params.augmentations)
        ])

    def _target_signals(self, target: AuditTarget) -> np.ndarray:
        """``(A, N)``: the target's signal on each augmented copy."""
        x, y = target.examples.x, np.asarray(target.examples.y)
        return np.stack([
            logit_confidence(predict_logits(target.model, augment(x, *copy), device=target.device),
                             y)
            for copy in augmentation_copies(self.params.augmentations)
        ])

    def fitted_values(self) -> dict[str, Any]:
        """The variance used and why (``auto`` chooses by the number of reference models)."""
        if self._variance is None:  # not fitted yet
            return {}
        return {"variance": self._variance, "variance_reason": self._variance_reason}

    def check_inputs(self, input_shape: tuple[int, ...]) -> None:
        if self.params.augmentations != "none" and len(input_shape) != 3:
            raise AuditMLError(
                f"{self.name}: augmentations={self.params.augmentations!r} needs images "
                f"(C, H, W) to flip and shift, but one input here has shape "
                f"{tuple(input_shape)}; use augmentations='none' for tabular data"
            )

    def score(self) -> np.ndarray:
        return lira_scores(
            self._target_signals(self.target), self._reference_signal, self._keep,
            mode=self.params.mode, variance=self._variance,
        )


def choose_variance(
    variance: LiraVariance, models: int, *, owner: str = "mia_lira"
) -> tuple[FittedVariance, str]:
    """The variance LiRA fits with ``models`` reference models when ``variance`` is asked for,
    and the reason, in words; ``per_example`` asked for with too few models warns, naming the
    attack ``owner``."""
    if variance == "per_example" and models < PER_EXAMPLE_MIN_MODELS:
        warnings.warn(
            f"{owner}: variance per_example with {models} reference models: per-example "
            f"variances from fewer than {PER_EXAMPLE_MIN_MODELS} models are noisy and weaken "
            "the attack (Carlini et al. 2022); use variance: auto (fixed here) or train at "
            f"least {PER_EXAMPLE_MIN_MODELS} reference models",
            UserWarning, stacklevel=4,
        )
    if variance == "per_example" or variance == "fixed":
        return variance, "as configured"
    if models < PER_EXAMPLE_MIN_MODELS:
        return "fixed", (
            f"auto: {models} reference models are fewer than {PER_EXAMPLE_MIN_MODELS}, too few "
            "for per-example variances, so one variance per side (Carlini et al. 2022)"
        )
    return "per_example", (
        f"auto: {models} reference models (at least {PER_EXAMPLE_MIN_MODELS}) are enough for "
        "per-example variances"
    )


def augmentation_copies(augmentations: str) -> list[tuple[bool, int, int]]:
    """The copies ``(flip, shift_rows, shift_columns)`` queried for ``augmentations``.

    ``none``: the image itself; ``flip``: itself and its mirror image; ``shift``: itself and its
    four one-pixel shifts; ``flip_shift``: those five for the image and for its mirror image.
    The unaugmented image is always the first copy.
    """
    flips = {"none": (False,), "flip": (False, True), "shift": (False,),
             "flip_shift": (False, True)}
    if augmentations not in flips:
        raise AuditMLError(
            f"unknown augmentations {augmentations!r}; use one of {', '.join(flips)}"
        )
    shifts = _SHIFTS if augmentations in ("shift", "flip_shift") else _SHIFTS[:1]
    return [(flip, rows, columns) for flip in flips[augmentations] for rows, columns in shifts]


def augment(x: np.ndarray, flip: bool, shift_rows: int, shift_columns: int) -> np.ndarray:
    """Images ``(N, C, H, W)`` mirrored left-right (``flip``) and then translated by
    ``(shift_rows, shift_columns)`` pixels (at most one each way), the uncovered border filled by
    reflection. The identity copy returns ``x`` itself."""
    if not flip and shift_rows == 0 and shift_columns == 0:
        return x
    out = x[..., ::-1] if flip else x
    if shift_rows or shift_columns:
        height, width = out.shape[-2:]
        padded = np.pad(out, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
        # Shifting the content down by s means output row r shows input row r − s.
        top, left = 1 - shift_rows, 1 - shift_columns
        out = padded[..., top : top + height, left : left + width]
    return np.ascontiguousarray(out)


def lira_scores(
    target_signal: ArrayLike,
    reference_signal: ArrayLike,
    keep: ArrayLike,
    *,
    mode: LiraMode,
    variance: FittedVariance,
) -> np.ndarray:
    """LiRA scores ``(N,)`` from signals (see the module docstring for the math).

    ``target_signal`` is ``(A, N)``: the target's logit-scaled confidence on A augmented copies
    of N examples; ``reference_signal`` is ``(A, K, N)``, the same for K reference models;
    ``keep`` is ``(K, N)`` bool, ``keep[k, i]`` = model k trained on example i. The per-copy
    scores are averaged over the A copies. Higher = more likely a member.
    """
    target_signal, reference_signal, keep = _check_signals(target_signal, reference_signal, keep)
    if mode not in ("online", "offline"):
        raise AuditMLError(f"`mode` must be 'online' or 'offline', got {mode!r}.")
    if variance not in ("per_example", "fixed"):
        raise AuditMLError(f"`variance` must be 'per_example' or 'fixed', got {variance!r}.")
    if target_signal.shape[1] == 0:
        return np.empty(0)
    if not (~keep).any():
        raise MissingResourceError(
            "LiRA needs reference models that did not train on some examples (OUT), but every "
            "`keep` entry is True; train reference models on halves of the examples"
        )
    mean_out, std_out = _gaussians(reference_signal, ~keep, variance)
    if mode == "offline":
        # −log P(Φ ≥ φ_t) = −log Φ_cdf(−(φ_t − μ)/σ), accurate far into both tails.
        per_copy = -log_ndtr(-(target_signal - mean_out) / std_out)
    else:
        if not keep.any():
            raise MissingResourceError(
                "online LiRA needs reference models that trained on some examples (IN), but "
                "every `keep` entry is False; use mode='offline'"
            )
        mean_in, std_in = _gaussians(reference_signal, keep, variance)
        per_copy = _log_normal(target_signal, mean_in, std_in) - _log_normal(
            target_signal, mean_out, std_out
        )
    return per_copy.mean(axis=0)


def _gaussians(
    signal: np.ndarray, side: np.ndarray, variance: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)``, each ``(A, N)``, of the signals of the models where ``side[k, i]``."""
    count = side.sum(axis=0)  # (N,) models on this side of each example
    inside = side[None]  # (1, K, N), broadcast over copies
    total = np.where(inside, signal, 0.0).sum(axis=1)  # (A, N)
    global_mean = total.sum(axis=1) / count.sum()  # (A,)
    mean = np.where(count > 0, total / np.maximum(count, 1), global_mean[:, None])
    squares = np.where(inside, (signal - mean[:, None, :]) ** 2, 0.0).sum(axis=1)  # (A, N)
    degrees = np.maximum(count - 1, 0)
    if degrees.sum() > 0:
        pooled = squares.sum(axis=1) / degrees.sum()
    else:
        # No example has two models on this side: the spread across examples is all there is.
        spread = np.where(inside, (signal - global_mean[:, None, None]) ** 2, 0.0).sum(axis=(1, 2))
        pooled = spread / max(int(count.sum()) - 1, 1)
    fixed = np.maximum(np.sqrt(pooled), MIN_STD)[:, None]  # (A, 1)
    if variance == "fixed":
        return mean, np.broadcast_to(fixed, mean.shape)
    own = np.sqrt(squares / np.maximum(degrees, 1))
    return mean, np.where(count >= 2, np.maximum(own, MIN_STD), fixed)


def _log_normal(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def _check_signals(
    target_signal: ArrayLike, reference_signal: ArrayLike, keep: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    target = np.asarray(target_signal, dtype=np.float64)
    reference = np.asarray(reference_signal, dtype=np.float64)
    membership = np.asarray(keep)
    if target.ndim != 2:
        raise AuditMLError(
            f"`target_signal` must be 2-D (copies, examples), got shape {target.shape}."
        )
    if reference.ndim != 3 or reference.shape[0] != target.shape[0] or (
        reference.shape[2] != target.shape[1]
    ):
        raise AuditMLError(
            "`reference_signal` must be (copies, models, examples) = "
            f"({target.shape[0]}, K, {target.shape[1]}), got shape {reference.shape}."
        )
    if membership.shape != reference.shape[1:]:
        raise AuditMLError(
            f"`keep` must be (models, examples) = {reference.shape[1:]}, "
            f"got shape {membership.shape}."
        )
    if reference.shape[1] == 0:
        raise MissingResourceError("LiRA needs at least one reference model, got 0.")
    if membership.dtype != bool:
        if not np.isin(membership, (0, 1)).all():
            raise AuditMLError("`keep` must hold booleans or 0/1.")
        membership = membership.astype(bool)
    for name, values in (("target_signal", target), ("reference_signal", reference)):
        if not np.isfinite(values).all():
            raise AuditMLError(f"`{name}` must be finite, got {values[~np.isfinite(values)][0]}.")
    return target, reference, membership
