"""Reference models: the target's recipe retrained on random halves of an example set.

LiRA, RMIA and the shadow-model attack compare the target's behaviour on an example with the
behaviour of models that did (IN) or did not (OUT) train on it. This engine trains those models
once per run and saves them in the run directory, where every later audit reuses them.

Models come in complementary pairs (Carlini et al. 2022): model 2j trains on a random half of
the examples and model 2j+1 on the other half, so with an even count every example is IN for
exactly half of the models, and adding pairs later never changes the existing ones. The keep
matrix ``keep[k, i]`` records whether model k trained on example i.

The unit of work, :class:`ReferenceJob`, is pure and serialisable (config, seed, training
indices -> weights), so the same jobs run on any executor (:mod:`auditml.training.executors`):
one by one, in a local process pool, or elsewhere. Each model is saved as soon as it finishes,
so a killed audit loses only the models still training; the next audit trains the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from auditml.config import RECIPE_PARTS_ADDED, AuditMLConfig, parse_config
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, RunDirectoryError
from auditml.fileio import atomic_path, write_json
from auditml.models import predict_logits
from auditml.run_directory import REFERENCE_KEEP_FILE, REFERENCE_MANIFEST_FILE
from auditml.training.batched_jobs import batchable, group_jobs, job_device, train_groups
from auditml.training.device import resolve_device
from auditml.training.executors import Executor, JobProgress, LocalPoolExecutor, training_device
from auditml.training.run_model import load_pool

if TYPE_CHECKING:
    from auditml.models.causal_lm import TokenStatistics

ReferenceFactory = Callable[[ArrayDataset, int], nn.Module]
"""Bring-your-own reference training: ``(train_set, seed) -> trained model``."""

# Named in auditml.run_directory, which must know them to tell auditml's files from a user's.
_MANIFEST = REFERENCE_MANIFEST_FILE
_KEEP = REFERENCE_KEEP_FILE
Weights = dict[str, np.ndarray]


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
        train_set = load_pool(self.config).subset(self.train_indices)
        fit = fit_model(config, train_set, None, seed=self.seed, device=job_device(config))
        return {name: t.detach().cpu().numpy() for name, t in fit.model.state_dict().items()}


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

    def token_statistics(self, x: np.ndarray) -> Iterator[TokenStatistics]:
        """Each language model's next-token statistics on the token rows ``x``, one model at a
        time (so memory holds one model's, not all of them)."""
        from auditml.models.causal_lm import token_statistics

        for model in self.models:
            yield token_statistics(model, x, device=str(self.device))

    def subset(self, count: int) -> ReferenceModels:
        return ReferenceModels(self.models[:count], self.keep[:count], self.device)


def train_reference_models(
    jobs: Sequence[ReferenceJob],
    *,
    workers: int,
    console: Console | None = None,
    description: str = "reference models",
    executor: Executor | None = None,
) -> list[Weights]:
    """Run ``jobs`` on ``executor`` (default: a local pool of ``workers``); weights in job order."""
    results: dict[int, Weights] = {}
    _train(jobs, executor or LocalPoolExecutor(workers), console, description, results.__setitem__)
    return [results[index] for index in range(len(jobs))]


def _train(
    jobs: Sequence[ReferenceJob],
    executor: Executor,
    console: Console | None,
    description: str,
    on_done: Callable[[int, Weights], None],
) -> None:
    with JobProgress(console, description, len(jobs)) as advance:

        def finished(index: int, weights: Weights) -> None:
            on_done(index, weights)
            advance()

        executor.run(jobs, finished)


class ReferenceStore:
    """Reference models saved under ``<run>/reference/<name>/``: manifest, keep matrix, weights.

    ``name`` separates model sets trained on different example sets (``audit`` for the audited
    members and non-members, ``population`` for data the target never saw). A set is reused
    only if it was trained on exactly the same examples with the same recipe. Files:
    ``manifest.json`` (``fingerprint``: recipe, examples, seed; ``done``: numbers of the models
    trained for it), ``keep.npy`` and ``model_<k:03d>.safetensors``. Each model's weights are
    written (atomically) before the manifest counts it, so a killed run never loses a finished
    model and never counts an unfinished one; the next run trains only the missing ones.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

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
        executor: Executor | None = None,
        batch_models: int = 1,
        device: torch.device | None = None,
        base_training_id: str | None = None,
        always_in: np.ndarray | None = None,
    ) -> ReferenceModels:
        """Load ``count`` models trained on halves of ``pool[example_indices]``, training the
        missing ones on ``executor`` (default: a local pool of ``workers``).

        The models train on the config's ``training.device`` as the executor resolves it, and
        are loaded for scoring onto ``device`` (default: that setting resolved here, where the
        target is scored). With ``batch_models > 1`` and a recipe that allows it, the missing
        models train up to ``batch_models`` at a time as one computation
        (:mod:`auditml.training.batched`), each group one job; otherwise one job per model.
        ``base_training_id`` is the training of ``model.base`` the models start from (a
        fine-tuned recipe's): a set trained from another training of the base is not reused.
        ``always_in``: pool indices every model also trains on (the target's training examples
        the audit does not judge), so each model trains on as many examples as the target."""
        if count < 1:
            raise AuditMLError(f"reference model count must be at least 1, got {count}")
        executor = executor or LocalPoolExecutor(workers)
        device = device or resolve_device(config.training.device)
        trains_on = training_device(executor, config.training.device)
        examples = np.asarray(example_indices)
        fingerprint = _fingerprint(config, examples, torch.device(trains_on).type)
        if base_training_id is not None:
            fingerprint["base_training_id"] = base_training_id
        always = np.empty(0, np.int64) if always_in is None else np.asarray(always_in, np.int64)
        if len(always):  # absent otherwise: sets trained before the key existed still match
            fingerprint["always_in"] = always.tolist()
        done, keep, missing = self._start(fingerprint, count, len(examples), config.seed,
                                          console, description)
        if missing:
            recipe = config.resolved().model_dump(mode="json")
            # Every job, batched or not, trains where the fingerprint says (job_device).
            recipe["training"]["device"] = trains_on
            jobs = [
                ReferenceJob(recipe, _model_seed(config.seed, k),
                             np.concatenate([examples[keep[k]], always]))
                for k in missing
            ]

            def save(index: int, weights: Weights) -> None:
                self._save_model(missing[index], weights)
                done.add(missing[index])
                write_json(self.directory / _MANIFEST,
                           {"fingerprint": fingerprint, "done": sorted(done)})

            if batch_models > 1 and len(jobs) > 1 and batchable(config, console, description):
                groups = group_jobs(recipe, [job.seed for job in jobs],
                                    [job.train_indices for job in jobs], batch_models)
                train_groups(groups, executor, console, description, save)
            else:
                _train(jobs, executor, console, description, save)
        self._check_keep(keep[:count])
        models = [self._load_model(k, build).to(device) for k in range(count)]
        return ReferenceModels(models, keep[:count], device)

    def ensure_from_factory(
        self,
        factory: ReferenceFactory,
        examples: ArrayDataset,
        count: int,
        *,
        seed: int,
        key: dict[str, Any],
        build: Callable[[], nn.Module],
        console: Console | None,
        description: str,
    ) -> ReferenceModels:
        """:meth:`ensure` for models the caller's ``factory(train_half, seed)`` trains (the
        Python API's ``reference_dir``). The set is reused when the examples (their bytes), the
        seed and ``key`` (what the caller and the API know of the recipe) are the same; the
        factory's code is not knowable, so ``key`` is all that stands for it. ``build`` makes a
        module of the models' architecture to load saved weights into; a factory model of
        another architecture is refused before it is saved. The models are the ones
        :func:`train_with_factory` trains (same halves, same seeds)."""
        if count < 1:
            raise AuditMLError(f"reference model count must be at least 1, got {count}")
        fingerprint = {"factory": key, "examples": _examples_digest(examples),
                       "size": len(examples), "seed": seed}
        done, keep, missing = self._start(fingerprint, count, len(examples), seed, console,
                                          description)
        if missing:
            shapes = {name: tuple(t.shape) for name, t in build().state_dict().items()}
            with JobProgress(console, description, len(missing)) as advance:
                for k in missing:
                    model = factory(examples.subset(np.flatnonzero(keep[k])), _model_seed(seed, k))
                    self._save_model(k, _factory_weights(model, shapes))
                    done.add(k)
                    write_json(self.directory / _MANIFEST,
                               {"fingerprint": fingerprint, "done": sorted(done)})
                    advance()
        self._check_keep(keep[:count])
        models = [self._load_model(k, build) for k in range(count)]
        return ReferenceModels(models, keep[:count], torch.device("cpu"))

    def _start(
        self, fingerprint: dict[str, Any], count: int, size: int, seed: int,
        console: Console | None, description: str,
    ) -> tuple[set[int], np.ndarray, list[int]]:
        """The models already trained for ``fingerprint``, the keep matrix, and the numbers of
        the missing ones; with some missing, the store is made ready to save them."""
        done = self._done(fingerprint)
        keep = paired_keep(max(count, *(k + 1 for k in done), 0), size, seed)
        missing = [k for k in range(count) if k not in done]
        if missing:
            if not done:  # a new fingerprint: forget the old set before writing any model
                self._reset(fingerprint)
            with atomic_path(self.directory / _KEEP) as tmp, tmp.open("wb") as file:
                np.save(file, keep)
            if done and console is not None:
                console.print(f"{description}: {len(done)} already trained, resuming",
                              highlight=False)
        return done, keep, missing

    def _corrupt(self, path: Path, reason: str) -> RunDirectoryError:
        return RunDirectoryError(
            f"{path} is corrupt ({reason}); delete {self.directory} to retrain the reference "
            "models"
        )

    def _done(self, fingerprint: dict[str, Any]) -> set[int]:
        """The models already trained for ``fingerprint`` (none for another fingerprint)."""
        path = self.directory / _MANIFEST
        if self.directory.exists() and not self.directory.is_dir():
            raise RunDirectoryError(
                f"{self.directory} is a file where auditml keeps its reference models; delete it "
                "to train them"
            )
        if not path.exists():
            return set()
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            # RecursionError: JSON nested too deep for the parser.
            raise self._corrupt(path, str(error).splitlines()[0]) from None
        if not isinstance(manifest, dict):
            raise self._corrupt(path, "not a JSON object")
        if not _same_models(manifest.get("fingerprint"), fingerprint):
            return set()
        done = manifest.get("done")
        if done is None and isinstance(manifest.get("count"), int):
            done = list(range(manifest["count"]))  # written before resumable training
        if not isinstance(done, list) or not all(
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 100_000 for k in done
        ):
            raise self._corrupt(path, "'done' must list model numbers")
        return set(done)

    def _reset(self, fingerprint: dict[str, Any]) -> None:
        write_json(self.directory / _MANIFEST, {"fingerprint": fingerprint, "done": []})
        for stale in self.directory.glob("model_*.safetensors"):
            stale.unlink()

    def _check_keep(self, keep: np.ndarray) -> None:
        path = self.directory / _KEEP
        try:
            saved = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise self._corrupt(path, str(error).splitlines()[0] or type(error).__name__) from None
        count, size = keep.shape
        if saved.dtype != bool or saved.ndim != 2 or saved.shape[0] < count or (
            saved.shape[1] != size
        ) or not np.array_equal(saved[:count], keep):
            raise self._corrupt(path, "it does not match the models' training halves")

    def _save_model(self, k: int, state: Weights) -> None:
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
            raise self._corrupt(path, str(error).splitlines()[0] or type(error).__name__) from None
        return model.eval()


def _fingerprint(config: AuditMLConfig, examples: np.ndarray, device_type: str
                 ) -> dict[str, Any]:
    """What the models depend on: the recipe (not where the run is saved), examples, seed, and
    the kind of device they train on.

    The device counts by kind (``cpu``, ``cuda``, ``mps``), not by the setting: ``auto``,
    ``cuda`` and ``cuda:1`` that all train on a GPU give the same models, but a CPU and a GPU do
    not (their random generators give different noise and initial draws, and their kernels
    round differently), so moving a run from one to the other retrains its models.
    """
    recipe = config.resolved().model_dump(mode="json")
    recipe.pop("experiment_name")
    recipe.pop("output_dir")
    recipe["training"].pop("device")
    # Where the models train is not what they are (and runs saved before these keys match).
    recipe["audit"].pop("executor", None)
    recipe["audit"].pop("ray_address", None)
    # How the models are scheduled (batched or one by one) is the same mechanism, so the same set.
    recipe["audit"].pop("batched", None)
    recipe["audit"].pop("batch_models", None)
    # Every member audited (the default) is how stores written before data.audit_size trained.
    if recipe["data"].get("audit_size") is None:
        recipe["data"].pop("audit_size", None)
    return {"recipe": recipe, "examples": examples.tolist(), "seed": config.seed,
            "device": device_type}


def _same_models(saved: Any, fingerprint: dict[str, Any]) -> bool:
    """Whether a manifest's fingerprint names the models ``fingerprint`` asks for.

    Stores written before models trained on the run's device have no ``device``: all their
    models trained on the CPU, and their recipe kept the (then unused) device setting. Stores
    written before a part of the DP recipe existed trained without it.
    """
    if saved == fingerprint:
        return True
    if not isinstance(saved, dict) or not isinstance(saved.get("recipe"), dict) or not (
        isinstance(saved["recipe"].get("training"), dict)
    ):
        return False
    training = dict(saved["recipe"]["training"])
    upgraded = {**saved, "recipe": {**saved["recipe"], "training": training}}
    if "device" not in saved:
        training.pop("device", None)
        upgraded["device"] = "cpu"
    dp = training.get("dp")
    if isinstance(dp, dict) and isinstance(dp.get("recipe"), dict):
        training["dp"] = {**dp, "recipe": {**RECIPE_PARTS_ADDED, **dp["recipe"]}}
    return upgraded == fingerprint


def _examples_digest(examples: ArrayDataset) -> str:
    """SHA-256 of the examples' inputs and labels (values, shapes and dtypes)."""
    digest = hashlib.sha256()
    for array in (examples.x, examples.y):
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def _factory_weights(model: object, shapes: dict[str, tuple[int, ...]]) -> Weights:
    """A factory model's weights as numpy, refused unless it is a module of the architecture
    the store loads into (its tensors' names and shapes)."""
    if not isinstance(model, nn.Module):
        raise AuditMLError(f"`reference_factory` must return an nn.Module, got "
                           f"{type(model).__name__}")
    state = model.state_dict()
    if {name: tuple(t.shape) for name, t in state.items()} != shapes:
        raise AuditMLError(
            "`reference_dir` keeps reference models built like `model`, but `reference_factory` "
            f"returned a {type(model).__name__} of another architecture: return models like "
            "`model`, or leave reference_dir out"
        )
    return {name: t.detach().cpu().numpy() for name, t in state.items()}


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
    with JobProgress(console, "reference models", count) as advance:
        for k in range(count):
            models.append(factory(examples.subset(np.flatnonzero(keep[k])), _model_seed(seed, k)))
            advance()
    return ReferenceModels(models, keep, torch.device("cpu"))
