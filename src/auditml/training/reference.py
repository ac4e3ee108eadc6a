"""Reference models: the target's recipe retrained on random halves of an example set.

LiRA, RMIA and the shadow-model attack compare the target's behaviour on an example with the
behaviour of models that did (IN) or did not (OUT) train on it. This engine trains those models
once per run and saves them in the run directory, where every later audit reuses them.

Models come in complementary pairs (Carlini et al. 2022): model 2j trains on a random half of
the examples and model 2j+1 on the other half, so with an even count every example is IN for
exactly half of the models, and adding pairs later never changes the existing ones. The keep
matrix ``keep[k, i]`` records whether model k trained on example i.

The unit of work, :class:`ReferenceJob`, is pure and serialisable (config, seed, training
indices -> weights), so the same jobs run one by one, in a local process pool, or elsewhere.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from auditml.config import AuditMLConfig, parse_config
from auditml.data import ArrayDataset, LoadedDataset
from auditml.errors import AuditMLError, RunDirectoryError
from auditml.fileio import atomic_path, write_json
from auditml.models import predict_logits

ReferenceFactory = Callable[[ArrayDataset, int], nn.Module]
"""Bring-your-own reference training: ``(train_set, seed) -> trained model``."""

_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ReferenceJob:
    """One reference model: train the config's recipe on ``pool[train_indices]`` with ``seed``."""

    config: dict[str, Any]
    seed: int
    train_indices: np.ndarray

    def run(self) -> dict[str, np.ndarray]:
        """Train and return the weights as numpy arrays (picklable across processes)."""
        from auditml.training.trainer import fit_model

        config = parse_config(self.config, "reference job")
        pool = _load_pool(json.dumps(self.config, sort_keys=True))
        train_set = pool.subset(self.train_indices)
        fit = fit_model(config, train_set, None, seed=self.seed, device=torch.device("cpu"))
        return {name: t.detach().cpu().numpy() for name, t in fit.model.state_dict().items()}


@lru_cache(maxsize=2)
def _load_pool(config_json: str) -> ArrayDataset:
    """The dataset's pool, loaded once per process (jobs in one worker share it)."""
    from auditml.training.trainer import load_dataset

    loaded: LoadedDataset = load_dataset(parse_config(json.loads(config_json)))
    return loaded.pool


def _run_job(job: ReferenceJob, threads: int) -> dict[str, np.ndarray]:
    torch.set_num_threads(threads)
    return job.run()


def paired_keep(count: int, size: int, seed: int) -> np.ndarray:
    """``(count, size)`` keep matrix of complementary pairs; row k depends only on (seed, k//2)."""
    keep = np.zeros((count, size), bool)
    for pair in range((count + 1) // 2):
        rng = np.random.default_rng([seed, pair])
        half = np.zeros(size, bool)
        half[rng.permutation(size)[: size // 2]] = True
        keep[2 * pair] = half
        if 2 * pair + 1 < count:
            keep[2 * pair + 1] = ~half
    return keep


@dataclass(frozen=True)
class ReferenceModels:
    """Trained reference models and which examples each one saw."""

    models: list[nn.Module]
    keep: np.ndarray  # (K, N) bool: keep[k, i] = model k trained on example i
    device: torch.device

    def __len__(self) -> int:
        return len(self.models)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(K, len(x), num_classes)`` logits of every reference model."""
        return np.stack([predict_logits(m, x, device=self.device) for m in self.models])

    def subset(self, count: int) -> ReferenceModels:
        return ReferenceModels(self.models[:count], self.keep[:count], self.device)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def train_reference_models(
    jobs: Sequence[ReferenceJob],
    *,
    workers: int,
    console: Console | None = None,
    description: str = "reference models",
) -> list[dict[str, np.ndarray]]:
    """Run ``jobs`` in a process pool of ``workers`` (in this process when 1), in order."""
    results: list[dict[str, np.ndarray] | None] = [None] * len(jobs)
    with _ModelProgress(console, description, len(jobs)) as advance:
        if workers <= 1 or len(jobs) <= 1:
            for index, job in enumerate(jobs):
                results[index] = job.run()
                advance()
        else:
            # Threads per worker split the cores, so the pool never oversubscribes the machine.
            threads = max(1, (os.cpu_count() or 1) // workers)
            # spawn, not fork: forking a process that has started torch's thread pools can hang.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                futures = {pool.submit(_run_job, job, threads): i for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    advance()
    return [weights for weights in results if weights is not None]


class _ModelProgress:
    """A progress bar over models when a terminal is attached, one line per model otherwise."""

    def __init__(self, console: Console | None, description: str, total: int) -> None:
        self.console, self.description, self.total, self.done = console, description, total, 0
        self._bar: Progress | None = None
        if console is not None and console.is_terminal:
            self._bar = Progress(
                TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=console,
            )

    def __enter__(self) -> Callable[[], None]:
        task = None
        if self._bar is not None:
            self._bar.__enter__()
            task = self._bar.add_task(self.description, total=self.total)

        def advance() -> None:
            self.done += 1
            if self._bar is not None and task is not None:
                self._bar.update(task, advance=1)
            elif self.console is not None:
                self.console.print(
                    f"{self.description}: {self.done}/{self.total} trained", highlight=False
                )

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


class ReferenceStore:
    """Reference models saved under ``<run>/reference/<name>/``: manifest, keep matrix, weights.

    ``name`` separates model sets trained on different example sets (``audit`` for the audited
    members and non-members, ``population`` for data the target never saw). A set is reused
    only if it was trained on exactly the same examples with the same recipe.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _manifest(self) -> dict[str, Any] | None:
        path = self.directory / _MANIFEST
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirectoryError(
                f"{path} is corrupt ({error}); delete {self.directory} to retrain the models"
            ) from None

    def ensure(
        self,
        config: AuditMLConfig,
        example_indices: np.ndarray,
        count: int,
        build: Callable[[], nn.Module],
        *,
        workers: int,
        console: Console | None,
        description: str,
    ) -> ReferenceModels:
        """Load ``count`` models trained on halves of ``pool[example_indices]``, training the
        missing ones."""
        if count < 1:
            raise AuditMLError(f"reference model count must be at least 1, got {count}")
        recipe = config.resolved().model_dump(mode="json")
        recipe.pop("experiment_name")
        recipe.pop("output_dir")
        fingerprint = {
            "recipe": recipe,
            "examples": np.asarray(example_indices).tolist(),
            "seed": config.seed,
        }
        manifest = self._manifest()
        have = 0
        if manifest is not None and manifest.get("fingerprint") == fingerprint:
            have = int(manifest.get("count", 0))
        keep = paired_keep(max(count, have), len(example_indices), config.seed)
        if have < count:
            jobs = [
                ReferenceJob(
                    config=config.resolved().model_dump(mode="json"),
                    seed=_model_seed(config.seed, k),
                    train_indices=np.asarray(example_indices)[keep[k]],
                )
                for k in range(have, count)
            ]
            weights = train_reference_models(
                jobs, workers=workers, console=console, description=description
            )
            for k, state in zip(range(have, count), weights, strict=True):
                self._save_model(k, state)
            np.save(self.directory / "keep.npy", keep[:count])
            write_json(
                self.directory / _MANIFEST, {"count": count, "fingerprint": fingerprint}
            )
        models = [self._load_model(k, build) for k in range(count)]
        device = torch.device("cpu")
        return ReferenceModels(models, keep[:count], device)

    def _save_model(self, k: int, state: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / f"model_{k:03d}.safetensors") as tmp:
            save_file({name: np.ascontiguousarray(a) for name, a in state.items()}, str(tmp))

    def _load_model(self, k: int, build: Callable[[], nn.Module]) -> nn.Module:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.directory / f"model_{k:03d}.safetensors"
        try:
            model = build()
            model.load_state_dict(load_file(str(path)))
        except (SafetensorError, OSError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RunDirectoryError(
                f"reference model {path} is corrupt ({reason}); delete {self.directory} "
                "to retrain the reference models"
            ) from None
        return model.eval()


def _model_seed(run_seed: int, k: int) -> int:
    """A distinct, reproducible seed per reference model (never the target's own seed)."""
    return int(np.random.default_rng([run_seed, 1_000_003, k]).integers(2**31 - 1))


def train_with_factory(
    factory: ReferenceFactory,
    examples: ArrayDataset,
    count: int,
    *,
    seed: int,
    console: Console | None = None,
) -> ReferenceModels:
    """Bring-your-own reference models: ``factory(train_half, seed)`` for each keep row."""
    keep = paired_keep(count, len(examples), seed)
    models = []
    with _ModelProgress(console, "reference models", count) as advance:
        for k in range(count):
            models.append(factory(examples.subset(np.flatnonzero(keep[k])), _model_seed(seed, k)))
            advance()
    return ReferenceModels(models, keep, torch.device("cpu"))
