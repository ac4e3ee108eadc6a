"""``auditml train``: fit a model with or without DP-SGD and write its run directory."""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import AuditMLConfig
from auditml.data import ArrayDataset, SplitData, make_split, select
from auditml.errors import AuditMLError, ConfigError
from auditml.fileio import staged_directory
from auditml.formatting import dp_guarantee_line
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.models import own_model_errors, own_model_failed, predict_logits
from auditml.models.causal_lm import trim_padding
from auditml.models.scattering import FeatureModel
from auditml.models.user import model_source
from auditml.records import TrainingRecord, Versions
from auditml.run_directory import RunDirectory
from auditml.training.device import resolve_device
from auditml.training.dp_sgd import PrivateTraining, make_private, plain_step
from auditml.training.grad_sample_choice import ModeChoice, confirm_choice, resolve_grad_sample_mode
from auditml.training.gradient_canaries import GradientCanaries, optimizer_parameters
from auditml.training.loop_inspection import LoopInspector, static_facts
from auditml.training.privacy import NoisePlan, check_noise_plan, plan_noise, prepare_for_dp
from auditml.training.progress import EpochProgress
from auditml.training.recipe import (
    WeightAverage,
    active_recipe,
    learning_rate,
    lr_schedule,
    recipe_record,
    schedule_changes,
    schedule_line,
    with_schedule,
)
from auditml.training.run_model import (
    build_from_base,
    build_run_model,
    load_dataset,
    run_secrets,
    secret_canary_texts,
)
from auditml.training.task import Evaluation, correct, criterion, evaluate, targets
from auditml.training.update_check import check_trained_weights, snapshot_trainable


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]


def make_optimizer(config: AuditMLConfig, params: Any) -> torch.optim.Optimizer:
    """The configured optimiser, at the learning rate the DP recipe sets (:mod:`.recipe`)."""
    settings, lr = config.training, learning_rate(config)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=settings.momentum, weight_decay=settings.weight_decay
        )
    optimizer_class = torch.optim.AdamW if settings.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(params, lr=lr, weight_decay=settings.weight_decay)


def train(config: AuditMLConfig, *, console: Console | None = None) -> TrainResult:
    """Train the configured model and write ``<output_dir>/<experiment_name>/``.

    The run directory is assembled under a temporary name and swapped in only when complete, so
    a failed run never leaves a half-written or overwritten result.
    """
    console = console or Console()
    start = time.perf_counter()
    # The DP recipe's schedule for its architecture (batch, epochs, optimiser, clipping): every
    # step below (σ's calibration, the run's config.yaml) sees the settings that actually run.
    configured, config = config, with_schedule(config)
    target = RunDirectory(config.run_dir)
    # Refuse a destination that is not ours before the (possibly long) training, not after.
    target.check_can_train()
    check_noise_plan(config)  # an ε, δ or σ the accountant cannot handle: refused before the data
    check_gradient_canaries(config)
    check_canaries(config)
    check_model(config)  # the architecture (the user's own factory too) and DP-SGD can train it
    device = resolve_device(config.training.device)
    loaded = load_dataset(config)
    spec = config.dataset_spec
    if config.model.arch is None and config.arch != spec.default_arch:
        console.print(
            f"model: {config.arch} (the DP recipe's architecture for {spec.name}; set model.arch "
            "or training.dp.recipe: plain to choose another)", highlight=False, markup=False,
        )
    elif config.model.arch is None and spec.default_arch_reason is not None:
        console.print(
            f"model: {config.arch} (the default for {spec.default_arch_reason}; set model.arch "
            "to choose another)", highlight=False, markup=False,
        )
    line = schedule_line(schedule_changes(configured), config.arch)
    if line is not None:
        console.print(line, highlight=False, markup=False)
    with target.lock():
        split = make_split(
            loaded.pool.y, config.data.train_size, config.seed,
            validation_from_pool=loaded.test is None,
            canaries=config.training.canaries.count,
            canary_kind=config.training.canaries.kind,
            canary_texts=secret_canary_texts(config, run_secrets(config)),
            canary_repeats=config.training.canaries.repeats,
            audit_size=config.data.audit_size,
        )
        if config.data.audited_size < config.data.train_size:  # said once the split is drawn
            console.print(
                f"audit: {config.data.audited_size:,} of the {config.data.train_size:,} "
                "training examples are audited members, against as many held-out non-members "
                "(data.audit_size); the others are trained on and never scored",
                highlight=False, markup=False,
            )
        data = select(loaded, split)

        fit = fit_model(
            config, data.training_set, data.validation, seed=training_seed(config), device=device,
            console=console,
        )
        model, history, plan, epsilon = fit.model, fit.history, fit.plan, fit.epsilon

        metrics = _metrics(config, model, data, device, history, plan, epsilon)
        metrics["recipe"] = recipe_record(configured)  # names what the schedule changed
        metrics["grad_sample_mode"] = fit.grad_sample_mode
        metrics["base_training_id"] = fit.base_training_id
        if fit.gradient_canaries is not None:
            metrics["gradient_canaries"] = {
                "count": fit.gradient_canaries.count,
                "included": int(fit.gradient_canaries.included.sum()),
                "direction": fit.gradient_canaries.direction,
            }
        # The audited examples' logits, once: audits that need only these skip the model. A
        # language model's are (examples, tokens, vocabulary): its attacks run the model instead.
        outputs = None if spec.task == "causal_lm" else predict_logits(
            model, np.concatenate([data.members.x, data.nonmembers.x]), device=device
        )
        metrics["wall_time_s"] = round(time.perf_counter() - start, 3)
        record = TrainingRecord.model_validate(metrics)

        target.check_can_train()  # the destination may have changed during training
        # ... and again once the old run is moved aside, just before it is deleted: a file the
        # user put in it meanwhile keeps it (put back, this training dropped, one error line).
        with staged_directory(
            config.run_dir,
            check_old=lambda old: RunDirectory(old).check_replaceable(shown_as=config.run_dir),
        ) as staging:
            run = RunDirectory(staging)
            run.write_config(config)
            run.write_model(model, config.arch)
            run.write_split(split)
            run.write_training(record)
            if fit.gradient_canaries is not None:
                run.write_gradient_canaries(fit.gradient_canaries)
            if outputs is not None:
                run.write_target_outputs(outputs)
            run.write_manifest()
    if epsilon is not None:
        console.print(dp_guarantee_line(epsilon, config.training.dp.delta), highlight=False)
    return TrainResult(config.run_dir, metrics)


# The steps after which training checks that the weights moved and stayed finite.
UPDATE_CHECK_STEPS = 10


def check_model(config: AuditMLConfig) -> None:
    """Build the configured model once, before any data is loaded: an architecture that cannot
    take the dataset's inputs, a factory of the user's own that fails, or (with DP-SGD) a layer
    Opacus cannot train is refused in one line before the work starts."""
    spec = config.dataset_spec
    model = build_run_model(config, with_base=True, fix=False)
    dp = config.training.dp
    if dp.enabled:
        if spec.task == "causal_lm" and dp.grad_sample_mode == "fast":
            raise ConfigError(
                "training.dp.grad_sample_mode: fast cannot train a language model (its "
                "per-example gradients come from Opacus): set it to auto, hooks or ghost"
            )
        prepare_for_dp(model, fix=dp.fix_model, report=lambda _: None)


def training_seed(config: AuditMLConfig) -> int:
    """The seed of the target's initialisation, batches and noise (the split uses ``seed``)."""
    return config.seed if config.training.seed is None else config.training.seed


def _silence_library_notices() -> None:
    """Hide notices that are expected here and that the user can do nothing about."""
    # Opacus's reminder that secure_mode is off: auditml trains research models.
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    # PRV calibration probes very small σ, where RDP's order range ends; harmless.
    warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
    # Opacus's hooks fire on the first layer, whose inputs need no gradient.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    # The PRV accountant takes log(0) in its tails for some (σ, q); its ε is still finite.
    warnings.filterwarnings(
        "ignore", message="divide by zero encountered in log", module=r"opacus\.accountants"
    )


@dataclass(frozen=True)
class _Inputs:
    """What the trained module takes: the training and validation inputs and one's shape."""

    train: np.ndarray
    validation: np.ndarray | None
    shape: tuple[int, ...]


@dataclass(frozen=True)
class FitResult:
    model: nn.Module
    history: list[dict[str, Any]]
    plan: NoisePlan | None
    epsilon: float | None
    # How per-example gradients were clipped ("fast", "hooks", "ghost"); None without DP.
    grad_sample_mode: str | None = None
    # What DP-SGD recorded about its gradient canaries; None without them.
    gradient_canaries: GradientCanaryRecord | None = None
    # The training id of ``model.base`` whose weights the model started from; None without one.
    base_training_id: str | None = None


def check_canaries(config: AuditMLConfig) -> None:
    """Refuse canaries the data cannot have: secrets are texts, mislabeled and natural canaries
    are pool examples of a classifier's data."""
    canaries, task = config.training.canaries, config.dataset_spec.task
    if not canaries.count:
        return
    if canaries.kind == "secret" and task != "causal_lm":
        raise ConfigError(
            "training.canaries.kind: secret needs text data (data.dataset: text) and a language "
            "model; for this dataset use kind: mislabeled"
        )
    secrets = run_secrets(config)
    if secrets is not None and task == "causal_lm":
        longest = max(len(text) for text in secrets.texts)
        room = config.dataset_spec.input_shape[0] - 2  # BOS and EOS
        if longest > room:
            raise ConfigError(
                f"training.canaries: secret canaries of up to {longest} bytes do not fit the "
                f"data's texts of at most {room} bytes ({config.dataset_spec.name}); use data "
                "with longer texts, or the embedded data.dataset: text"
            )
    if canaries.repeats != 1 and canaries.kind != "secret":
        raise ConfigError(
            f"training.canaries.repeats: {canaries.repeats} applies to secret canaries only; "
            f"remove it for kind: {canaries.kind}"
        )
    if canaries.kind in ("mislabeled", "natural") and task == "causal_lm":
        raise ConfigError(
            f"training.canaries.kind: {canaries.kind} needs labelled examples; a language model's "
            "canaries are secrets: set kind: secret"
        )


def check_gradient_canaries(config: AuditMLConfig) -> None:
    """Refuse gradient canaries without DP-SGD: without noise there is no noisy sum to audit."""
    canaries = config.training.canaries
    if canaries.kind == "gradient" and canaries.count and not config.training.dp.enabled:
        raise ConfigError(
            "training.canaries.kind: gradient needs DP-SGD (gradient canaries audit its noisy "
            "sums): set training.dp.enabled: true, or use kind: mislabeled"
        )


def fit_model(
    config: AuditMLConfig,
    train_set: ArrayDataset,
    validation: ArrayDataset | None,
    *,
    seed: int,
    device: torch.device,
    console: Console | None = None,
) -> FitResult:
    """Train a fresh model with the config's recipe (architecture, optimiser, DP-SGD).

    The target and every reference model are trained by this one function, so a reference model
    differs from the target only in its data and ``seed``. ``console=None`` trains silently
    and reads the accountant only after the last epoch (the history's ε is None before it).
    """
    config = with_schedule(config)  # a no-op when train() already applied it
    # fork_rng keeps the caller's global RNG untouched; every draw below follows ``seed``.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        _silence_library_notices()
        torch.manual_seed(seed)
        return _fit(config, train_set, validation, seed, device, console)


def _fit(
    config: AuditMLConfig,
    train_set: ArrayDataset,
    validation: ArrayDataset | None,
    seed: int,
    device: torch.device,
    console: Console | None,
) -> FitResult:
    settings, dp = config.training, config.training.dp
    check_gradient_canaries(config)
    spec = config.dataset_spec
    task = spec.task
    model, base_training_id = build_from_base(config, fix=False)
    # What DP-SGD trains: the model, or the head of a model with a fixed feature extractor
    # (ScatterNet), trained on the features computed once instead of every epoch.
    validation_x = validation.x if validation is not None else None
    trained, inputs = model, _Inputs(train_set.x, validation_x, spec.input_shape)
    if isinstance(model, FeatureModel):
        # The head's fixed layers (no weights, per example) are computed with the features.
        _, trained = model.split_head()
        inputs = _Inputs(
            model.head_inputs(train_set.x),
            model.head_inputs(validation_x) if validation_x is not None else None,
            model.head_input_shape,
        )
    if dp.enabled:
        report = console.print if console is not None else (lambda _: None)
        prepared = prepare_for_dp(trained, fix=dp.fix_model, report=report)
        if isinstance(model, FeatureModel):
            if prepared is not trained:  # rebuilt (fix_model): back into the released head
                model.join_head(prepared)
            trained = prepared
        else:
            model = trained = prepared
    model.to(device)
    optimizer = make_optimizer(config, trained.parameters())
    recipe = active_recipe(config)
    average = WeightAverage(list(trained.parameters()),
                            (recipe.ema_decay or 0.0) if recipe else 0.0)
    examples = BatchedTensors(
        torch.from_numpy(inputs.train), torch.from_numpy(targets(task, train_set))
    )
    loader = DataLoader(
        examples, batch_size=config.data.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed), collate_fn=already_batched,
    )
    plan: NoisePlan | None = None
    private: PrivateTraining | None = None
    canaries: GradientCanaries | None = None
    inspector: LoopInspector | None = None
    step = plain_step(trained, optimizer, criterion(task))
    choice: ModeChoice | None = None
    if dp.enabled:
        plan = plan_noise(dp, batches_per_epoch=len(loader), epochs=settings.epochs)
        copies = (recipe.augmentation_multiplicity or 1) if recipe else 1
        if copies > 1:  # the config allows only hooks or auto here
            mode, reason = "hooks", f"averages the per-sample gradients of {copies} copies"
        elif task == "causal_lm":  # check_model refused fast
            # Not measured by auto: on a CPU the hooks were as fast as ghost clipping for
            # gpt2_tiny (0.32 s against 0.39 s for two steps of 32 rows), whose norms come from
            # a second backward pass; ghost saves memory, which a large model may need.
            mode, reason = (("ghost", "set by training.dp.grad_sample_mode")
                            if dp.grad_sample_mode == "ghost"
                            else ("hooks", "Opacus's per-sample gradients of a language model"))
        else:
            choice = resolve_grad_sample_mode(
                dp.grad_sample_mode, trained, arch=config.arch, input_shape=inputs.shape,
                batch_size=min(config.data.batch_size, len(train_set)), device=device,
            )
            mode, reason = choice.mode, choice.reason
        if console is not None:
            console.print(f"Per-example clipping: {mode} ({reason})", highlight=False)
        if settings.canaries.kind == "gradient" and settings.canaries.count:
            # Drawn from their own generators: the model's noise is that of a run without them.
            canaries = GradientCanaries(
                optimizer_parameters(optimizer), count=settings.canaries.count,
                direction=settings.canaries.direction, max_grad_norm=dp.max_grad_norm,
                sample_rate=plan.sample_rate, noise_multiplier=plan.noise_multiplier, seed=seed,
                dataset_size=len(loader.dataset),  # type: ignore[arg-type]
            )
        private = make_private(
            trained, optimizer, loader, plan=plan, dp=dp, mode=mode, canaries=canaries,
            copies=copies, augment_seed=seed, criterion=criterion(task),
        )
        step, loader = private.step, private.loader
        # What the accountant assumes of the loop, seen as in a user's loop (CanaryAudit).
        inspector = LoopInspector(
            trained, tracked=[p for p in trained.parameters() if p.requires_grad],
        ) if canaries is not None else None
    history: list[dict[str, Any]] = []
    epsilon: float | None = None
    schedule = lr_schedule(optimizer, config, settings.epochs * len(loader))
    step_seconds, steps_taken = 0.0, 0  # the DP-SGD steps alone, to check a cached mode choice
    # After the first steps: did they change the model that is evaluated and saved (Opacus #820)?
    untrained = snapshot_trainable(trained)
    check_after = min(UPDATE_CHECK_STEPS, settings.epochs * len(loader))
    own_errors = own_model_errors(config.arch)
    with EpochProgress(console, settings.epochs, dp.enabled) as progress:
        for epoch in range(1, settings.epochs + 1):
            progress.start_epoch(epoch, len(loader), epsilon)
            trained.train()
            loss_sum, hits, predicted, seen = 0.0, 0, 0, 0
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                if task == "causal_lm":
                    # The batch's trailing padding is dropped: with right padding and causal
                    # attention it changes no real token's loss, and it costs a third of a step.
                    x = y = trim_padding(x)
                started = time.perf_counter()
                try:
                    logits, loss = step(x, y)
                except own_errors as err:  # the user's own model's, one line; auditml's raise
                    if isinstance(err, AuditMLError):
                        raise
                    raise own_model_failed(
                        config.arch, f"training it (epoch {epoch}, a batch of {len(y)} examples)",
                        err,
                    ) from err
                step_seconds += time.perf_counter() - started
                steps_taken += 1
                if steps_taken == check_after:
                    check_trained_weights(
                        untrained, snapshot_trainable(trained),
                        where=f"training stopped after {steps_taken} steps", model=trained,
                    )
                    untrained = {}
                if schedule is not None:
                    schedule.step()
                if average.average:
                    average.update()
                if len(y):
                    loss_sum += float(loss) * len(y)
                    right, counted = correct(task, logits, y)
                    hits += right
                    predicted += counted
                    seen += len(y)
                progress.advance(loss_sum / max(seen, 1), hits / max(predicted, 1))
            # Silent training (reference models) reads the accountant once, at the end: the
            # per-epoch ε is only shown (~20-70 ms a PRV read; a run of 40 epochs read it 40 times).
            if private is not None and (console is not None or epoch == settings.epochs):
                epsilon = private.epsilon(dp.delta)
            measured = (
                _evaluate(task, trained, inputs.validation, validation, device)
                if validation is not None and inputs.validation is not None
                else None
            )
            val_acc = None if measured is None else measured.accuracy
            record = {
                "epoch": epoch,
                "loss": loss_sum / max(seen, 1),
                "train_acc": hits / max(predicted, 1),
                "val_acc": val_acc,
                # A language model's (None for a classifier): the run's val_perplexity is the
                # last epoch's, not measured again.
                "val_perplexity": None if measured is None else measured.perplexity,
                "epsilon": epsilon,
            }
            history.append(record)
            progress.end_epoch(epoch, record["loss"], record["train_acc"], val_acc, epsilon)
    if private is not None:
        private.close()
    if choice is not None and steps_taken:
        note = confirm_choice(choice, step_seconds / steps_taken)
        if note is not None and console is not None:
            console.print(note, highlight=False)
    canary_record = None
    if canaries is not None and inspector is not None:
        # auditml's noise is drawn from torch's default generator, as Opacus's without secure_mode.
        facts = inspector.facts(static_facts(model=trained, loader=loader, secure_rng=False,
                                             clipping="auditml"))
        inspector.close()
        canary_record = dataclasses.replace(canaries.record(), loop_facts=facts)
    if average.average:
        # The average is what is released, so it is what the last epoch's val_acc measures.
        average.release()
        if validation is not None and inputs.validation is not None:
            released = _evaluate(task, trained, inputs.validation, validation, device)
            history[-1]["val_acc"] = released.accuracy
            history[-1]["val_perplexity"] = released.perplexity
    return FitResult(model, history, plan, epsilon, private.mode if private else None,
                     canary_record, base_training_id)


class BatchedTensors(TensorDataset):
    """A ``TensorDataset`` that a loader reads a batch at a time: ``__getitems__`` indexes each
    tensor once with the batch's indices, where the default fetch calls ``dataset[i]`` per
    example and stacks them (31 % of a reference model's training on the DP recipe's features:
    200,000 calls). The batches are the same tensors; with :func:`already_batched` as the
    loader's collate function. An empty (Poisson) batch is the tensors' empty slices."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return tuple(tensor[index] for tensor in self.tensors)


def already_batched(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The collate function of a :class:`BatchedTensors` loader: its batch is made already."""
    return batch


def _evaluate(
    task: str, model: nn.Module, x: np.ndarray, data: ArrayDataset, device: torch.device
) -> Evaluation:
    """``model`` (or a feature model's head, given the features ``x``) on ``data``."""
    return evaluate(task, model, ArrayDataset(x, data.y), device=device)  # type: ignore[arg-type]


def _metrics(
    config: AuditMLConfig,
    model: nn.Module,
    data: SplitData,
    device: torch.device,
    history: list[dict[str, Any]],
    plan: NoisePlan | None,
    epsilon: float | None,
) -> dict[str, Any]:
    dp = config.training.dp
    spec = config.dataset_spec
    source_file = spec.source_file
    members = evaluate(spec.task, model, data.members, device=device)
    nonmembers = evaluate(spec.task, model, data.nonmembers, device=device)
    return {
        "task": spec.task,
        "experiment_name": config.experiment_name,
        "dataset": config.data.dataset,
        "data_file": dataclasses.asdict(source_file) if source_file is not None else None,
        "arch": config.arch,
        "train_size": config.data.train_size,
        "seed": config.seed,
        "device": str(device),
        # The last epoch already measured this model on this validation set.
        "val_acc": history[-1]["val_acc"],
        "train_acc": members.accuracy,
        "nonmember_acc": nonmembers.accuracy,
        # Language models only: exp of the mean token cross-entropy on each set.
        # The last epoch already measured it (for the released weights).
        "val_perplexity": history[-1].get("val_perplexity"),
        "train_perplexity": members.perplexity,
        "nonmember_perplexity": nonmembers.perplexity,
        "canaries": {
            "count": len(data.canaries),
            "included": int(data.canary_included.sum()),
            "kind": config.training.canaries.kind,
        },
        "losses": [record["loss"] for record in history],
        "history": history,
        "dp_enabled": dp.enabled,
        "epsilon": epsilon,
        "target_epsilon": dp.epsilon if dp.enabled else None,
        "delta": dp.delta if dp.enabled else None,
        "noise_multiplier": plan.noise_multiplier if plan else None,
        "noise_calibrated": plan.calibrated if plan else None,
        "max_grad_norm": dp.max_grad_norm if dp.enabled else None,
        "sample_rate": plan.sample_rate if plan else None,
        "steps": plan.steps if plan else None,
        "accountant": dp.accountant if dp.enabled else None,
        "recipe": recipe_record(config),
        "model_source": model_source(config.arch),
        "versions": Versions.current().model_dump(),
    }
