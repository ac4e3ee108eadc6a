"""What an audit runs: attack and canary-audit names resolved once, settings checked once.

Names come from three registries: membership attacks (:data:`auditml.attacks.ATTACKS`),
canary audits (:data:`auditml.audit.canaries.CANARY_AUDITS`) and the audits beyond membership
(:data:`auditml.audit.inference.INFERENCE_AUDITS`). ``all`` means every membership attack.
Settings come from the config's ``audit.<name>`` sections, overridden per call. Every unknown
name or bad setting is refused here, before any model is loaded or trained.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from auditml.attacks import ATTACKS, MembershipAttack, attacks_of
from auditml.audit.canaries import CANARY_AUDITS
from auditml.audit.core import AuditPlan
from auditml.audit.inference import INFERENCE_AUDITS
from auditml.config import AuditConfig, AuditMLConfig
from auditml.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from auditml.audit.canaries import CanaryAuditKind
    from auditml.audit.inference import InferenceAudit

ALL = "all"


def known_names() -> list[str]:
    return [*ATTACKS.available(), *CANARY_AUDITS.available(), *INFERENCE_AUDITS.available()]


def expand_names(requested: Sequence[str], *, task: str = "classification") -> list[str]:
    """``requested`` without repeats, ``all`` replaced by every membership attack of models of
    ``task`` (:mod:`auditml.training.task`: the classifier attacks, or the text attacks of a
    language model); unknown names raise :class:`UnknownNameError` with a did-you-mean."""
    if not requested:
        raise ConfigError("no attack to run: name at least one attack, or `all`")
    names: list[str] = []
    for name in requested:
        if name == ALL:
            names += attacks_of(task)
        elif _known(name):
            names.append(name)
        else:
            raise UnknownNameError(_unknown(name))
    return list(dict.fromkeys(names))


def plan_audit(
    requested: Sequence[str],
    sections: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    task: str = "classification",
) -> AuditPlan:
    """Instantiate each requested attack with ``sections[name]`` updated by ``overrides[name]``
    (``all``: every attack of models of ``task``).

    ``sections`` are the config's per-attack settings; every section must name a known attack
    (a typo such as ``mia_lria`` is refused, not ignored).
    """
    sections, overrides = dict(sections or {}), dict(overrides or {})
    for name in [*sections, *overrides]:
        if not _known(name):
            raise ConfigError(f"audit.{name}: {_unknown(name, 'settings for unknown attack')}")
    attacks: list[MembershipAttack] = []
    canary_audits: list[CanaryAuditKind] = []
    inference_audits: list[InferenceAudit] = []
    for name in expand_names(requested, task=task):
        settings = {**sections.get(name, {}), **overrides.get(name, {})}
        try:
            if name in ATTACKS:
                attacks.append(ATTACKS.get(name)(**settings))
            elif name in CANARY_AUDITS:
                canary_audits.append(CANARY_AUDITS.get(name)(**settings))
            else:
                inference_audits.append(INFERENCE_AUDITS.get(name)(**settings))
        except ConfigError as error:
            raise ConfigError(f"audit.{error}") from None
    return AuditPlan(attacks, canary_audits, inference_audits)


def fed_by(plan: AuditPlan, requested: Sequence[str], available: Collection[str]) -> AuditPlan:
    """``plan`` for an audit that can give its attacks only the resources ``available`` (names
    of :attr:`MembershipAttack.requires`): with ``all`` requested, the attacks that need any
    other are left out, since ``all`` means every attack the audit can feed. An attack named
    explicitly stays, to be refused by name for what it lacks."""
    if ALL not in requested:
        return plan
    fed = [attack for attack in plan.attacks if attack.requires <= set(available)]
    return dataclasses.replace(plan, attacks=fed)


def _known(name: str) -> bool:
    return name in ATTACKS or name in CANARY_AUDITS or name in INFERENCE_AUDITS


def check_audit_config(audit: AuditConfig, *, task: str = "classification") -> AuditPlan:
    """Check ``audit.attacks`` and every ``audit.<attack>`` section of a config; the plan the
    config describes (for models of ``task``). Cheap: attacks do nothing until fitted."""
    plan = plan_audit(audit.attacks, audit.attack_sections(), task=task)
    # Sections of attacks not in audit.attacks are checked too: they are used by --attack.
    if audit.attack_sections():
        plan_audit(list(audit.attack_sections()), audit.attack_sections())
    return plan


def resolved_config(config: AuditMLConfig) -> AuditMLConfig:
    """``config.resolved()`` with the full settings of each attack ``audit.attacks`` names."""
    resolved = config.resolved()
    audit = resolved.audit.model_dump(mode="json")
    plan = check_audit_config(config.audit, task=config.dataset_spec.task)
    for runner in (*plan.attacks, *plan.canary_audits, *plan.inference_audits):
        audit[runner.name] = runner.settings()
    return resolved.model_copy(update={"audit": AuditConfig(**audit)}, deep=True)


def _unknown(name: str, what: str = "unknown attack") -> str:
    close = difflib.get_close_matches(name, [*known_names(), ALL], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{what} {name!r}{hint}; available: {', '.join([*known_names(), ALL])}"
