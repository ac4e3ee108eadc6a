"""Membership-inference attacks: a registry of classes following :class:`MembershipAttack`.

Adding an attack is one module with a ``MembershipAttack`` subclass plus one register line.
"""

from __future__ import annotations

from auditml.attacks.base import (
    AttackSettings,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    NotFittedError,
    ReferenceModels,
)
from auditml.attacks.label_only import LabelOnlyAttack
from auditml.attacks.lira import LiraAttack
from auditml.attacks.rmia import RmiaAttack
from auditml.attacks.shadow import ShadowModelAttack
from auditml.attacks.threshold import ThresholdAttack
from auditml.registry import Registry

ATTACKS: Registry[type[MembershipAttack]] = Registry("attack")
ATTACKS.register("mia_threshold", ThresholdAttack)
ATTACKS.register("mia_shadow", ShadowModelAttack)
ATTACKS.register("mia_label_only", LabelOnlyAttack)
ATTACKS.register("mia_lira", LiraAttack)
ATTACKS.register("mia_rmia", RmiaAttack)

__all__ = [
    "ATTACKS",
    "AttackSettings",
    "AuditTarget",
    "LabelOnlyAttack",
    "LiraAttack",
    "MembershipAttack",
    "MissingResourceError",
    "NotFittedError",
    "ReferenceModels",
    "RmiaAttack",
    "ShadowModelAttack",
    "ThresholdAttack",
]
