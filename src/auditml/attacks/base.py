"""The attack contract: one membership score per audited example, higher = more likely member.

An attack never computes AUC, TPR or ε; :mod:`auditml.metrics` turns its scores into numbers.
Attacks follow the estimator pattern: ``__init__`` stores keyword-only settings (validated by the
attack's ``Settings`` model) and does nothing else; ``fit(target)`` learns whatever the attack
needs (reference statistics, an attack classifier) and returns ``self``; ``score()`` returns one
score per example of ``target.examples``. ``score`` before ``fit`` raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from auditml.data import ArrayDataset
from auditml.errors import AuditMLError, ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from auditml.models.causal_lm import TokenStatistics


class ReferenceModels(Protocol):
    """Models trained like the target on known halves of an example set.

    All an attack may ask of them: how many there are, which examples each trained on
    (``keep[k, i]``: model k trained on example i), and their outputs: a classifier's logits, or
    a language model's next-token statistics. Training them is the audit
    pipeline's job (:mod:`auditml.training.reference` for run directories, a user's factory
    for ``auditml.audit``), so attacks never import training code.
    """

    @property
    def keep(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(K, len(x), num_classes)`` logits of every model."""
        ...

    def token_statistics(self, x: np.ndarray) -> Iterator[TokenStatistics]:
        """Language models: each model's next-token statistics on the token rows ``x``
        (:func:`auditml.models.causal_lm.token_statistics`), one model at a time, in order."""
        ...


class NotFittedError(AuditMLError):
    """An attack was asked for scores before ``fit``."""


class MissingResourceError(AuditMLError):
    """An attack needs something the audit was not given (reference models, population data)."""


class AttackSettings(BaseModel):
    """Base of every attack's settings; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=BaseModel)


def validated_settings(kind: type[S], owner: str, settings: dict[str, Any]) -> S:
    """``kind(**settings)``, or one :class:`ConfigError` line naming ``owner``, the key, the
    value and what is wrong with it (for every attack's and audit's settings)."""
    try:
        return kind(**settings)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{owner}: {key}={first.get('input')!r}: {first['msg']}") from None


@dataclass(frozen=True)
class AuditTarget:
    """What an attack may use.

    ``examples`` are the audited examples (members and non-members, in an order the attack must
    not read anything into); their membership is never given to the attack. ``population`` holds
    examples known not to be members and not audited. ``reference`` are models of the target's
    recipe trained on random halves of ``examples`` (``reference.keep`` says which);
    ``shadow`` are such models trained on halves of ``population``. ``outputs`` are the
    model's logits on ``examples`` when they were computed before (a run directory keeps them
    from training time); then ``model`` may be None for attacks that need only
    :meth:`logits` (:attr:`MembershipAttack.uses_model` False).
    """

    model: nn.Module | None
    examples: ArrayDataset
    num_classes: int
    device: torch.device | None
    seed: int
    population: ArrayDataset | None = None
    reference: ReferenceModels | None = None
    shadow: ReferenceModels | None = None
    outputs: np.ndarray | None = None
    # The model the target was fine-tuned from (language models; ``model.base``), or None.
    base: nn.Module | None = None
    # What is computed once per target for every attack that reads it (not copied by
    # dataclasses.replace: a target with another model starts empty).
    _computed: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def logits(self) -> np.ndarray:
        """The target's ``(len(examples), num_classes)`` logits as float64: ``outputs`` when
        given, else one forward pass of ``model``."""
        if self.outputs is not None:
            return np.asarray(self.outputs, dtype=np.float64)
        if self.model is None:
            raise MissingResourceError("the audit has neither the target model nor its outputs")
        from auditml.models.inference import predict_logits

        return predict_logits(self.model, self.examples.x, device=self.device or "cpu")

    def token_statistics(self) -> TokenStatistics:
        """A language model target's next-token statistics on ``examples``
        (:func:`auditml.models.causal_lm.token_statistics`), computed once: every text attack
        reads them."""
        if "token_statistics" not in self._computed:
            if self.model is None:
                raise MissingResourceError("the text attacks need the target language model")
            from auditml.models.causal_lm import token_statistics

            self._computed["token_statistics"] = token_statistics(
                self.model, self.examples.x, device=self.device or "cpu"
            )
        return self._computed["token_statistics"]


class MembershipAttack(ABC):
    """Base class of every membership-inference attack."""

    name: ClassVar[str]
    Settings: ClassVar[type[AttackSettings]] = AttackSettings
    # What ``fit`` needs in the target beyond the model and examples:
    # any of "reference", "population", "shadow", "base".
    requires: ClassVar[frozenset[str]] = frozenset()
    # False when ``score`` uses only ``target.logits()`` (and the examples' labels), so the
    # audit may run on the target's cached outputs without loading the model or torch.
    uses_model: ClassVar[bool] = True
    # What the attacked model does (:mod:`auditml.training.task`): the classifier attacks read
    # class scores, the text attacks a language model's next-token log-probabilities.
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    def __init__(self, **settings: Any) -> None:
        self.params = validated_settings(self.Settings, self.name, settings)
        self._target: AuditTarget | None = None

    def fit(self, target: AuditTarget) -> MembershipAttack:
        missing = [need for need in sorted(self.requires) if getattr(target, need) is None]
        if missing:
            raise MissingResourceError(
                f"{self.name} needs {' and '.join(missing)} "
                f"({', '.join(_WHAT[need] for need in missing)}), which this audit lacks"
            )
        self._target = target
        try:
            self._fit(target)
        except BaseException:
            self._target = None  # a failed fit leaves the attack unfitted, not half-fitted
            raise
        return self

    def _fit(self, target: AuditTarget) -> None:  # noqa: B027 - a hook, empty by default
        """Learn from the target; the default learns nothing."""

    @property
    def target(self) -> AuditTarget:
        if self._target is None:
            raise NotFittedError(f"{self.name} is not fitted yet: call fit(target) first")
        return self._target

    def settings(self) -> dict[str, Any]:
        """The attack's parameters, as recorded in ``audit/<attack>.json``."""
        return self.params.model_dump(mode="json")

    def reference_keep(self, target: AuditTarget) -> np.ndarray:
        """The keep matrix of ``target.reference``, checked to cover the audited examples."""
        reference = target.reference
        if reference is None:
            raise MissingResourceError(f"{self.name} needs reference models")
        keep = np.asarray(reference.keep, dtype=bool)
        if len(reference) == 0 or keep.shape != (len(reference), len(target.examples)):
            raise MissingResourceError(
                f"{self.name} needs reference models trained on halves of the "
                f"{len(target.examples)} audited examples, got {len(reference)} models with a "
                f"keep matrix of shape {keep.shape}"
            )
        return keep

    def fitted_values(self) -> dict[str, Any]:
        """Values ``fit`` chose (e.g. a tuned parameter), recorded beside the settings."""
        return {}

    def check_task(self, task: str) -> None:
        """Refuse, with a ``ConfigError``, a model this attack cannot read (a language model for
        a classifier attack, or the other way round), before any model trains."""
        if task not in self.tasks:
            kind = "a language model" if task == "causal_lm" else "a classifier"
            hint = ("the text attacks (mia_text_*)" if task == "causal_lm"
                    else "the classifier attacks (mia_threshold, mia_rmia, ...)")
            raise ConfigError(
                f"{self.name} cannot attack {kind} (it reads {_READS[min(self.tasks)]}): use "
                f"{hint}"
            )

    def check_inputs(self, input_shape: tuple[int, ...]) -> None:  # noqa: B027 - a hook
        """Refuse, with an ``AuditMLError``, inputs of one example's ``input_shape`` that these
        settings cannot attack (e.g. image augmentations on tabular rows). Called before any
        reference or shadow model trains; the default accepts every shape."""

    @abstractmethod
    def score(self) -> np.ndarray:
        """One float per example of ``target.examples``, higher = more likely a member."""


_READS = {
    "classification": "class scores",
    "causal_lm": "next-token log-probabilities",
}

_WHAT = {
    "reference": "models trained like the target on halves of the audited examples",
    "population": "examples from the same distribution that the target never trained on",
    "shadow": "models trained like the target on population data",
    "base": "the model the target was fine-tuned from: set model.base and train again",
}
