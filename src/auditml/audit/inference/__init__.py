"""Audits beyond membership: a registry of :class:`InferenceAudit` kinds.

Adding one is one module plus one register line; its record goes to ``audit/<name>.json``.
Registered lazily, as the attacks are: nothing here imports torch until an audit is fetched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditml.lazy import lazy_attributes
from auditml.registry import Registry

if TYPE_CHECKING:
    from auditml.audit.inference.attribute import AttributeInferenceAudit
    from auditml.audit.inference.base import (
        InferenceAudit,
        InferenceEvidence,
        InferenceOutcome,
        InferenceSettings,
    )
    from auditml.audit.inference.inversion import ModelInversionAudit

_BASE = "auditml.audit.inference.base"
_ATTRIBUTE, _INVERSION = "auditml.audit.inference.attribute", "auditml.audit.inference.inversion"
__getattr__ = lazy_attributes(__name__, {
    "InferenceAudit": _BASE, "InferenceEvidence": _BASE, "InferenceOutcome": _BASE,
    "InferenceSettings": _BASE, "AttributeInferenceAudit": _ATTRIBUTE,
    "ModelInversionAudit": _INVERSION,
})

INFERENCE_AUDITS: Registry[type[InferenceAudit]] = Registry("inference audit")
INFERENCE_AUDITS.register_lazy("attribute_inference", _ATTRIBUTE, "AttributeInferenceAudit")
INFERENCE_AUDITS.register_lazy("model_inversion", _INVERSION, "ModelInversionAudit")

__all__ = [
    "INFERENCE_AUDITS", "AttributeInferenceAudit", "InferenceAudit", "InferenceEvidence",
    "InferenceOutcome", "InferenceSettings", "ModelInversionAudit",
]
