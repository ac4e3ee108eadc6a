"""Bring your own model: ``auditml.audit(model, members, nonmembers, attacks=[...])``.

Audits any ``nn.Module`` classifier on data the caller gives, with the same attacks and metrics
as ``auditml audit``, and no run directory. Attacks that need more than the model (reference
models, population data) say what is missing.

Example::

    results = auditml.audit(model, (x_train, y_train), (x_test, y_test),
                            attacks=["mia_threshold", "mia_lira"],
                            reference_factory=train_like_mine, reference_models=8)
    print(results.summary())
    results.to_json("audit.json")
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from auditml.attacks import ReferenceModels
from auditml.audit.core import run_attacks
from auditml.audit.inference import InferenceEvidence
from auditml.audit.plan import plan_audit
from auditml.config import MAX_SEED
from auditml.config_errors import one_line
from auditml.data import ArrayDataset, SensitiveAttribute
from auditml.errors import AuditMLError, ConfigError
from auditml.fileio import write_json
from auditml.metrics import MembershipMetrics
from auditml.models import predict_logits
from auditml.records import InferenceRecord, RunFacts
from auditml.reporting.console import audit_table, inference_summary
from auditml.training.device import resolve_device
from auditml.training.reference import ReferenceFactory, train_with_factory

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

    def summary(self) -> str:
        """Plain text: the membership table (AUC, TPR at 0.1%/1%/10% FPR, advantage, accuracy
        per attack), then each audit beyond membership."""
        buffer = io.StringIO()
        console = Console(file=buffer, width=160, color_system=None)
        if self.attacks:
            console.print(audit_table([result.payload for result in self.attacks.values()]))
        for record in self.inference.values():
            console.print(inference_summary(record.model_dump(mode="json")), highlight=False)
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
    device: str | torch.device = "cpu",
    console: Console | None = None,
    sensitive: SensitiveAttribute | None = None,
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
    """
    device = _check_arguments(model, attacks, settings, reference_factory, reference_models,
                              seed, delta, device, console)
    if isinstance(attacks, str):  # one attack by name, not its letters
        attacks = [attacks]
    try:
        plan = plan_audit(attacks, None, settings)
    except ConfigError as error:  # the settings' errors name them as the config's audit: keys
        message = str(error)
        if message.startswith("audit."):
            raise ConfigError(f"`settings`: {message.removeprefix('audit.')}") from None
        raise
    if plan.canary_audits:
        raise AuditMLError(
            f"`attacks`: {plan.canary_audits[0].name} audits a training run's canaries; audit a "
            "run directory with `auditml audit` for it"
        )
    for inference_audit in plan.inference_audits:
        inference_audit.check("the given data", sensitive)
    member_set, nonmember_set = _as_arrays(members, "members"), _as_arrays(nonmembers, "nonmembers")
    population_set = _as_arrays(population, "population") if population is not None else None
    model = model.to(device).eval()
    num_classes = _number_of_outputs(model, member_set.x[:1], device)
    for name, examples in (("members", member_set), ("nonmembers", nonmember_set),
                           ("population", population_set)):
        if examples is not None and examples.x.shape[1:] != member_set.x.shape[1:]:
            raise AuditMLError(f"`{name}` inputs have shape {examples.x.shape[1:]} each, those of "
                               f"`members` {member_set.x.shape[1:]}: give the same kind of data")
        if examples is not None and len(examples.y) and int(examples.y.max()) >= num_classes:
            raise AuditMLError(
                f"`{name}` has label {int(examples.y.max())}, but the model has {num_classes} "
                f"outputs: labels must be class indices in [0, {num_classes})"
            )
    facts = RunFacts(experiment_name="model", dp_enabled=None, delta=delta)
    results: dict[str, AttackResults] = {}
    is_member = np.r_[np.ones(len(member_set), bool), np.zeros(len(nonmember_set), bool)]
    if plan.attacks:
        for name, examples in (("members", member_set), ("nonmembers", nonmember_set)):
            if len(examples) < 2:  # the ε lower bound splits each side into two halves
                raise AuditMLError(f"`{name}` needs at least 2 examples for a membership "
                                   f"attack, got {len(examples)}")
        resources = FactoryResources(
            reference_factory, reference_models, population_set, seed, console, num_classes)
        audited = run_attacks(
            model, member_set, nonmember_set, plan.attacks,
            num_classes=num_classes, device=device, seed=seed, delta=delta, run_facts=facts,
            resources=resources,
        )
        results = {
            outcome.attack: AttackResults(outcome.metrics, outcome.scores, outcome.result)
            for outcome in audited.outcomes
        }
    evidence = InferenceEvidence(
        model=model, members=member_set, nonmembers=nonmember_set, population=population_set,
        input_shape=tuple(member_set.x.shape[1:]), num_classes=num_classes, device=device,
        seed=seed, run_facts=facts, sensitive=sensitive, dataset="the given data",
    )
    inference = {
        inference_audit.name: inference_audit.run(evidence).record
        for inference_audit in plan.inference_audits
    }
    return AuditResults(results, is_member, inference=inference)


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
    ) -> None:
        self.factory, self.count, self._population = factory, count, population
        self.seed, self.console = seed, console
        self.num_classes = num_classes  # the audited model's outputs

    def population(self) -> ArrayDataset | None:
        return self._population

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        if self.factory is None:
            return None
        return self._checked(self._train(examples, self.seed), examples)

    def shadow(self) -> ReferenceModels | None:
        if self.factory is None or self._population is None:
            return None
        return self._checked(self._train(self._population, self.seed + 1), self._population)

    def _train(self, examples: ArrayDataset, seed: int) -> ReferenceModels:
        assert self.factory is not None
        try:
            return train_with_factory(self.factory, examples, self.count, seed=seed,
                                      console=self.console)
        except AuditMLError:
            raise
        except Exception as error:  # the caller's code: named, with its traceback as the cause
            raise AuditMLError(
                f"`reference_factory` failed: {type(error).__name__}: {one_line(str(error))}; "
                "it is called as reference_factory(train_set, seed) and must return a model"
            ) from error

    def _checked(self, models: ReferenceModels, examples: ArrayDataset) -> ReferenceModels:
        """Refuse models whose outputs do not match the audited model's classes."""
        for model in models.models:
            if not isinstance(model, nn.Module):
                raise AuditMLError(f"`reference_factory` must return an nn.Module, got "
                                   f"{type(model).__name__}")
            outputs = predict_logits(model, examples.x[:1], device=torch.device("cpu"))
            if outputs.ndim != 2 or outputs.shape[1] != self.num_classes:
                raise AuditMLError(
                    f"`reference_factory` returned a model with {outputs.shape[-1]} outputs; the "
                    f"audited model has {self.num_classes}: train the reference models like it"
                )
        return models


def _check_arguments(
    model: object, attacks: object, settings: object, reference_factory: object,
    reference_models: object, seed: object, delta: object, device: object, console: object,
) -> torch.device:
    """Refuse an argument of the wrong type or range, naming it, before any work; the device."""
    if not isinstance(model, nn.Module):
        raise AuditMLError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    names = [attacks] if isinstance(attacks, str) else attacks
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise AuditMLError(f"`attacks` must be an attack name or a list of names, got "
                           f"{attacks!r:.80}")
    if settings is not None and not (isinstance(settings, Mapping) and all(
            isinstance(name, str) and isinstance(value, Mapping)
            for name, value in settings.items())):
        raise AuditMLError("`settings` must map attack names to their settings, e.g. "
                           f"{{'mia_threshold': {{'metric': 'loss'}}}}, got {settings!r:.80}")
    if reference_factory is not None and not callable(reference_factory):
        raise AuditMLError(f"`reference_factory` must be callable (train_set, seed) -> model, "
                           f"got {type(reference_factory).__name__}")
    for name, value, high in (("reference_models", reference_models, MAX_REFERENCE_MODELS),
                              ("seed", seed, MAX_SEED)):
        low = 1 if name == "reference_models" else 0
        if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
            raise AuditMLError(f"`{name}` must be an integer in [{low}, {high}], got {value!r}")
    if delta is not None and (isinstance(delta, bool) or not isinstance(delta, Real)
                              or not 0 <= delta < 1):
        raise AuditMLError(f"`delta` must be the model's DP δ in [0, 1), or None, got {delta!r}")
    if console is not None and not isinstance(console, Console):
        raise AuditMLError(f"`console` must be a rich Console or None, got "
                           f"{type(console).__name__}")
    if not isinstance(device, str | torch.device):
        raise AuditMLError(f"`device` must be a device name such as 'cpu', got {device!r}")
    try:
        resolved = resolve_device(str(device))
    except (AuditMLError, RuntimeError, ValueError) as error:
        raise AuditMLError(f"`device`: {one_line(str(error))}") from None
    if resolved.type not in ("cpu", "cuda", "mps"):  # e.g. meta: tensors without data
        raise AuditMLError(f"`device` must be cpu, cuda or mps, got {device!r}")
    return resolved


def _number_of_outputs(model: nn.Module, first: np.ndarray, device: torch.device) -> int:
    """The classes ``model`` scores, from its output on one input; its failure, named."""
    try:
        outputs = predict_logits(model, first, device=device)
    except Exception as error:  # the caller's model: any failure means it does not fit the data
        raise AuditMLError(
            f"`model` failed on one input of `members` (shape {first.shape[1:]}): "
            f"{type(error).__name__}: {one_line(str(error))}"
        ) from None
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise AuditMLError(f"`model` must return one score per class (at least 2) for each "
                           f"input, got outputs of shape {tuple(outputs.shape)}")
    return int(outputs.shape[1])


def _as_arrays(examples: Examples, name: str) -> ArrayDataset:
    """Inputs as float32 numpy, labels as int64 numpy, from any of the accepted forms."""
    if isinstance(examples, ArrayDataset):
        x, y = examples.x, examples.y
    elif isinstance(examples, tuple) and len(examples) == 2:
        x, y = examples
    elif isinstance(examples, Dataset):
        pairs = [examples[i] for i in range(len(examples))]  # type: ignore[arg-type]
        if not pairs:
            raise AuditMLError(f"`{name}` is empty")
        x = torch.stack([torch.as_tensor(pair[0]) for pair in pairs])
        y = torch.as_tensor([int(pair[1]) for pair in pairs])
    else:
        raise AuditMLError(
            f"`{name}` must be (inputs, labels), a torch Dataset or an ArrayDataset, "
            f"got {type(examples).__name__}"
        )
    try:
        x_array = _numpy(x).astype(np.float32, copy=False)
        labels = _numpy(y)
    except (TypeError, ValueError) as error:  # e.g. text, ragged lists, None
        raise AuditMLError(f"`{name}` inputs and labels must be numeric arrays: "
                           f"{one_line(str(error))}") from None
    if x_array.ndim == 0 or labels.ndim == 0:
        raise AuditMLError(f"`{name}` must be (inputs, labels) arrays with one row per "
                           f"example, got shapes {x_array.shape} and {labels.shape}")
    if len(x_array) != len(labels) or len(x_array) == 0:
        raise AuditMLError(
            f"`{name}` needs as many labels as inputs and at least one example, "
            f"got {len(x_array)} inputs and {len(labels)} labels"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or not np.all(
            np.isfinite(labels)) or np.any(labels != np.round(labels)) or np.any(labels < 0):
        raise AuditMLError(
            f"`{name}` labels must be one non-negative whole number (a class index) per "
            f"example, got {labels.dtype} of shape {labels.shape}"
            + ("" if labels.dtype.kind not in "iuf" or labels.ndim != 1 else
               f" holding {labels[(labels != np.round(labels)) | (labels < 0)][:1].tolist()}")
        )
    if not np.isfinite(x_array).all():
        raise AuditMLError(f"`{name}` inputs hold NaN or infinite values")
    return ArrayDataset(np.ascontiguousarray(x_array), labels.astype(np.int64))


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
