"""``auditml audit``: run attacks against a trained run and write ``audit/<attack>.json``.

The runner is the only place that connects the parts: it reads the run directory, prepares what
the attacks need (reference models, population data), asks each attack for scores, hands the
scores to :mod:`auditml.metrics`, and writes what comes back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from auditml.attacks import ATTACKS, AuditTarget, MembershipAttack
from auditml.attacks.canary_audit import NAME as CANARY_AUDIT
from auditml.attacks.canary_audit import canary_audit
from auditml.attacks.results import AttackOutcome, attack_result, write_overlay
from auditml.config import AuditMLConfig
from auditml.data import DATASETS, ArrayDataset, MembershipSplit, select
from auditml.errors import RunDirectoryError
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, load_dataset
from auditml.training.device import resolve_device
from auditml.training.reference import ReferenceModels, ReferenceStore, default_workers


@dataclass(frozen=True)
class AuditReport:
    """Every attack's outcome, in the order they ran, and the overlaid ROC plot.

    ``target`` and ``is_member`` are what the attacks were given and judged on, so further
    attacks (or variants) can run against exactly the same examples and reference models.
    """

    outcomes: list[AttackOutcome]
    roc_plot: Path | None
    target: AuditTarget
    is_member: np.ndarray
    # The one-run canary audit's payload, when it ran (``dp_audit``).
    canary_audit: dict[str, Any] | None = None


def run_audit(
    run_dir: str | Path,
    attacks: Sequence[str] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    *,
    config_hint: str | None = None,
    console: Console | None = None,
) -> AuditReport:
    """Attack the model in ``run_dir`` with its saved members and non-members.

    ``attacks`` defaults to the run config's ``audit.attacks`` (``"all"`` = every registered
    attack). ``settings`` maps an attack name to keyword settings that override the config's.
    ``config_hint`` is the config path quoted in "run `auditml train --config ...` first".
    """
    run = RunDirectory(run_dir)
    run.require_trained(config_hint)
    config = run.read_config()
    names = _attack_names(attacks, config)
    one_run = CANARY_AUDIT in names
    names = [name for name in names if name != CANARY_AUDIT]
    overrides = settings or {}
    instances = [
        ATTACKS.get(name)(**{**config.audit.attack_settings(name), **overrides.get(name, {})})
        for name in names
    ]
    split = run.read_split()
    metrics_json = run.read_metrics()
    loaded = load_dataset(config)
    data = select(loaded, split)
    device = resolve_device(config.training.device)
    model = _load_target(run, config, device)

    examples = ArrayDataset(
        np.concatenate([data.members.x, data.nonmembers.x]),
        np.concatenate([data.members.y, data.nonmembers.y]),
    )
    is_member = np.concatenate(
        [np.ones(len(data.members), bool), np.zeros(len(data.nonmembers), bool)]
    )
    pool_indices = np.concatenate([split.members, split.nonmembers])
    needs = set().union(*(attack.requires for attack in instances))
    population_indices = _population_indices(split, config)
    population = (
        loaded.pool.subset(population_indices[: config.audit.population_size])
        if needs & {"population", "shadow"}
        else None
    )
    workers = config.audit.workers or default_workers()
    reference = shadow = None
    if "reference" in needs:
        reference = _reference_models(
            run, config, "audit", pool_indices, workers, console, "reference models"
        )
    if "shadow" in needs:
        shadow_indices = population_indices[: 2 * config.data.train_size]
        shadow = _reference_models(
            run, config, "population", shadow_indices, workers, console, "shadow models"
        )

    target = AuditTarget(
        model=model,
        examples=examples,
        num_classes=DATASETS.get(config.data.dataset).num_classes,
        device=device,
        seed=config.seed,
        population=population,
        reference=reference,
        shadow=shadow,
    )
    run_facts = {
        "experiment_name": config.experiment_name,
        "dp_enabled": metrics_json.get("dp_enabled"),
        "epsilon": metrics_json.get("epsilon"),
        "delta": metrics_json.get("delta"),
        "val_acc": metrics_json.get("val_acc"),
    }
    outcomes = []
    for attack in instances:
        scores, seconds = _scores(attack, target, config.seed)
        outcomes.append(
            attack_result(
                run,
                attack,
                scores,
                is_member,
                labels=examples.y,
                pool_indices=pool_indices,
                images=examples.x,
                seed=config.seed,
                run_facts=run_facts,
                compute={"seconds": round(seconds, 3), "reference_models": _model_count(attack)},
            )
        )
    roc_plot = write_overlay(run, outcomes, config.experiment_name) if outcomes else None
    canary_result = None
    if one_run:
        canary_result = canary_audit(
            model, data.canaries, data.canary_included,
            delta=metrics_json.get("delta") or 0.0, device=device,
        )
        canary_result["run"] = run_facts
        run.write_audit_result(CANARY_AUDIT, canary_result)
    return AuditReport(outcomes, roc_plot, target, is_member, canary_result)


def _attack_names(attacks: Sequence[str] | None, config: AuditMLConfig) -> list[str]:
    requested = list(attacks) if attacks else list(config.audit.attacks)
    if "all" in requested:
        return [*ATTACKS.available(), *([CANARY_AUDIT] if CANARY_AUDIT in requested else [])]
    for name in requested:
        if name != CANARY_AUDIT:
            ATTACKS.get(name)  # unknown names fail here, before any work
    return list(dict.fromkeys(requested))


def _load_target(run: RunDirectory, config: AuditMLConfig, device: torch.device) -> torch.nn.Module:
    model = build_run_model(config)
    try:
        model.load_state_dict(run.read_model_state())
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise RunDirectoryError(
            f"model file {run.path / 'model.safetensors'} does not fit architecture "
            f"{config.arch!r} ({reason}); retrain the run"
        ) from None
    return model.to(device).eval()


def _population_indices(split: MembershipSplit, config: AuditMLConfig) -> np.ndarray:
    """Pool examples the target never trained on and the audit does not judge, shuffled.

    For datasets whose validation comes from the pool, that is the validation set (evaluating
    on it never touched the model); otherwise the pool's unused remainder.
    """
    if len(split.validation):
        candidates = split.validation
    else:
        used = np.zeros(split.pool_size, bool)
        # Canaries were trained on (or not) by coin: never population data.
        used[split.members] = used[split.nonmembers] = used[split.canaries] = True
        candidates = np.flatnonzero(~used)
    return np.random.default_rng([config.seed, 7]).permutation(candidates)


def _reference_models(
    run: RunDirectory,
    config: AuditMLConfig,
    name: str,
    indices: np.ndarray,
    workers: int,
    console: Console | None,
    description: str,
) -> ReferenceModels:
    store = ReferenceStore(run.path / "reference" / name)
    return store.ensure(
        config,
        indices,
        config.audit.reference_models,
        lambda: build_run_model(config),
        workers=workers,
        console=console,
        description=description,
    )


def _scores(
    attack: MembershipAttack, target: AuditTarget, seed: int
) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        scores = attack.fit(target).score()
    return np.asarray(scores, dtype=np.float64), time.perf_counter() - start


def _model_count(attack: MembershipAttack) -> int:
    target = attack.target
    used = [target.reference if "reference" in attack.requires else None,
            target.shadow if "shadow" in attack.requires else None]
    return sum(len(models) for models in used if models is not None)
