"""``auditml audit``: attack a trained run directory and write its ``audit/`` records.

This module connects a run directory to the audit core: it checks the run (complete, unchanged
since training, not being written by another process), resolves the attacks, loads the model
and its members, provides reference and shadow models from the run's store, calls the audit core
(:func:`~auditml.audit.core.run_plan`), and writes each result as it finishes (its figures too,
when the caller passes a ``draw``: the CLI does; this package never draws).

When every planned audit needs only the model's outputs (``mia_threshold``) and the run kept
them from training time (``target_outputs.npz``, fingerprinted in its manifest), neither the
model nor torch is loaded: that audit's cost is reading files and computing metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console

from auditml.attacks import AuditTarget, ReferenceModels
from auditml.audit.core import AuditRun, MembershipEvidence, PlanEvidence, run_plan
from auditml.audit.plan import AuditPlan, fed_by, plan_audit
from auditml.audit.results import AttackOutcome, write_inference, write_outcome, write_overlay
from auditml.config import AuditConfig, AuditMLConfig
from auditml.data import ArrayDataset, LoadedDataset, MembershipSplit, select
from auditml.data.base import DataFile
from auditml.errors import ConfigError, DataError, RunDirectoryError
from auditml.models.user import import_factory, is_reference, model_source
from auditml.records import (
    CanaryRecord,
    DataFileRecord,
    InferenceRecord,
    ModelSource,
    RunFacts,
    TrainingRecord,
)
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, load_dataset
from auditml.training.executors import default_workers, make_executor, training_device
from auditml.training.run_model import run_secrets, secret_canary_texts

if TYPE_CHECKING:
    import torch

    from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
    from auditml.audit.inference.base import InferenceEvidence
    from auditml.figure_data import Draw


@dataclass(frozen=True)
class AuditReport:
    """Every attack's outcome in the order they ran, the canary audits' records, the overlay.

    ``target`` and ``is_member`` are what the attacks were given (None when only canary audits
    ran), so further attacks can run against exactly the same examples and reference models.
    """

    outcomes: list[AttackOutcome]
    canary_audits: dict[str, CanaryRecord]
    roc_plot: Path | None
    target: AuditTarget | None
    is_member: np.ndarray | None
    # The audits beyond membership (attribute inference, model inversion), by name.
    inference_audits: dict[str, InferenceRecord] = field(default_factory=dict)


def run_audit(
    run_dir: str | Path,
    attacks: Sequence[str] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    given_config: AuditMLConfig | None = None,
    config_hint: str | None = None,
    console: Console | None = None,
    draw: Draw | None = None,
) -> AuditReport:
    """Attack the model in ``run_dir`` with its saved members and non-members.

    ``given_config`` is the config passed to ``auditml audit --config F``: its ``audit:``
    section wins over the one stored with the run at training time (the run's own stored
    settings describe the model; if F's other sections differ, a note says so). ``attacks``
    defaults to their ``attacks`` list; ``settings`` maps an attack name to settings that
    override the config's. ``config_hint`` is the config path quoted in error messages.
    ``draw`` draws the figures (:func:`auditml.figures.audit_figures.draw_figure`, what
    ``auditml audit`` passes); without it no PNG is written, and records name no figure.
    """
    run = RunDirectory(run_dir)
    manifest = run.require_trained(config_hint)
    config = run.read_config()
    audit = given_config.audit if given_config is not None else config.audit
    if given_config is not None and console is not None and _trained_differently(
        given_config, config
    ):
        console.print(
            f"note: {config_hint or 'the given config'} differs from the config {run.path} was "
            "trained with outside its audit: section; the run's stored settings describe the "
            "model, and only the audit: section of the given config is used",
            highlight=False, markup=False,
        )
    requested = list(attacks) if attacks else audit.attacks
    plan = plan_audit(requested, audit.attack_sections(), settings,
                      task=config.dataset_spec.task)
    # A run trains its reference and shadow models and holds population data; only a
    # fine-tuned run has a base model.
    plan = fed_by(plan, requested, {"reference", "shadow", "population",
                                    *(("base",) if config.model.base is not None else ())})
    spec = config.dataset_spec
    for attack in plan.attacks:  # e.g. a classifier attack on a language model
        attack.check_task(spec.task)
    for inference_audit in plan.inference_audits:
        # e.g. no sensitive attribute: refused before any loading
        inference_audit.check(f"dataset {spec.name}", spec.sensitive)
    split = run.read_split()
    training = run.read_training()
    _check_data_file(training.data_file, spec.source_file, config_hint or str(run.path))
    _check_model_source(training.model_source, config.arch, config_hint or str(run.path))
    run.check_audit_dir()
    with run.lock():
        loaded = load_dataset(config)
        data = select(loaded, split)
        audited = len(data.members) + len(data.nonmembers)
        outputs = (run.read_target_outputs(audited, spec.num_classes)
                   if run.has_target_outputs() else None)
        model = device = None
        if outputs is None or _needs_model(plan):
            from auditml.training.device import resolve_device

            device = resolve_device(config.training.device)
            model = _load_target(run, config, device)
        facts = RunFacts(
            experiment_name=training.experiment_name, dp_enabled=training.dp_enabled,
            epsilon=training.epsilon, delta=training.delta, val_acc=training.val_acc,
            training_id=manifest.training_id,
        )
        pool_indices = np.concatenate([split.members, split.nonmembers])
        images = np.concatenate([data.members.x, data.nonmembers.x])
        outcomes: list[AttackOutcome] = []
        overlay: list[Path | None] = [None]

        def membership() -> MembershipEvidence:
            return MembershipEvidence(
                model, data.members, data.nonmembers, num_classes=spec.num_classes,
                device=device, seed=config.seed, delta=training.delta, run_facts=facts,
                resources=RunResources(run, config, audit, split, loaded, console),
                example_ids=pool_indices, outputs=outputs, task=spec.task,
            )

        def canaries() -> CanaryEvidence:
            from auditml.audit.canaries.base import CanaryEvidence

            return CanaryEvidence(
                model=model, device=device, delta=training.delta or 0.0, run_facts=facts,
                input_canaries=data.canaries, input_included=data.canary_included,
                gradient_canaries=(
                    run.read_gradient_canaries() if run.has_gradient_canaries() else None
                ),
                claim=_claim(training),
                secrets=_secrets(config, data.canaries.x),
                canary_repeats=data.canary_repeats,
            )

        def inference() -> InferenceEvidence:
            from auditml.audit.inference import InferenceEvidence

            # Only the population: RunResources would also build the executor (and Ray).
            population = _population(loaded, split, config.seed, audit, console)
            return InferenceEvidence(
                model=model, members=data.members, nonmembers=data.nonmembers,
                population=population, input_shape=spec.input_shape,
                num_classes=spec.num_classes, device=device, seed=config.seed,
                run_facts=facts, sensitive=spec.sensitive, dataset=f"dataset {spec.name}",
            )

        def on_attacks_done(_: AuditRun) -> None:
            overlay[0] = write_overlay(run, outcomes, config.experiment_name, draw=draw)

        done = run_plan(
            plan, PlanEvidence(membership, canaries, inference),
            on_attack=lambda outcome: outcomes.append(write_outcome(
                run, outcome, images=images, pool_indices=pool_indices, draw=draw)),
            on_attacks_done=on_attacks_done,
            on_canary=run.write_canary,
            on_inference=lambda name, outcome: write_inference(
                run, name, outcome.record, outcome.figures, draw=draw),
        )
    attacked = done.attacks
    return AuditReport(
        outcomes, done.canary_audits, overlay[0],
        None if attacked is None else attacked.target,
        None if attacked is None else attacked.is_member,
        {name: outcome.record for name, outcome in done.inference_audits.items()},
    )


def _secrets(config: AuditMLConfig, texts: np.ndarray) -> Any | None:
    """The run's secret canaries, generated again from its config and checked to be the texts
    it trained with (a run directory is untrusted; a changed generator would void the audit)."""
    secrets = run_secrets(config)
    if secrets is not None and not np.array_equal(secret_canary_texts(config, secrets), texts):
        raise RunDirectoryError(
            f"the secret canaries in {config.run_dir} are not the ones its config generates "
            "(the split file or the generator changed since training); retrain the run"
        )
    return secrets


class RunResources:
    """Reference models, shadow models and population data of one run directory.

    Reference models train on halves of the audited examples, shadow models on halves of
    population data; both are saved under ``<run>/reference/`` and reused by later audits.
    """

    def __init__(
        self,
        run: RunDirectory,
        config: AuditMLConfig,
        audit: AuditConfig,
        split: MembershipSplit,
        loaded: LoadedDataset,
        console: Console | None,
    ) -> None:
        self.run, self.config, self.audit, self.split = run, config, audit, split
        self.loaded, self.console = loaded, console
        # Built before any attack runs: an unknown executor or a missing Ray fails before training.
        self.executor = make_executor(audit.executor, audit.workers or default_workers(),
                                      audit.ray_address)
        self._population_indices = _population_indices(split, config.seed)
        self._base: torch.nn.Module | None = None
        self._base_training_id: str | None = None  # set with _base

    def population(self) -> ArrayDataset | None:
        return _population(self.loaded, self.split, self.config.seed, self.audit, self.console)

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        indices = np.concatenate([self.split.members, self.split.nonmembers])
        # Each trains on half the audited examples (as many as the audited members) and every
        # unaudited training example: train_size examples, as the target did.
        return self._models("audit", indices, "reference models", always_in=self.split.unaudited)

    def shadow(self) -> ReferenceModels | None:
        indices = self._population_indices[: 2 * self.config.data.train_size]
        return self._models("population", indices, "shadow models")

    def base(self) -> torch.nn.Module | None:
        """The model the run was fine-tuned from (``model.base``), checked to be that very
        training (not the base retrained since), loaded once; None without a base."""
        if self.config.model.base is None:
            return None
        if self._base is None:
            from auditml.models import build_model
            from auditml.training.run_model import load_base

            spec = self.config.dataset_spec
            model = build_model(self.config.arch, spec.input_shape, spec.num_classes,
                                task=spec.task)
            trained_from = load_base(model, self.config)
            if trained_from != self.run.read_training().base_training_id:
                raise RunDirectoryError(
                    f"model.base {self.config.model.base} was retrained after {self.run.path} "
                    "was fine-tuned from it, so it is no longer the model the run started from; "
                    "retrain the run, or restore the base"
                )
            self._base, self._base_training_id = model, trained_from
        return self._base

    def _models(self, name: str, indices: np.ndarray, description: str,
                always_in: np.ndarray | None = None) -> ReferenceModels:
        from auditml.training.batched_jobs import batch_models_setting, layer_rules_cover
        from auditml.training.reference import ReferenceStore

        store = ReferenceStore(self.run.reference_dir(name))
        # Fine-tuned models start from the base: models trained from another training of it
        # would not be the target's recipe (base() refuses a base retrained since the run).
        base_id = None if self.base() is None else self._base_training_id
        return store.ensure(
            self.config,
            indices,
            self.audit.reference_models,
            lambda: build_run_model(self.config),
            workers=self.audit.workers or default_workers(),
            console=self.console,
            description=description,
            executor=self.executor,
            batch_models=batch_models_setting(
                self.audit, training_device(self.executor, self.config.training.device),
                dp=self.config.training.dp.enabled,
                layer_rules=(not self.config.training.dp.enabled
                             or layer_rules_cover(self.config))),
            base_training_id=base_id,
            always_in=always_in,
        )


def _needs_model(plan: AuditPlan) -> bool:
    """Whether the plan needs the model itself, not only its outputs on the audited examples."""
    return bool(plan.canary_audits or plan.inference_audits
                or any(attack.uses_model for attack in plan.attacks))


def _claim(training: TrainingRecord) -> PrivacyClaim | None:
    """The DP claim the run's accountant made, rebuilt from its recorded schedule."""
    from auditml.audit.canaries.base import PrivacyClaim

    if not training.dp_enabled or None in (
        training.noise_multiplier, training.sample_rate, training.steps, training.accountant,
        training.epsilon, training.delta,
    ):
        return None
    return PrivacyClaim(
        accountant=str(training.accountant),
        history=[(float(training.noise_multiplier or 0), float(training.sample_rate or 0),
                  int(training.steps or 0))],
        epsilon=float(training.epsilon or 0), delta=float(training.delta or 0),
    )


def _check_data_file(
    recorded: DataFileRecord | None, current: DataFile | None, config_hint: str
) -> None:
    """Refuse a data file whose content changed since ``train``: the split's indices name rows
    of the file as it was, so members and non-members would be other examples now."""
    if recorded is None or current is None or recorded.sha256 == current.sha256:
        return
    raise DataError(
        f"data file {current.path} changed since the run was trained (SHA-256 "
        f"{recorded.sha256[:12]}… at train, {current.sha256[:12]}… now), so the run's members "
        f"are no longer the file's rows: restore the file, or retrain with `auditml train "
        f"--config {config_hint}`"
    )


def _check_model_source(recorded: ModelSource | None, arch: str, config_hint: str) -> None:
    """Refuse a factory of the user's own whose source file changed since ``train``: the saved
    weights would be loaded into (and reference models trained as) another model, and every
    number would be of that one. Not checked when the module cannot be imported here (building
    the model says so, where the audit needs it)."""
    if recorded is None or not is_reference(arch):
        return
    try:
        import_factory(arch)
    except ConfigError:
        return
    current = model_source(arch)
    if current is None or current["sha256"] == recorded.sha256:
        return
    raise ConfigError(
        f"model.arch={arch!r}: its source {current['file']} changed since the run was trained "
        f"(SHA-256 {recorded.sha256[:12]}… at train, {current['sha256'][:12]}… now), so the "
        f"audit would attack another model than the one trained: restore the file, or retrain "
        f"with `auditml train --config {config_hint}`"
    )


def _trained_differently(given: AuditMLConfig, stored: AuditMLConfig) -> bool:
    def training_part(config: AuditMLConfig) -> dict[str, Any]:
        dumped = config.resolved().model_dump(mode="json")
        # Where the run lives is not how it was trained (a run directory may be moved).
        for key in ("audit", "output_dir", "experiment_name"):
            dumped.pop(key)
        return dumped

    return training_part(given) != training_part(stored)


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


def _population(loaded: LoadedDataset, split: MembershipSplit, seed: int, audit: AuditConfig,
                console: Console | None = None) -> ArrayDataset:
    """At most ``audit.population_size`` population examples (:func:`_population_indices`); a
    size the user set beyond what the data holds is said, not silently cut."""
    indices = _population_indices(split, seed)
    size = audit.population_size
    if size > len(indices) and "population_size" in audit.model_fields_set and console:
        console.print(f"note: audit.population_size is {size:,} but the data holds "
                      f"{len(indices):,} population examples (neither members, non-members "
                      "nor canaries); the audit uses those", highlight=False)
    return loaded.pool.subset(indices[:size])


def _population_indices(split: MembershipSplit, seed: int) -> np.ndarray:
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
        used[split.unaudited] = True
        candidates = np.flatnonzero(~used)
    return np.random.default_rng([seed, 7]).permutation(candidates)
