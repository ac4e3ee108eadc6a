"""When reference models can train batched, and the jobs that train them in groups.

:class:`~auditml.training.reference.ReferenceStore` hands its missing models here: if the recipe
can be batched (:func:`why_not_batched`), they are cut into groups of at most ``batch_models``
(bounding memory: a group holds K copies of every activation, and with DP-SGD K slices of
per-example gradients), each group is one job for the executor, and every model of a finished
group is saved at once, so a killed run keeps the groups that finished. Otherwise the store
runs one job per model, as before.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from auditml.config import AuditConfig, AuditMLConfig, parse_config
from auditml.errors import AuditMLError
from auditml.models import build_model
from auditml.models.scattering import FeatureModel
from auditml.training.device import resolve_device
from auditml.training.executors import Executor, JobProgress

# How many models one batched computation trains when audit.batch_models is null. On a CPU the
# gain comes from fewer, larger kernels and levels off by 8 (benchmarks/batched_training.py);
# a GPU keeps gaining up to the tens, where memory rather than speed sets the limit.
DEFAULT_BATCH_MODELS = {"cpu": 8, "cuda": 64}
Weights = dict[str, np.ndarray]


def job_device(config: AuditMLConfig) -> torch.device:
    """Where a reference job trains: its config's ``training.device``, resolved where the job
    runs. The store writes the device it chose there, and both kinds of job go through here, so
    the batched and the one-by-one path always train on the same device and draw the same
    noise (CPU and CUDA generators give different streams; on CUDA both draw from a CUDA
    generator seeded with the model's seed, which alone is what ``torch.manual_seed`` leaves)."""
    return resolve_device(config.training.device)


def batch_models_setting(
    audit: AuditConfig, device: str = "cpu", *, dp: bool = False, layer_rules: bool = True
) -> int:
    """How many models to train at once under ``audit`` on ``device``: 1 turns batching off.

    DP-SGD on a CPU clips each model with the single-model trainer's per-layer rules, and then
    K models batched train faster than one after another (1.49x at K = 8, 1.56x at K = 1:
    ``benchmarks/batched_training.py --dp-only``). Where those rules do not cover the model
    (``layer_rules`` False) the clipping falls back to ``vmap``'s per-example gradients, which
    cost more there than the pool (K = 1 batched took 2.2x one model alone), so such models are
    not batched on a CPU unless ``audit.batch_models`` asks for it.
    """
    if not audit.batched:
        return 1
    kind = torch.device(device).type
    if audit.batch_models is None and dp and not layer_rules and kind == "cpu":
        return 1
    return audit.batch_models or DEFAULT_BATCH_MODELS.get(kind, DEFAULT_BATCH_MODELS["cpu"])


def layer_rules_cover(config: AuditMLConfig) -> bool:
    """Whether the fast path's per-layer rules cover every trainable layer of ``config``'s
    DP model (what the batched CPU trainer clips with; see :func:`batch_models_setting`)."""
    from auditml.training.per_example import fast_path_problems

    try:
        return not fast_path_problems(_recipe_model(config))
    except AuditMLError:
        return False


def _recipe_model(config: AuditMLConfig) -> nn.Module:
    """``config``'s model as its trainer builds it (prepared for DP-SGD when DP is on), without
    touching the caller's RNG or printing library notices; AuditMLError if it cannot be built."""
    spec = config.dataset_spec
    dp = config.training.dp
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(config.arch, spec.input_shape, spec.num_classes)
        if dp.enabled:
            from auditml.training.privacy import prepare_for_dp

            model = prepare_for_dp(model, fix=dp.fix_model, report=lambda _: None)
    return model


def why_not_batched(config: AuditMLConfig) -> str | None:
    """Why ``config``'s models cannot be trained batched, or None when they can.

    Tries one batched step of two copies on a tiny input, so an architecture ``vmap`` cannot
    handle (data-dependent control flow, in-place updates of buffers) is found here, not after
    the models are queued.
    """
    training = config.training
    dp = training.dp if training.dp.enabled else None
    if config.dataset_spec.task != "classification":
        return "language models are trained one by one"
    if config.model.base is not None:
        return "models starting from model.base's weights are trained one by one"
    if dp is not None and training.canaries.kind == "gradient" and training.canaries.count:
        return "gradient canaries are injected by the single-model DP-SGD trainer"
    if dp is not None and dp.recipe.resolved().ema_decay:
        return "the weight average (training.dp.recipe.ema_decay) is single-model only"
    if dp is not None and (dp.recipe.resolved().augmentation_multiplicity or 1) > 1:
        return ("augmentation multiplicity (training.dp.recipe.augmentation_multiplicity) is "
                "single-model only")
    try:
        model = _recipe_model(config)
    except AuditMLError as error:  # the single-model path reports it in full
        return f"the model cannot be built for this recipe ({error})"
    if isinstance(model, FeatureModel):
        return ("a model with a fixed feature extractor (ScatterNet) trains its head on cached "
                "features, single-model only")
    if any(True for _ in model.buffers()):
        names = sorted({type(m).__name__ for m in model.modules() if any(
            True for _ in m.buffers(recurse=False))})
        return f"{', '.join(names)} keep running statistics, which are not per model"
    spec = config.dataset_spec
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _trial_step(model, spec.input_shape, spec.num_classes)
        except Exception as error:  # any failure means: train them one by one
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return f"torch.func cannot batch {config.arch} ({type(error).__name__}: {first})"
    return None


def can_batch(config: AuditMLConfig) -> bool:
    return why_not_batched(config) is None


def batchable(config: AuditMLConfig, console: Console | None, description: str) -> bool:
    """:func:`can_batch`, saying why not on ``console`` (the models then train one by one)."""
    problem = why_not_batched(config)
    if problem is not None and console is not None:
        console.print(f"{description}: trained one by one, not batched: {problem}",
                      highlight=False)
    return problem is None


def _trial_step(model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> None:
    """One plain and one per-example gradient of two stacked copies of ``model``."""
    stacked, _ = stack_module_state([model, model])
    x = torch.zeros(2, 2, *input_shape)
    y = torch.zeros(2, 2, dtype=torch.long)

    def example_loss(own: dict[str, torch.Tensor], inputs: torch.Tensor, label: torch.Tensor
                     ) -> torch.Tensor:
        logits = functional_call(model, own, (inputs.unsqueeze(0),))
        return nn.functional.cross_entropy(logits, label.unsqueeze(0))

    vmap(vmap(grad(example_loss), in_dims=(None, 0, 0)))(stacked, x, y)
    logits = vmap(lambda own, inputs: functional_call(model, own, (inputs,)))(stacked, x)
    logits.sum().backward()


@dataclass(frozen=True)
class BatchedReferenceJob:
    """Several reference models of one recipe, trained as one computation."""

    config: dict[str, Any]
    seeds: tuple[int, ...]
    train_indices: tuple[np.ndarray, ...]
    # Which of the caller's jobs these models are, in order.
    positions: tuple[int, ...]

    def run(self) -> list[Weights]:
        from auditml.training.batched import train_batched
        from auditml.training.run_model import load_pool

        config = parse_config(self.config, "reference job")
        return train_batched(config, load_pool(self.config), self.train_indices, self.seeds,
                             device=job_device(config))


def group_jobs(
    recipe: dict[str, Any], seeds: Sequence[int], indices: Sequence[np.ndarray], batch_models: int
) -> list[BatchedReferenceJob]:
    """The models cut into near-equal groups of at most ``batch_models`` (none left small)."""
    if batch_models < 1:
        raise AuditMLError(f"audit.batch_models must be at least 1, got {batch_models}")
    count = math.ceil(len(seeds) / batch_models)
    return [
        BatchedReferenceJob(recipe, tuple(seeds[p] for p in part),
                            tuple(indices[p] for p in part), tuple(int(p) for p in part))
        for part in np.array_split(np.arange(len(seeds)), count) if len(part)
    ]


def train_groups(
    groups: Sequence[BatchedReferenceJob],
    executor: Executor,
    console: Console | None,
    description: str,
    on_done: Callable[[int, Weights], None],
) -> None:
    """Run ``groups`` on ``executor``; ``on_done(position, weights)`` for each model, saved as
    soon as its group finishes."""
    total = sum(len(group.positions) for group in groups)
    with JobProgress(console, description, total) as advance:

        def finished(index: int, trained: list[Weights]) -> None:
            for position, weights in zip(groups[index].positions, trained, strict=True):
                on_done(position, weights)
                advance()

        executor.run(groups, finished)
