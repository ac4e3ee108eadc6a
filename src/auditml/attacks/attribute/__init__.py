"""Attribute-inference attacks: a registry beside the membership attacks.

Each follows :class:`AttributeAttack` (settings, ``fit``, ``score``); adding one is one module
plus one register line. ``imputation`` is the baseline every other attack is judged against.
"""

from __future__ import annotations

from auditml.attacks.attribute.base import (
    AttributeAttack,
    AttributeSettings,
    AttributeTarget,
    hide_attribute,
)
from auditml.attacks.attribute.confidence import ConfidenceAttack
from auditml.attacks.attribute.imputation import ImputationBaseline
from auditml.attacks.attribute.model_output import ModelOutputAttack
from auditml.registry import Registry

BASELINE = "imputation"

ATTRIBUTE_ATTACKS: Registry[type[AttributeAttack]] = Registry("attribute-inference attack")
ATTRIBUTE_ATTACKS.register(BASELINE, ImputationBaseline)
ATTRIBUTE_ATTACKS.register("model_output", ModelOutputAttack)
ATTRIBUTE_ATTACKS.register("confidence", ConfidenceAttack)

__all__ = [
    "ATTRIBUTE_ATTACKS", "BASELINE", "AttributeAttack", "AttributeSettings", "AttributeTarget",
    "ConfidenceAttack", "ImputationBaseline", "ModelOutputAttack", "hide_attribute",
]
