"""Bring your own model: ``auditml.audit(model, members, nonmembers, attacks=[...])``.

Audits any ``nn.Module`` classifier on data the caller gives, with the same attacks and metrics
as ``auditml audit``, and no run directory. Attacks that need more than the model (reference
models, population data) say what is missing.

Example::

    results = auditml.audit(model, (x_train, y_train), (x_test, y_test),
                            attacks=["mia_threshold", "mia_lira"],
                            reference_factory=train_like_mine, reference_models=8)
    print(results.summary())
    results.save("results/my_model")   # then: auditml report results/my_model --out report/

A saved audit is a run directory (:mod:`auditml.run_directory`) that ``auditml report`` and
``auditml compare`` read beside runs trained by ``auditml train``; what the API does not know of
the model (its training, its validation accuracy, a DP claim unless given) is recorded as unknown.
"""

from __future__ import annotations

import copy
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from auditml.attacks import ReferenceModels
from auditml.audit.core import MembershipEvidence, PlanEvidence, run_plan
from auditml.audit.inference import InferenceEvidence
from auditml.audit.plan import expand_names, plan_audit
from auditml.audit.results import AttackOutcome, write_inference, write_outcome, write_overlay
from auditml.audit.saved import save_audit, with_run_facts
from auditml.config import MAX_SEED
from auditml.config_errors import one_line
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.errors import ArgumentError, AuditMLError, ConfigError
from auditml.figure_data import FigureData
from auditml.figures.audit_figures import draw_figure
from auditml.fileio import write_json
from auditml.metrics import MembershipMetrics
from auditml.metrics.threshold import MIN_PER_CLASS
from auditml.models import predict_logits
from auditml.records import AuditedModelRecord, InferenceRecord, RunFacts, Versions
from auditml.reporting.console import audit_table, inference_summary
from auditml.run_directory import RunDirectory
from auditml.training.device import resolve_device
from auditml.training.reference import ReferenceFactory, ReferenceStore, train_with_factory

MAX_REFERENCE_MODELS = 10_000
"""More reference models than this is no plan: each is one call of ``reference_factory``."""

Examples = tuple[Any, Any] | Dataset | ArrayDataset
"""``(inputs, labels)`` as tensors or arrays, a torch ``Dataset`` of ``(input, label)``
pairs, or an :class:`~auditml.data.ArrayDataset`."""


@dataclass(frozen=True)
class AttackResults:
    """One attack: its metrics, its scores (members first, then non-members), the payload."""

    metrics: MembershipMetrics
    scores: np.ndarray
    payload: dict[str, Any]


@dataclass(frozen=True)
class AuditResults:
    """Every attack's results for one model, in the order they ran."""

    attacks: dict[str, AttackResults]
    is_member: np.ndarray
    context: dict[str, Any] = field(default_factory=dict)
    # The audits beyond membership (attribute_inference, model_inversion), by name.
    inference: dict[str, InferenceRecord] = field(default_factory=dict)
    # What save() writes: the model as the audit knew it, each attack's outcome, the audited
    # inputs (for the gallery of exposed images) and the inference audits' figures.
    model: AuditedModelRecord | None = field(default=None, repr=False, compare=False)
    outcomes: list[AttackOutcome] = field(default_factory=list, repr=False, compare=False)
    inputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    figures: dict[str, dict[str, FigureData]] = field(
        default_factory=dict, repr=False, compare=False)

    def summary(self) -> str:
        """Plain text: the membership table (AUC, TPR at 0.1%/1%/10% FPR, advantage, accuracy
        per attack), then each audit beyond membership."""
        buffer = io.StringIO()
        console = Console(file=buffer, width=160, color_system=None)
        if self.attacks:
            console.print(audit_table([result.payload for result in self.attacks.values()]))
        for record in self.inference.values():
            console.print(inference_summary(record.model_dump(mode="json")), highlight=False,
                          markup=False)
        return buffer.getvalue()

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: result.payload for name, result in self.attacks.items()},
            **{name: record.model_dump(mode="json") for name, record in self.inference.items()},
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The results as JSON; also written (atomically) to ``path`` when given."""
        if path is not None:
            write_json(Path(path), self.to_dict())
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path, *, name: str | None = None) -> Path:
        """Write the results as a run directory at ``path`` that ``auditml report`` and
        ``auditml compare`` read like a run of ``auditml train``: the same ``audit/`` records,
        scores and figures, and ``model.json`` in place of the training's files, holding what
        the audit knew of the model (None for the unknown: no training config, no validation
        accuracy, no DP claim unless ``claimed_epsilon`` was given). ``name`` (default: the
        directory's name) names the model in reports.

        ``path`` must be new, empty, or an earlier save (replaced whole); anything else, a
        trained run included, is refused and left untouched. The directory is built under a
        temporary name and swapped in complete. Returns ``path``.
        """
        if self.model is None:
            raise ArgumentError("these results were not made by auditml.api.audit, so they do "
                                "not say what was audited: save the results audit() returns")
        destination = Path(path)
        title = name or destination.resolve().name
        model = self.model.model_copy(update={"experiment_name": title})

        def write(run: RunDirectory, facts: RunFacts) -> None:
            images = self.inputs if self.inputs is not None else np.zeros((0,))
            ids = np.arange(len(self.is_member))
            written = [
                write_outcome(run, AttackOutcome(
                    outcome.attack, outcome.metrics,
                    with_run_facts(outcome.record, facts), outcome.scores,
                    outcome.is_member, outcome.exposed,
                ), images=images, pool_indices=ids, draw=draw_figure)
                for outcome in self.outcomes
            ]
            if written:
                write_overlay(run, written, title, draw=draw_figure)
            for audit_name, record in self.inference.items():
                write_inference(run, audit_name, with_run_facts(record, facts),
                                self.figures.get(audit_name, {}), draw=draw_figure)

        return save_audit(destination, model, write)


def audit(
    model: nn.Module,
    members: Examples,
    nonmembers: Examples,
    *,
    attacks: Sequence[str] | str = ("mia_threshold",),
    settings: dict[str, dict[str, Any]] | None = None,
    population: Examples | None = None,
    reference_factory: ReferenceFactory | None = None,
    reference_models: int = 8,
    seed: int = 0,
    delta: float | None = None,
    claimed_epsilon: float | None = None,
    device: str | torch.device = "cpu",
    console: Console | None = None,
    sensitive: SensitiveAttribute | None = None,
    reference_dir: str | Path | None = None,
    reference_key: str | None = None,
    progress: bool = True,
) -> AuditResults:
    """Attack ``model`` with ``members`` (it trained on them) and ``nonmembers`` (it did not).

    ``reference_factory(train_set, seed)`` must return a model trained like ``model`` on
    ``train_set`` (an ArrayDataset); it is called once per reference model, on complementary
    halves of the audited examples (and, for ``mia_shadow``, of ``population``).
    ``population`` is data from the same distribution that ``model`` never trained on.
    ``delta`` is the model's DP δ, if it has a guarantee: the ε lower bounds use it.
    ``attribute_inference`` needs ``sensitive`` (which input columns hold the sensitive
    attribute, :class:`~auditml.data.SensitiveAttribute`) and ``population`` (the attacker's
    auxiliary records); ``model_inversion`` needs ``population`` (the data's range, and the
    evaluation classifier's training data).
    ``claimed_epsilon`` (with ``delta``) is the model's DP claim, if it has one: a report then
    checks the audit's bounds against it; without it the model's DP is recorded as unknown.

    ``reference_dir`` keeps the reference (and shadow) models the factory trains, as
    safetensors with their keep matrix, and reuses them in later calls: a set is reused when the
    audited examples (their bytes), ``seed``, the audited model's architecture (its tensors'
    names and shapes), the factory's module and name, and ``reference_key`` are the same, and
    more models are trained only where more are asked for. What the factory *does* (its code,
    what it closes over, its hyper-parameters) cannot be checked: after changing how it trains,
    give another ``reference_key`` (or another ``reference_dir``) — reusing models trained
    another way is the caller's responsibility. The factory must return models of ``model``'s
    architecture (their weights are loaded into copies of it).
    ``progress`` shows the reference models' training as ``auditml audit`` does (on
    ``console``, default the terminal's standard error); ``progress=False`` is silent.

    ``members`` and ``nonmembers`` each need at least two examples for a membership attack
    (its threshold is chosen on half of each and measured on the other half). ``model`` is
    moved to ``device`` (it stays there) and attacked in eval mode; the audit puts it back in
    the training mode it had when it returns (an error raised midway may leave it in eval mode).
    """
    _check_arguments(model, reference_factory, reference_models, seed, delta, claimed_epsilon,
                     reference_dir, reference_key)
    plan = _plan(attacks, settings)
    for attack in plan.attacks:
        if "classification" not in attack.tasks:
            raise ArgumentError(
                f"`attacks`: {attack.name} attacks language models; audit one with "
                "auditml.audit_language_model"
            )
    if plan.canary_audits:
        raise ArgumentError(
            f"`attacks`: {plan.canary_audits[0].name} audits a training run's canaries; audit "
            "your own training loop with auditml.CanaryAudit, or a run directory with "
            "`auditml audit`"
        )
    for inference_audit in plan.inference_audits:
        try:
            inference_audit.check("the given data", sensitive)
        except AuditMLError as error:
            raise ArgumentError(f"`attacks` ({inference_audit.name}): {error}") from None
    member_set, nonmember_set = _as_arrays(members, "members"), _as_arrays(nonmembers, "nonmembers")
    if plan.attacks:
        check_audited_counts(len(member_set), len(nonmember_set))
    population_set = _as_arrays(population, "population") if population is not None else None
    for name, examples in (("nonmembers", nonmember_set), ("population", population_set)):
        if examples is not None and examples.x.shape[1:] != member_set.x.shape[1:]:
            raise ArgumentError(
                f"`{name}` inputs have shape {examples.x.shape[1:]} per example, `members` "
                f"{member_set.x.shape[1:]}: give examples of the same kind"
            )
    if plan.inference_audits and sensitive is not None:
        for name, examples in (("members", member_set), ("nonmembers", nonmember_set),
                               ("population", population_set)):
            if examples is not None:
                try:
                    sensitive.check_encodes(examples.x, f"`{name}`")
                except ValueError as error:
                    raise ArgumentError(f"`sensitive`: {error}") from None
    device = checked_device(device)
    was_training = model.training
    model = model.to(device).eval()
    num_classes = _num_classes(model, member_set, device)
    for name, examples in (("members", member_set), ("nonmembers", nonmember_set),
                           ("population", population_set)):
        if examples is not None and len(examples.y) and int(examples.y.max()) >= num_classes:
            raise ArgumentError(
                f"`{name}` has label {int(examples.y.max())}, but the model has {num_classes} "
                f"outputs: labels must be class indices in [0, {num_classes})"
            )
    if console is None and progress:
        console = Console(stderr=True)
    facts = RunFacts(experiment_name="model",
                     dp_enabled=None if claimed_epsilon is None else True,
                     epsilon=claimed_epsilon, delta=delta)
    is_member = np.r_[np.ones(len(member_set), bool), np.zeros(len(nonmember_set), bool)]

    def membership() -> MembershipEvidence:
        return MembershipEvidence(
            model, member_set, nonmember_set, num_classes=num_classes, device=device, seed=seed,
            delta=delta, run_facts=facts,
            resources=FactoryResources(
                reference_factory, reference_models, population_set, seed,
                console if progress else None, num_classes,
                store=None if reference_dir is None else ReferenceKeeper(
                    Path(reference_dir), model, reference_factory, reference_key),
            ),
        )

    def inference() -> InferenceEvidence:
        return InferenceEvidence(
            model=model, members=member_set, nonmembers=nonmember_set,
            population=population_set, input_shape=tuple(member_set.x.shape[1:]),
            num_classes=num_classes, device=device, seed=seed, run_facts=facts,
            sensitive=sensitive, dataset="the given data",
        )

    done = run_plan(plan, PlanEvidence(membership=membership, inference=inference))
    outcomes = [] if done.attacks is None else done.attacks.outcomes
    results = {
        outcome.attack: AttackResults(outcome.metrics, outcome.scores, outcome.result)
        for outcome in outcomes
    }
    logits = (done.attacks.target.logits() if done.attacks is not None else None)
    if logits is None:
        logits = predict_logits(model, np.concatenate([member_set.x, nonmember_set.x]),
                                device=device)
    labels = np.concatenate([member_set.y, nonmember_set.y])
    correct = logits.argmax(axis=1) == labels
    audited_model = AuditedModelRecord(
        source="api.audit", experiment_name="model", arch=type(model).__name__,
        members=len(member_set), nonmembers=len(nonmember_set),
        train_acc=float(correct[is_member].mean()), nonmember_acc=float(correct[~is_member].mean()),
        dp_enabled=facts.dp_enabled, epsilon=claimed_epsilon, delta=delta,
        versions=Versions.current(),
    )
    inputs = np.concatenate([member_set.x, nonmember_set.x])
    model.train(was_training)
    return AuditResults(
        results, is_member,
        inference={name: outcome.record for name, outcome in done.inference_audits.items()},
        model=audited_model, outcomes=outcomes, inputs=inputs if inputs.ndim == 4 else None,
        figures={name: dict(outcome.figures) for name, outcome in done.inference_audits.items()},
    )


def _plan(attacks: Sequence[str] | str, settings: dict[str, dict[str, Any]] | None) -> Any:
    """The audit plan, its errors naming ``attacks`` or ``settings``."""
    if isinstance(attacks, str):  # one attack by name, not its letters
        attacks = [attacks]
    if not isinstance(attacks, Sequence) or not all(isinstance(a, str) for a in attacks):
        raise ArgumentError(f"`attacks` must be attack names (a list of str), got {attacks!r}")
    try:
        expand_names(attacks)
    except AuditMLError as error:
        raise ArgumentError(f"`attacks`: {error}") from None
    if settings is not None and (not isinstance(settings, dict) or not all(
            isinstance(name, str) and isinstance(value, dict)
            for name, value in settings.items())):
        raise ArgumentError("`settings` must map attack names to their settings (a dict of "
                            f"dicts), got {settings!r}")
    try:
        return plan_audit(attacks, None, settings)
    except ConfigError as error:
        raise ArgumentError(f"`settings`: {str(error).removeprefix('audit.')}") from None


def check_audited_counts(members: int, nonmembers: int) -> None:
    """Refuse, before any reference model trains, fewer than :data:`MIN_PER_CLASS` members or
    non-members: a membership attack's threshold is chosen on half of each and measured on the
    other half."""
    for name, count in (("members", members), ("nonmembers", nonmembers)):
        if count < MIN_PER_CLASS:
            raise ArgumentError(
                f"`{name}` has {count} example{'s' if count != 1 else ''}; a membership attack "
                f"needs at least {MIN_PER_CLASS} members and {MIN_PER_CLASS} non-members (its "
                "threshold is chosen on half of each and measured on the other half)"
            )


def checked_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device that exists on this machine, or an error naming it."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ArgumentError(f"`device` {device!r} is not a torch device "
                            f"({one_line(str(error), 200)})") from None
    if resolved.type not in ("cpu", "cuda", "mps"):  # e.g. meta: tensors without data
        raise ArgumentError(f"`device` must be cpu, cuda or mps, got {resolved}")
    try:
        resolve_device(str(resolved))  # a CUDA or MPS device must exist on this machine
    except AuditMLError as error:
        raise ArgumentError(f"`device`: {error}") from None
    return resolved


def _check_arguments(
    model: object, factory: object, count: object, seed: object, delta: object,
    claimed_epsilon: object, reference_dir: object, reference_key: object,
) -> None:
    """Refuse bad scalar arguments before any data is converted or any model trains."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if factory is not None and not callable(factory):
        raise ArgumentError("`reference_factory` must be a function (train_set, seed) -> model, "
                            f"got {type(factory).__name__}")
    if (isinstance(count, bool) or not isinstance(count, Integral)
            or not 1 <= count <= MAX_REFERENCE_MODELS):  # each one is a factory call
        raise ArgumentError(f"`reference_models` must be an integer in [1, "
                            f"{MAX_REFERENCE_MODELS:,}], got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed <= MAX_SEED:
        raise ArgumentError(f"`seed` must be an integer in [0, 2**63 - 1], got {seed!r}")
    for name, value, high in (("delta", delta, 1.0), ("claimed_epsilon", claimed_epsilon, None)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value) or value < 0 or (high is not None and value >= high):
            interval = "[0, 1)" if high is not None else "a finite number ≥ 0"
            raise ArgumentError(f"`{name}` must be {interval}, got {value!r}")
    if claimed_epsilon is not None and delta is None:
        raise ArgumentError("`claimed_epsilon` is an (ε, δ) claim: give its `delta` too")
    if reference_dir is not None and not isinstance(reference_dir, str | Path):
        raise ArgumentError(f"`reference_dir` must be a path, got {type(reference_dir).__name__}")
    if reference_key is not None and not isinstance(reference_key, str):
        raise ArgumentError(f"`reference_key` must be a str, got {type(reference_key).__name__}")
    if reference_dir is not None and factory is None:
        raise ArgumentError("`reference_dir` keeps the models `reference_factory` trains: give "
                            "reference_factory too")


def _num_classes(model: nn.Module, members: ArrayDataset, device: torch.device) -> int:
    """The model's number of outputs, from one member; a model that cannot take the members'
    inputs, or does not return one row of class scores per example, is refused by name."""
    try:
        outputs = predict_logits(model, members.x[:1], device=device)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ArgumentError(
            f"`model` fails on the inputs of `members` (shape {members.x.shape[1:]} per "
            f"example): {reason}"
        ) from None
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise ArgumentError(
            f"`model` must return one row of class scores (at least 2) per example, got outputs "
            f"of shape {outputs.shape} for one member"
        )
    return int(outputs.shape[1])


class FactoryResources:
    """Reference and shadow models from the caller's ``reference_factory`` (none without it)."""

    def __init__(
        self,
        factory: ReferenceFactory | None,
        count: int,
        population: ArrayDataset | None,
        seed: int,
        console: Console | None,
        num_classes: int,
        store: ReferenceKeeper | None = None,
    ) -> None:
        self.factory, self.count, self._population = factory, count, population
        self.seed, self.console, self.store = seed, console, store
        self.num_classes = num_classes  # the audited model's outputs

    def population(self) -> ArrayDataset | None:
        return self._population

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        return self._models("audit", examples, self.seed, "reference models")

    def base(self) -> nn.Module | None:
        return None

    def shadow(self) -> ReferenceModels | None:
        if self._population is None:
            return None
        return self._models("population", self._population, self.seed + 1, "shadow models")

    def _models(self, name: str, examples: ArrayDataset, seed: int, description: str
                ) -> ReferenceModels | None:
        if self.factory is None:
            return None
        try:
            if self.store is None:
                models = train_with_factory(self.factory, examples, self.count, seed=seed,
                                            console=self.console)
            else:
                models = self.store.models(name, examples, self.count, seed=seed,
                                           console=self.console, description=description)
        except AuditMLError:
            raise
        except Exception as error:  # the caller's code: named, with its traceback as the cause
            raise ArgumentError(
                f"`reference_factory` failed: {type(error).__name__}: {one_line(str(error))}; "
                "it is called as reference_factory(train_set, seed) and must return a model"
            ) from error
        return self._checked(models, examples)

    def _checked(self, models: ReferenceModels, examples: ArrayDataset) -> ReferenceModels:
        """Refuse models whose outputs do not match the audited model's classes."""
        for model in models.models:
            if not isinstance(model, nn.Module):
                raise ArgumentError(f"`reference_factory` must return an nn.Module, got "
                                   f"{type(model).__name__}")
            outputs = predict_logits(model, examples.x[:1], device=torch.device("cpu"))
            if outputs.ndim != 2 or outputs.shape[1] != self.num_classes:
                raise ArgumentError(
                    f"`reference_factory` returned a model with {outputs.shape[-1]} outputs; the "
                    f"audited model has {self.num_classes}: train the reference models like it"
                )
        return models


class ReferenceKeeper:
    """The Python API's ``reference_dir``: one :class:`ReferenceStore` per example set
    (``audit``, ``population``), keyed by what can be known of the factory (see
    :func:`audit`)."""

    def __init__(self, directory: Path, model: nn.Module, factory: ReferenceFactory | None,
                 key: str | None) -> None:
        self.directory, self.factory = directory, factory
        template = copy.deepcopy(model).cpu()
        self.build = lambda: copy.deepcopy(template)
        self.key = {
            "reference_key": key,
            "factory": f"{getattr(factory, '__module__', '?')}."
                       f"{getattr(factory, '__qualname__', type(factory).__name__)}",
            "architecture": [[name, list(t.shape)] for name, t in template.state_dict().items()],
        }

    def models(self, name: str, examples: ArrayDataset, count: int, *, seed: int,
               console: Console | None, description: str) -> ReferenceModels:
        if self.directory.exists() and not self.directory.is_dir():
            raise ArgumentError(f"`reference_dir` {self.directory} is a file; give a directory")
        if self.factory is None:
            raise ArgumentError("`reference_dir` keeps what `reference_factory` trains: give it")
        return ReferenceStore(self.directory / name).ensure_from_factory(
            self.factory, examples, count, seed=seed, key=self.key, build=self.build,
            console=console, description=description,
        )


def _as_arrays(examples: Examples, name: str) -> ArrayDataset:
    """Inputs as float32 numpy, labels as int64 numpy, from any of the accepted forms."""
    if isinstance(examples, ArrayDataset):
        x, y = examples.x, examples.y
    elif isinstance(examples, tuple) and len(examples) == 2:
        x, y = examples
    elif isinstance(examples, Dataset):
        pairs = [examples[i] for i in range(len(examples))]  # type: ignore[arg-type]
        if not pairs:
            raise ArgumentError(f"`{name}` is empty")
        x = torch.stack([torch.as_tensor(pair[0]) for pair in pairs])
        y = torch.as_tensor([int(pair[1]) for pair in pairs])
    else:
        raise ArgumentError(
            f"`{name}` must be (inputs, labels), a torch Dataset or an ArrayDataset, "
            f"got {type(examples).__name__}"
        )
    try:
        x_array = _numpy(x).astype(np.float32, copy=False)
        labels = _numpy(y)
    except (ValueError, TypeError, RuntimeError) as error:
        raise ArgumentError(f"`{name}` inputs must be numbers (an array or tensor), and labels "
                            f"class indices: {' '.join(str(error).split())[:160]}") from None
    if x_array.ndim == 0 or labels.ndim == 0:  # e.g. (x, None): len() would fail
        raise ArgumentError(f"`{name}` must be (inputs, labels) arrays with one row per "
                            f"example, got shapes {x_array.shape} and {labels.shape}")
    if len(x_array) != len(labels) or len(x_array) == 0:
        raise ArgumentError(
            f"`{name}` needs as many labels as inputs and at least one example, "
            f"got {len(x_array)} inputs and {len(labels)} labels"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or not np.all(
            np.isfinite(labels)) or np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise ArgumentError(
            f"`{name}` labels must be one non-negative whole number (a class index) per "
            f"example, got {labels.dtype} of shape {labels.shape}"
            + ("" if labels.dtype.kind not in "iuf" or labels.ndim != 1 else
               f" holding {labels[(labels != np.round(labels)) | (labels < 0)][:1].tolist()}")
        )
    if not np.isfinite(x_array).all():
        raise ArgumentError(f"`{name}` inputs hold NaN or infinite values")
    return ArrayDataset(np.ascontiguousarray(x_array), labels.astype(np.int64))


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
