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
)
from auditml.attacks.threshold import ThresholdAttack
from auditml.registry import Registry

ATTACKS: Registry[type[MembershipAttack]] = Registry("attack")
ATTACKS.register("mia_threshold", ThresholdAttack)

__all__ = [
    "ATTACKS",
    "AttackSettings",
    "AuditTarget",
    "MembershipAttack",
    "MissingResourceError",
    "NotFittedError",
    "ThresholdAttack",
]
