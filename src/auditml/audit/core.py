"""The one audit core: every kind of audit an :class:`~auditml.audit.plan.AuditPlan` holds, run.

:func:`run_plan` is what every caller runs — ``auditml audit`` on a run directory
(:mod:`auditml.audit.runner`) and ``auditml.audit(model, ...)`` on any model (:mod:`auditml.api`).
It runs the plan's membership attacks (:func:`run_attacks`, which the benchmarks also call on
their own), then its canary audits, then its audits beyond membership, building each kind's
evidence only when the plan has that kind (evidence needs the model: an audit of the model's
stored outputs alone never loads it, nor torch), and hands each result to the caller's callback
as it finishes. Where results are written, and whether figures are drawn, is the caller's
concern: this package computes (figures as data, :mod:`auditml.figure_data`), never draws.

:func:`run_attacks` concatenates the examples, builds the membership labels, asks the caller's
:class:`Resources` for exactly what the attacks need (reference models, shadow models,
population data), fits and scores each attack under a fixed seed, and hands the scores to
:mod:`auditml.audit.results` for the numbers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from auditml.attacks import AuditTarget, MembershipAttack, ReferenceModels
from auditml.audit.results import AttackOutcome, summarize_attack
from auditml.data import ArrayDataset
from auditml.records import RunFacts

if TYPE_CHECKING:
    import torch
    from torch import nn

    from auditml.attacks.attribute import AttributeAttack, AttributeTarget
    from auditml.audit.canaries.base import CanaryAuditKind, CanaryEvidence
    from auditml.audit.inference.base import InferenceAudit, InferenceEvidence, InferenceOutcome
    from auditml.records import CanaryRecord

E = TypeVar("E", contravariant=True)
R = TypeVar("R", covariant=True)


class Resources(Protocol):
    """What the caller can provide beyond the model and examples, built only when asked."""

    def population(self) -> ArrayDataset | None:
        """Examples from the target's distribution that it never trained on (or None)."""
        ...

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        """Models of the target's recipe trained on known halves of ``examples`` (or None)."""
        ...

    def shadow(self) -> ReferenceModels | None:
        """Models of the target's recipe trained on halves of the population (or None)."""
        ...

    def base(self) -> nn.Module | None:
        """The model the target was fine-tuned from (or None)."""
        ...


class NoResources:
    """For attacks that need only the model: every resource is absent."""

    def population(self) -> ArrayDataset | None:
        return None

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        return None

    def shadow(self) -> ReferenceModels | None:
        return None

    def base(self) -> nn.Module | None:
        return None


@dataclass(frozen=True)
class GivenResources:
    """Resources already at hand (e.g. the reference models of an earlier audit)."""

    population_set: ArrayDataset | None = None
    reference_models: ReferenceModels | None = None
    shadow_models: ReferenceModels | None = None
    base_model: nn.Module | None = None

    def population(self) -> ArrayDataset | None:
        return self.population_set

    def reference(self, examples: ArrayDataset) -> ReferenceModels | None:
        return self.reference_models

    def shadow(self) -> ReferenceModels | None:
        return self.shadow_models

    def base(self) -> nn.Module | None:
        return self.base_model


@dataclass(frozen=True)
class AuditRun:
    """The outcome of :func:`run_attacks`: each attack's outcome, in the order they ran.

    ``target`` and ``is_member`` are what the attacks were given and judged on, so further
    attacks (or variants) can run against exactly the same examples and reference models.
    """

    outcomes: list[AttackOutcome]
    target: AuditTarget
    is_member: np.ndarray


def run_attacks(
    model: nn.Module | None,
    members: ArrayDataset,
    nonmembers: ArrayDataset,
    attacks: Sequence[MembershipAttack],
    *,
    num_classes: int,
    device: torch.device | None,
    seed: int,
    delta: float | None,
    run_facts: RunFacts,
    resources: Resources | None = None,
    example_ids: np.ndarray | None = None,
    on_outcome: Callable[[AttackOutcome], None] | None = None,
    outputs: np.ndarray | None = None,
    task: str = "classification",
) -> AuditRun:
    """Fit and score every attack against ``model`` and summarise each one's scores.

    ``example_ids`` name the examples in the results (pool indices for a run; positions by
    default). ``delta`` is the model's DP δ (None without DP). ``on_outcome`` is called as each
    attack finishes, so a caller can save results one by one. ``outputs`` are the model's
    logits on the members then the non-members, when already computed; with them ``model``
    may be None if no attack uses it (:attr:`MembershipAttack.uses_model`), and then torch is
    not imported at all. ``task`` is what the model does (:mod:`auditml.training.task`): an
    attack that cannot read such a model is refused before anything trains.
    """
    examples = ArrayDataset(
        np.concatenate([members.x, nonmembers.x]), np.concatenate([members.y, nonmembers.y])
    )
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)]
    ids = np.arange(len(examples)) if example_ids is None else np.asarray(example_ids)
    for attack in attacks:  # before any reference or shadow model trains
        attack.check_task(task)
        attack.check_inputs(tuple(examples.x.shape[1:]))
        if model is None and (attack.uses_model or outputs is None):
            raise ValueError(f"{attack.name} needs the target model, and none was given")
    resources = resources or NoResources()
    needs = set().union(*(attack.requires for attack in attacks))
    target = AuditTarget(
        model=None if model is None else model.to(device).eval(),
        examples=examples,
        num_classes=num_classes,
        device=device,
        seed=seed,
        population=resources.population() if needs & {"population", "shadow"} else None,
        reference=resources.reference(examples) if "reference" in needs else None,
        shadow=resources.shadow() if "shadow" in needs else None,
        outputs=outputs,
        base=_on(resources.base(), device) if "base" in needs else None,
    )
    outcomes = []
    for attack in attacks:
        start = time.perf_counter()
        with _seeded(seed, attack.uses_model):
            scores = np.asarray(attack.fit(target).score(), dtype=np.float64)
        compute = {
            "seconds": round(time.perf_counter() - start, 3),
            "reference_models": _models_used(attack, target),
        }
        outcome = summarize_attack(
            attack, scores, is_member, labels=examples.y, example_ids=ids, seed=seed,
            compute=compute, delta=delta, run_facts=run_facts,
        )
        if on_outcome is not None:
            on_outcome(outcome)
        outcomes.append(outcome)
    return AuditRun(outcomes, target, is_member)


def _on(model: nn.Module | None, device: torch.device | None) -> nn.Module | None:
    return None if model is None else model.to(device).eval()


@dataclass(frozen=True)
class AuditPlan:
    """The membership attacks, canary audits and audits beyond membership to run, configured,
    in the order they run (:func:`auditml.audit.plan.plan_audit` makes it from names)."""

    attacks: list[MembershipAttack]
    canary_audits: list[CanaryAuditKind]
    inference_audits: list[InferenceAudit] = field(default_factory=list)


@dataclass(frozen=True)
class MembershipEvidence:
    """What membership attacks judge: :func:`run_attacks`'s arguments but the attacks."""

    model: nn.Module | None
    members: ArrayDataset
    nonmembers: ArrayDataset
    num_classes: int
    device: torch.device | None
    seed: int
    delta: float | None
    run_facts: RunFacts
    resources: Resources | None = None
    example_ids: np.ndarray | None = None
    outputs: np.ndarray | None = None
    task: str = "classification"


@dataclass(frozen=True)
class PlanEvidence:
    """How to build each kind's evidence. :func:`run_plan` calls a builder once, and only when
    the plan has that kind; a kind the caller cannot audit is left None."""

    membership: Callable[[], MembershipEvidence] | None = None
    canaries: Callable[[], CanaryEvidence] | None = None
    inference: Callable[[], InferenceEvidence] | None = None


@dataclass(frozen=True)
class PlanRun:
    """What :func:`run_plan` computed: the membership attacks' run (None when the plan has no
    attack), each canary audit's record and each inference audit's outcome, by name, in the
    order they ran."""

    attacks: AuditRun | None
    canary_audits: dict[str, CanaryRecord]
    inference_audits: dict[str, InferenceOutcome]


def run_plan(
    plan: AuditPlan,
    evidence: PlanEvidence,
    *,
    on_attack: Callable[[AttackOutcome], None] | None = None,
    on_attacks_done: Callable[[AuditRun], None] | None = None,
    on_canary: Callable[[str, CanaryRecord], None] | None = None,
    on_inference: Callable[[str, InferenceOutcome], None] | None = None,
) -> PlanRun:
    """Run every audit of ``plan``: membership attacks, then canary audits, then the audits
    beyond membership, each kind on the evidence ``evidence`` builds for it.

    Each callback is called as its result is ready, so a caller writes results one by one:
    ``on_attack`` after each membership attack, ``on_attacks_done`` once they all have run (e.g.
    for the figure of them all), ``on_canary(name, record)`` after each canary audit and
    ``on_inference(name, outcome)`` after each inference audit. A planned kind whose builder is
    None raises ValueError before anything runs (a caller's mistake: a caller that cannot
    audit a kind refuses it, in its own words, when it plans).
    """
    planned = {"membership": plan.attacks, "canaries": plan.canary_audits,
               "inference": plan.inference_audits}
    for kind, audits in planned.items():
        if audits and getattr(evidence, kind) is None:
            raise ValueError(
                f"the plan has {kind} audits ({', '.join(a.name for a in audits)}) but no "
                f"{kind} evidence to run them on: give PlanEvidence.{kind}"
            )
    attacked = None
    if plan.attacks and evidence.membership is not None:
        found = evidence.membership()
        attacked = run_attacks(
            found.model, found.members, found.nonmembers, plan.attacks,
            num_classes=found.num_classes, device=found.device, seed=found.seed,
            delta=found.delta, run_facts=found.run_facts, resources=found.resources,
            example_ids=found.example_ids, on_outcome=on_attack, outputs=found.outputs,
            task=found.task,
        )
        if on_attacks_done is not None:
            on_attacks_done(attacked)
    canaries = _run_each(plan.canary_audits, evidence.canaries, on_canary)
    inference = _run_each(plan.inference_audits, evidence.inference, on_inference)
    return PlanRun(attacked, canaries, inference)


class _Audit(Protocol[E, R]):
    """A canary or inference audit: named, run on its kind's evidence."""

    @property
    def name(self) -> str: ...

    def run(self, evidence: E, /) -> R: ...


def _run_each(audits: Sequence[_Audit[E, R]], build: Callable[[], E] | None,
              on_done: Callable[[str, R], None] | None) -> dict[str, R]:
    """Each audit's result by name, on evidence built once (not at all when none is planned)."""
    results: dict[str, R] = {}
    if not audits or build is None:
        return results
    found = build()
    for audit in audits:
        results[audit.name] = result = audit.run(found)
        if on_done is not None:
            on_done(audit.name, result)
    return results


@contextlib.contextmanager
def _seeded(seed: int, uses_torch: bool = True) -> Iterator[None]:
    """Torch's randomness drawn from ``seed`` inside, whatever ran before, and restored after
    (each attack's results do not depend on the order attacks run in). An attack that only
    reads the target's outputs draws none, so torch is left alone (and unimported)."""
    if not uses_torch:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _models_used(attack: MembershipAttack, target: AuditTarget) -> int:
    used = [target.reference if "reference" in attack.requires else None,
            target.shadow if "shadow" in attack.requires else None]
    return sum(len(models) for models in used if models is not None)


def score_attribute_attack(attack: AttributeAttack, target: AttributeTarget, seed: int
                           ) -> np.ndarray:
    """Fit an attribute-inference attack and return its ``(records, categories)`` scores,
    its randomness drawn from ``seed`` whatever ran before it (as for membership attacks)."""
    with _seeded(seed):
        return np.asarray(attack.fit(target).score(), dtype=np.float64)
