"""``auditml.audit_language_model``: the text membership attacks on any causal language model.

The Python front door for a language model auditml did not train: auditml's own ``gpt2_tiny``
(:class:`~auditml.models.causal_lm.CausalLM`) or a Hugging Face causal LM with its own tokenizer.
It runs the same audit core, attacks and metrics as ``auditml audit`` on a text run, and returns
the same :class:`~auditml.api.AuditResults` (``save`` writes the records ``report`` and
``compare`` read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from auditml.api import (
    AttackResults,
    AuditResults,
    FactoryResources,
    _check_arguments,
    check_audited_counts,
    checked_device,
)
from auditml.attacks import DEFAULT_TEXT_ATTACK
from auditml.audit.core import MembershipEvidence, PlanEvidence, run_plan
from auditml.audit.plan import ALL, fed_by, plan_audit
from auditml.data import ArrayDataset
from auditml.errors import ArgumentError, AuditMLError, ConfigError
from auditml.models.causal_lm import CausalLM, next_token_evaluation
from auditml.records import AuditedModelRecord, RunFacts, Versions
from auditml.training.reference import ReferenceFactory, ReferenceModels

Rows = np.ndarray | torch.Tensor | Sequence[Sequence[int]]


def audit_language_model(
    model: nn.Module,
    members: Rows,
    nonmembers: Rows,
    *,
    attacks: Sequence[str] | str = (DEFAULT_TEXT_ATTACK,),
    settings: dict[str, dict[str, Any]] | None = None,
    pad_id: int | None = None,
    base_model: nn.Module | None = None,
    population: Rows | None = None,
    reference_factory: ReferenceFactory | None = None,
    reference_models: int = 8,
    seed: int = 0,
    delta: float | None = None,
    claimed_epsilon: float | None = None,
    device: str | torch.device = "cpu",
) -> AuditResults:
    """Attack the causal language model ``model`` with ``members`` (token-id rows it trained on)
    and ``nonmembers`` (rows it did not).

    ``model`` is auditml's :class:`~auditml.models.causal_lm.CausalLM` (byte tokens, as
    ``auditml train`` makes them), or a Hugging Face causal LM (a ``transformers`` model with a
    ``config``; its call with ``input_ids`` returns ``.logits``); for the latter give ``pad_id``,
    the id that right-pads its rows (its tokenizer's pad id, or EOS when it has none).
    ``members`` and ``nonmembers`` are integer ``(N, L)`` rows of the model's token ids, of one
    width, each right-padded with ``pad_id``: no token may follow a ``pad_id`` (left-padded rows
    are refused), except that a row may open with it, where the tokenizer's BOS is its pad id
    too (GPT-2's). ``base_model`` is the model ``model`` was
    fine-tuned from (same tokenizer): ``mia_text_reference`` needs it.
    ``reference_factory(train_set, seed)`` must return a model trained like ``model`` (from the
    same base, with the same recipe) on ``train_set``, an ArrayDataset of token rows (``x``;
    its labels are 0); it is called ``reference_models`` times, on complementary halves of the
    audited rows: ``mia_text_lira`` and ``mia_text_rmia`` need it, and RMIA also needs
    ``population``, rows of the same kind that neither ``model`` nor the reference models
    trained on. ``attacks`` are text attacks (``mia_text_*``, or ``all``: each one the given
    models and rows can feed). ``delta`` and
    ``claimed_epsilon`` are the model's DP claim, if it has one (the ε lower bounds use
    ``delta``; a report checks them against the claim). ``mia_text_zlib`` compresses a row's
    text, which only auditml's byte tokens give: it is refused for a model of its own tokenizer.
    """
    target = _causal_lm(model, pad_id, "model")
    base = None if base_model is None else _causal_lm(base_model, pad_id, "base_model")
    _check_arguments(target, reference_factory, reference_models, seed, delta, claimed_epsilon,
                     None, None)
    available = {name for name, given in (("base", base), ("reference", reference_factory),
                                          ("population", population)) if given is not None}
    plan = _plan(attacks, settings, available, target.byte_tokens)
    member_rows = _rows(members, "members", target)
    nonmember_rows = _rows(nonmembers, "nonmembers", target)
    check_audited_counts(len(member_rows), len(nonmember_rows))
    population_rows = None if population is None else _rows(population, "population", target)
    for name, rows in (("nonmembers", nonmember_rows), ("population", population_rows)):
        if rows is not None and rows.shape[1] != member_rows.shape[1]:
            raise ArgumentError(
                f"`{name}` rows have {rows.shape[1]} tokens, `members` "
                f"{member_rows.shape[1]}: pad every row to one width with pad_id"
            )
    device = checked_device(device)
    target = target.to(device).eval()
    base = None if base is None else base.to(device).eval()
    facts = RunFacts(experiment_name="model",
                     dp_enabled=None if claimed_epsilon is None else True,
                     epsilon=claimed_epsilon, delta=delta)
    member_set = ArrayDataset(member_rows, np.zeros(len(member_rows), np.int64))
    nonmember_set = ArrayDataset(nonmember_rows, np.zeros(len(nonmember_rows), np.int64))
    population_set = None if population_rows is None else ArrayDataset(
        population_rows, np.zeros(len(population_rows), np.int64))
    resources = _TextFactoryResources(
        base=base, pad_id=pad_id, device=device, factory=reference_factory,
        count=reference_models, population=population_set, seed=seed, console=None,
    )

    def membership() -> MembershipEvidence:
        return MembershipEvidence(
            target, member_set, nonmember_set, num_classes=target.vocab_size, device=device,
            seed=seed, delta=delta, run_facts=facts, resources=resources,
            task="causal_lm",
        )

    done = run_plan(plan, PlanEvidence(membership=membership))
    outcomes = [] if done.attacks is None else done.attacks.outcomes
    accuracy = {name: next_token_evaluation(target, rows, device=str(device))[0]
                for name, rows in (("members", member_rows), ("nonmembers", nonmember_rows))}
    return AuditResults(
        {outcome.attack: AttackResults(outcome.metrics, outcome.scores, outcome.result)
         for outcome in outcomes},
        np.r_[np.ones(len(member_rows), bool), np.zeros(len(nonmember_rows), bool)],
        model=AuditedModelRecord(
            source="api.audit_language_model", experiment_name="model",
            arch=type(target.language_model).__name__,
            members=len(member_rows), nonmembers=len(nonmember_rows),
            # Next-token accuracy: the share of real (not padding) targets the argmax predicts.
            train_acc=accuracy["members"], nonmember_acc=accuracy["nonmembers"],
            dp_enabled=facts.dp_enabled, epsilon=claimed_epsilon, delta=delta,
            versions=Versions.current(),
        ),
        outcomes=outcomes,
    )


def _causal_lm(model: object, pad_id: int | None, name: str) -> CausalLM:
    """``model`` as auditml's interface to a causal LM (a Hugging Face one wrapped)."""
    if isinstance(model, CausalLM):
        if pad_id is not None and pad_id != model.pad_id:
            raise ArgumentError(f"`pad_id` is {pad_id} but `{name}` pads with {model.pad_id}; "
                                "leave pad_id unset for auditml's own models")
        return model
    if not isinstance(model, nn.Module) or not hasattr(model, "config"):
        raise ArgumentError(
            f"`{name}` must be auditml's CausalLM or a Hugging Face causal LM (an nn.Module "
            f"with a config), got {type(model).__name__}"
        )
    if pad_id is None:
        raise ArgumentError(f"`pad_id`: `{name}` is a model of its own tokenizer: give the id "
                            "that right-pads its rows (its tokenizer's pad_token_id or EOS id)")
    try:
        return CausalLM.from_pretrained_model(model, pad_id=pad_id)
    except AuditMLError as error:
        raise ArgumentError(f"`pad_id`: {error}") from None


def _rows(rows: Rows, name: str, model: CausalLM) -> np.ndarray:
    """``rows`` as int64 ``(N, L)`` token ids the model can read, or an error naming them."""
    try:
        array = np.asarray(rows.detach().cpu() if isinstance(rows, torch.Tensor) else rows)
    except (ValueError, TypeError) as error:  # ragged rows
        raise ArgumentError(f"`{name}` must be rows of one width (pad them with pad_id): "
                            f"{' '.join(str(error).split())[:160]}") from None
    if array.ndim != 2 or len(array) == 0 or array.shape[1] < 2:
        raise ArgumentError(f"`{name}` must be (rows, tokens) token ids with at least one row "
                            f"of at least 2 tokens, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ArgumentError(f"`{name}` must hold integer token ids, got dtype {array.dtype}")
    if array.min() < 0 or array.max() >= model.vocab_size:
        raise ArgumentError(f"`{name}` holds ids outside the model's vocabulary [0, "
                            f"{model.vocab_size}): [{array.min()}, {array.max()}]")
    if model.max_length is not None and array.shape[1] > model.max_length:
        raise ArgumentError(f"`{name}` rows have {array.shape[1]} tokens, more than the "
                            f"model's {model.max_length} positions")
    if ((array[:, 1:] != model.pad_id).sum(axis=1) == 0).any():
        raise ArgumentError(f"`{name}` has a row with no token after its first: nothing to "
                            "score")
    # Right padding only: a left-padded row moves every token and has it attend to the pads,
    # which changes every score. A row may open with the pad id when its tokenizer's BOS is
    # also its pad (GPT-2's <|endoftext|>); auditml's byte tokens have a BOS of their own.
    start = 0 if model.byte_tokens else 1
    padding = array[:, start:] == model.pad_id
    after_pad = padding[:, :-1] & ~padding[:, 1:]
    if after_pad.any():
        row = int(after_pad.any(axis=1).argmax())
        position = start + int(after_pad[row].argmax()) + 1
        raise ArgumentError(
            f"`{name}` row {row} has a token after padding (position {position} follows pad_id "
            f"{model.pad_id}): right-pad every row, its tokens first and pad_id only after "
            "them (left padding, or pad_id inside a text, changes every score)"
        )
    return array.astype(np.int64, copy=False)


_ARGUMENT_OF = {"base": "base_model", "reference": "reference_factory",
                "population": "population"}
"""The argument that gives each resource an attack may require (shadow models: none here)."""


def _plan(attacks: Sequence[str] | str, settings: dict[str, dict[str, Any]] | None,
          available: set[str], byte_tokens: bool) -> Any:
    """The text attacks to run; ``all`` keeps those the given models and texts can feed
    (``available``: the resources given)."""
    requested = [attacks] if isinstance(attacks, str) else attacks
    if not isinstance(requested, Sequence) or not all(isinstance(a, str) for a in requested):
        raise ArgumentError(f"`attacks` must be attack names (a list of str), got {attacks!r}")
    try:
        plan = fed_by(plan_audit(requested, None, settings, task="causal_lm"), requested,
                      available)
    except ConfigError as error:
        raise ArgumentError(f"`attacks`: {str(error).removeprefix('audit.')}") from None
    except AuditMLError as error:
        raise ArgumentError(f"`attacks`: {error}") from None
    if plan.canary_audits or plan.inference_audits:
        raise ArgumentError("`attacks`: only membership attacks audit a given language model; "
                            "secret canaries are audited on a run `auditml train` made")
    kept = []
    for attack in plan.attacks:
        try:
            attack.check_task("causal_lm")
        except ConfigError as error:
            raise ArgumentError(f"`attacks`: {error}") from None
        if attack.name == "mia_text_zlib" and not byte_tokens:
            if ALL in requested:
                continue
            raise ArgumentError("`attacks`: mia_text_zlib compresses each row's text, which "
                                "only auditml's byte tokens give; leave it out for a model of "
                                "its own tokenizer")
        missing = sorted(attack.requires - available)
        if missing:
            arguments = " and ".join(_ARGUMENT_OF.get(need, need) for need in missing)
            raise ArgumentError(f"`{_ARGUMENT_OF.get(missing[0], missing[0])}`: {attack.name} "
                                f"needs {arguments}: give {'them' if len(missing) > 1 else 'it'}")
        kept.append(attack)
    return type(plan)(kept, [], [])


class _TextFactoryResources(FactoryResources):
    """Reference language models from the caller's ``reference_factory``, each read through
    auditml's causal-LM interface on the audit's device; the base model, if given."""

    def __init__(self, *, base: CausalLM | None, pad_id: int | None, device: torch.device,
                 **settings: Any) -> None:
        super().__init__(num_classes=0, **settings)
        self._base, self._pad_id, self._device = base, pad_id, device

    def base(self) -> nn.Module | None:
        return self._base

    def _checked(self, models: ReferenceModels, examples: ArrayDataset) -> ReferenceModels:
        readable = []
        for model in models.models:
            try:
                readable.append(_causal_lm(model, self._pad_id, "reference_factory")
                                .to(self._device).eval())
            except ArgumentError as error:
                raise ArgumentError(f"`reference_factory` must return causal language models "
                                    f"like `model`: {error}") from None
        return ReferenceModels(readable, models.keep, self._device)
