"""What DP-SGD recorded about its gradient canaries: the evidence of the white-box audits.

A gradient canary ``j`` is the fixed gradient ``C·u_j`` (``‖u_j‖ = 1``, ``C = max_grad_norm``)
over the model's trainable parameters, flattened in optimiser order. A fair coin
(``included[j]``) decides whether it takes part in training; an included canary is
Poisson-sampled at every step with the real examples' rate ``q`` and, when sampled, its gradient
joins the clipped sum before the Gaussian noise (:mod:`auditml.training.gradient_canaries`).

The arrays (``gradient_canaries.npz`` in a run directory)::

    direction            "dirac" or "random_direction"
    seed                 the canaries' seed (coins, sampling, random directions)
    coordinates (m,)     int64: each Dirac canary's coordinate (empty for random directions)
    dimension            the number of trainable coordinates d
    included (m,)        bool: the coins
    sample_rate          q; noise_multiplier σ; max_grad_norm C (floats)
    observations (T, m)  float32: ⟨noisy sum_t, u_j⟩, the sum after the noise and before the
                         division by the expected batch size (all-iterates threat model)
    sampled (T, m)       bool: canary j's gradient was in step t's sum (only if included)
    initial (m,), final (m,)  float32: ⟨θ_0, u_j⟩ and ⟨θ_T, u_j⟩ (last-iterate threat model)
    batch_sizes (T,)     int64: real examples in step t's sum; -1 where the loop could not tell
                         (absent in records written before it was kept: all -1)
    dataset_size         the number of examples the batches were drawn from (0: unknown)
    parameter_sizes (P,) int64: each trainable tensor's size in the flattened order (absent in
                         older records)
    probe (T,), probe_sampled (T,)  float32 and bool: the clipping probe's centred
                         observation and coin per step, only where the canaries went through the
                         optimiser's own clipping (:mod:`auditml.training.clipping_probe`)
    divisors (T,)        float64: what step t's noisy sum was divided by before the optimiser
                         applied it (its normalisation); NaN where the loop could not tell
                         (absent in older records)
    learning_rates (T,)  float64: the inner optimiser's (first group's) learning rate when step t
                         was applied; NaN where not seen (absent in older records)
    loop_facts           JSON of a :class:`~auditml.records.LoopFacts`: what was seen of the
                         loader, the engine and the model (absent where nothing was seen)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditml.fileio import atomic_path, npz_scalar, read_npz
from auditml.records import LoopFacts

DIRECTIONS = ("dirac", "random_direction")


def tensor_owners(coordinates: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For flat parameter ``coordinates`` of tensors of ``sizes`` (flattened in order): the index
    of the tensor each falls in, and its offset within that tensor."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owners = np.searchsorted(offsets, coordinates, side="right") - 1
    return owners, coordinates - offsets[owners]


@dataclass(frozen=True)
class GradientCanaryRecord:
    direction: str
    seed: int
    coordinates: np.ndarray
    dimension: int
    included: np.ndarray
    sample_rate: float
    noise_multiplier: float
    max_grad_norm: float
    observations: np.ndarray
    sampled: np.ndarray
    initial: np.ndarray
    final: np.ndarray
    batch_sizes: np.ndarray | None = None  # None: unknown at every step
    dataset_size: int = 0
    parameter_sizes: np.ndarray | None = None  # None: unknown (older records)
    probe: np.ndarray | None = None  # None: no clipping probe
    probe_sampled: np.ndarray | None = None
    divisors: np.ndarray | None = None  # None: unknown at every step (older records)
    learning_rates: np.ndarray | None = None  # None: unknown at every step (older records)
    loop_facts: LoopFacts | None = None  # None: nothing seen of the loop beyond its sums
    # The updates check (None: not watched, older records): per noisy update, whether the
    # weights had changed since the previous one, and a last entry for after the last update;
    # per trainable tensor, how often it had.
    changed_outside: np.ndarray | None = None
    changed_tensors: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.included)

    @property
    def steps(self) -> int:
        return len(self.observations)

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            # Compressed: ``sampled`` is mostly False and observations are (steps, m).
            np.savez_compressed(
                handle,
                direction=np.str_(self.direction),
                seed=np.int64(self.seed),
                coordinates=self.coordinates.astype(np.int64),
                dimension=np.int64(self.dimension),
                included=self.included.astype(bool),
                sample_rate=np.float64(self.sample_rate),
                noise_multiplier=np.float64(self.noise_multiplier),
                max_grad_norm=np.float64(self.max_grad_norm),
                observations=self.observations.astype(np.float32),
                sampled=self.sampled.astype(bool),
                initial=self.initial.astype(np.float32),
                final=self.final.astype(np.float32),
                batch_sizes=self.known_batch_sizes().astype(np.int64),
                dataset_size=np.int64(self.dataset_size),
                **({} if self.parameter_sizes is None else
                   {"parameter_sizes": np.asarray(self.parameter_sizes, np.int64)}),
                **({} if self.probe is None or self.probe_sampled is None else
                   {"probe": np.asarray(self.probe, np.float32),
                    "probe_sampled": np.asarray(self.probe_sampled, np.bool_)}),
                **({} if self.divisors is None else
                   {"divisors": np.asarray(self.divisors, np.float64)}),
                **({} if self.learning_rates is None else
                   {"learning_rates": np.asarray(self.learning_rates, np.float64)}),
                **({} if self.loop_facts is None else
                   {"loop_facts": np.str_(self.loop_facts.model_dump_json())}),
                **({} if self.changed_outside is None or self.changed_tensors is None else
                   {"changed_outside": np.asarray(self.changed_outside, np.bool_),
                    "changed_tensors": np.asarray(self.changed_tensors, np.int64)}),
            )

    def known_batch_sizes(self) -> np.ndarray:
        """One batch size per step, -1 where unknown."""
        if self.batch_sizes is None:
            return np.full(self.steps, -1, np.int64)
        return np.asarray(self.batch_sizes, np.int64)

    @classmethod
    def load(cls, path: Path) -> GradientCanaryRecord:
        """Read and validate; any fault is a :class:`RunDirectoryError` naming the file."""
        def build(data: Any) -> GradientCanaryRecord:
            record = cls(
                direction=str(npz_scalar(data, "direction", "U")),
                seed=int(npz_scalar(data, "seed", "iu")),
                coordinates=_array(data, "coordinates", np.int64),
                dimension=int(npz_scalar(data, "dimension", "iu")),
                included=_array(data, "included", np.bool_),
                sample_rate=float(npz_scalar(data, "sample_rate", "f")),
                noise_multiplier=float(npz_scalar(data, "noise_multiplier", "f")),
                max_grad_norm=float(npz_scalar(data, "max_grad_norm", "f")),
                observations=_array(data, "observations", np.float32),
                sampled=_array(data, "sampled", np.bool_),
                initial=_array(data, "initial", np.float32),
                final=_array(data, "final", np.float32),
                # Kept since 2026-12; older records know no batch size.
                batch_sizes=(_array(data, "batch_sizes", np.int64)
                             if "batch_sizes" in data else None),
                dataset_size=(int(npz_scalar(data, "dataset_size", "iu"))
                              if "dataset_size" in data else 0),
                parameter_sizes=(_array(data, "parameter_sizes", np.int64)
                                 if "parameter_sizes" in data else None),
                probe=_array(data, "probe", np.float32) if "probe" in data else None,
                probe_sampled=(_array(data, "probe_sampled", np.bool_)
                               if "probe_sampled" in data else None),
                divisors=_array(data, "divisors", np.float64) if "divisors" in data else None,
                learning_rates=(_array(data, "learning_rates", np.float64)
                                if "learning_rates" in data else None),
                loop_facts=(
                    LoopFacts.model_validate_json(str(npz_scalar(data, "loop_facts", "U")))
                    if "loop_facts" in data else None
                ),
                changed_outside=(_array(data, "changed_outside", np.bool_)
                                 if "changed_outside" in data else None),
                changed_tensors=(_array(data, "changed_tensors", np.int64)
                                 if "changed_tensors" in data else None),
            )
            record.check()
            return record

        return read_npz(path, "gradient canary record", build)

    def check(self) -> None:
        """Raise ValueError if the arrays do not fit together (callers name the file)."""
        m = len(self.included)
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if m == 0 or self.included.shape != (m,):
            raise ValueError(f"included must be a non-empty vector, got {self.included.shape}")
        expected_coordinates = (m,) if self.direction == "dirac" else (0,)
        if self.coordinates.shape != expected_coordinates:
            raise ValueError(
                f"coordinates has shape {self.coordinates.shape}, expected {expected_coordinates}"
            )
        if self.dimension < 1 or (
            len(self.coordinates)
            and (self.coordinates.min() < 0 or self.coordinates.max() >= self.dimension)
        ):
            raise ValueError("a canary coordinate lies outside the model's parameters")
        if len(np.unique(self.coordinates)) != len(self.coordinates):
            raise ValueError("two dirac canaries share a coordinate (they are drawn without "
                             "replacement)")
        if self.observations.ndim != 2 or self.observations.shape[1] != m:
            raise ValueError(f"observations has shape {self.observations.shape}, expected (T, {m})")
        if self.sampled.shape != self.observations.shape:
            raise ValueError(f"sampled has shape {self.sampled.shape}, expected "
                             f"{self.observations.shape}")
        if np.any(self.sampled & ~self.included):
            raise ValueError("a canary whose coin said OUT is marked as sampled")
        for name, vector in (("initial", self.initial), ("final", self.final)):
            if vector.shape != (m,):
                raise ValueError(f"{name} has shape {vector.shape}, expected ({m},)")
        for name, values in (("observations", self.observations), ("initial", self.initial),
                             ("final", self.final)):
            if not np.isfinite(values).all():
                raise ValueError(f"{name} holds NaN or infinite values")
        sizes = self.known_batch_sizes()
        if sizes.shape != (self.steps,) or np.any(sizes < -1):
            raise ValueError(f"batch_sizes must hold one size (or -1) per step, got {sizes.shape}")
        if self.dataset_size < 0 or (self.dataset_size and np.any(sizes > self.dataset_size)):
            raise ValueError("dataset_size is negative or below a batch size")
        if (self.changed_outside is None) != (self.changed_tensors is None) or (
                self.changed_outside is not None and self.changed_tensors is not None and (
                    self.changed_outside.ndim != 1 or len(self.changed_outside) < 1
                    or self.changed_tensors.ndim != 1 or np.any(self.changed_tensors < 0)
                    or np.any(self.changed_tensors > len(self.changed_outside)))):
            raise ValueError("changed_outside and changed_tensors do not fit together")
        if self.parameter_sizes is not None and (
            self.parameter_sizes.ndim != 1 or np.any(self.parameter_sizes < 1)
            or int(self.parameter_sizes.sum()) != self.dimension
        ):
            raise ValueError("parameter_sizes must be positive and add up to dimension")
        if (self.probe is None) != (self.probe_sampled is None):
            raise ValueError("probe and probe_sampled come together (or neither)")
        if self.probe is not None and self.probe_sampled is not None and (
            self.probe.shape != (self.steps,) or self.probe_sampled.shape != (self.steps,)
            or not np.isfinite(self.probe).all()
        ):
            raise ValueError(f"probe and probe_sampled must hold one finite value per step "
                             f"({self.steps}), got {self.probe.shape} and "
                             f"{self.probe_sampled.shape}")
        if self.divisors is not None and (
            self.divisors.shape != (self.steps,) or np.isinf(self.divisors).any()
        ):
            raise ValueError(f"divisors must hold one finite value (or NaN) per step "
                             f"({self.steps}), got shape {self.divisors.shape}")
        if self.learning_rates is not None and (
            self.learning_rates.shape != (self.steps,) or np.isinf(self.learning_rates).any()
        ):
            raise ValueError(f"learning_rates must hold one finite value (or NaN) per step "
                             f"({self.steps}), got shape {self.learning_rates.shape}")
        if not (0 < self.sample_rate <= 1 and self.noise_multiplier >= 0
                and self.max_grad_norm > 0):
            raise ValueError("sample_rate, noise_multiplier or max_grad_norm is out of range")


def _array(data: Any, key: str, dtype: type) -> np.ndarray:
    value = data[key]
    if value.dtype != np.dtype(dtype):
        raise ValueError(f"{key} has dtype {value.dtype}, expected {np.dtype(dtype)}")
    return value
