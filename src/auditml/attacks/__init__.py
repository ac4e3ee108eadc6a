"""Membership-inference attacks: a registry of classes following :class:`MembershipAttack`.

Adding an attack is one module with a ``MembershipAttack`` subclass plus one register line.
Registered lazily: an attack's module (and torch, which most need) is imported when the attack
is first fetched, so planning an audit, or running one that needs only the target's outputs,
does not import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditml.attacks.base import (
    AttackSettings,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    NotFittedError,
    ReferenceModels,
)
from auditml.lazy import lazy_attributes
from auditml.registry import Registry

if TYPE_CHECKING:
    from auditml.attacks.boundary_distance import BoundaryDistanceAttack
    from auditml.attacks.label_only import LabelOnlyAttack
    from auditml.attacks.lira import LiraAttack
    from auditml.attacks.multi_signal import MultiSignalAttack
    from auditml.attacks.qmia import QmiaAttack
    from auditml.attacks.rmia import RmiaAttack
    from auditml.attacks.shadow import ShadowModelAttack
    from auditml.attacks.text import (
        MinKAttack,
        MinKPlusPlusAttack,
        ReferenceModelAttack,
        TextLossAttack,
        ZlibAttack,
    )
    from auditml.attacks.text_reference import TextLiraAttack, TextRmiaAttack
    from auditml.attacks.threshold import ThresholdAttack

_HOMES = {
    "ThresholdAttack": "auditml.attacks.threshold",
    "ShadowModelAttack": "auditml.attacks.shadow",
    "LabelOnlyAttack": "auditml.attacks.label_only",
    "LiraAttack": "auditml.attacks.lira",
    "RmiaAttack": "auditml.attacks.rmia",
    "QmiaAttack": "auditml.attacks.qmia",
    "BoundaryDistanceAttack": "auditml.attacks.boundary_distance",
    "MultiSignalAttack": "auditml.attacks.multi_signal",
    "TextLossAttack": "auditml.attacks.text",
    "ZlibAttack": "auditml.attacks.text",
    "MinKAttack": "auditml.attacks.text",
    "MinKPlusPlusAttack": "auditml.attacks.text",
    "ReferenceModelAttack": "auditml.attacks.text",
    "TextLiraAttack": "auditml.attacks.text_reference",
    "TextRmiaAttack": "auditml.attacks.text_reference",
}
__getattr__ = lazy_attributes(__name__, _HOMES)

ATTACKS: Registry[type[MembershipAttack]] = Registry("attack")
ATTACKS.register_lazy("mia_threshold", _HOMES["ThresholdAttack"], "ThresholdAttack")
ATTACKS.register_lazy("mia_shadow", _HOMES["ShadowModelAttack"], "ShadowModelAttack")
ATTACKS.register_lazy("mia_label_only", _HOMES["LabelOnlyAttack"], "LabelOnlyAttack")
ATTACKS.register_lazy("mia_lira", _HOMES["LiraAttack"], "LiraAttack")
ATTACKS.register_lazy("mia_rmia", _HOMES["RmiaAttack"], "RmiaAttack")
ATTACKS.register_lazy("mia_qmia", _HOMES["QmiaAttack"], "QmiaAttack")
ATTACKS.register_lazy(
    "mia_boundary_distance", _HOMES["BoundaryDistanceAttack"], "BoundaryDistanceAttack"
)
ATTACKS.register_lazy("mia_multi_signal", _HOMES["MultiSignalAttack"], "MultiSignalAttack")
ATTACKS.register_lazy("mia_text_loss", _HOMES["TextLossAttack"], "TextLossAttack")
ATTACKS.register_lazy("mia_text_zlib", _HOMES["ZlibAttack"], "ZlibAttack")
ATTACKS.register_lazy("mia_text_min_k", _HOMES["MinKAttack"], "MinKAttack")
ATTACKS.register_lazy("mia_text_min_k_pp", _HOMES["MinKPlusPlusAttack"], "MinKPlusPlusAttack")
ATTACKS.register_lazy(
    "mia_text_reference", _HOMES["ReferenceModelAttack"], "ReferenceModelAttack"
)
ATTACKS.register_lazy("mia_text_lira", _HOMES["TextLiraAttack"], "TextLiraAttack")
ATTACKS.register_lazy("mia_text_rmia", _HOMES["TextRmiaAttack"], "TextRmiaAttack")


# The strongest attack of a language model that needs no other model (Min-K%++): what the sweep
# and `compare` use for language models when no attack is named.
DEFAULT_TEXT_ATTACK = "mia_text_min_k_pp"


def attacks_of(task: str) -> list[str]:
    """The registered attacks that read models of ``task`` (``classification`` or ``causal_lm``,
    :mod:`auditml.training.task`); imports each attack's module."""
    return [name for name in ATTACKS.available() if task in ATTACKS.get(name).tasks]


__all__ = [
    "ATTACKS",
    "DEFAULT_TEXT_ATTACK",
    "AttackSettings",
    "AuditTarget",
    "BoundaryDistanceAttack",
    "LabelOnlyAttack",
    "LiraAttack",
    "MembershipAttack",
    "MinKAttack",
    "MinKPlusPlusAttack",
    "MissingResourceError",
    "MultiSignalAttack",
    "NotFittedError",
    "QmiaAttack",
    "ReferenceModelAttack",
    "ReferenceModels",
    "RmiaAttack",
    "ShadowModelAttack",
    "TextLiraAttack",
    "TextLossAttack",
    "TextRmiaAttack",
    "ThresholdAttack",
    "ZlibAttack",
    "attacks_of",
]
