"""Audits beyond membership: a registry of :class:`InferenceAudit` kinds.

Adding one is one module plus one register line; its record goes to ``audit/<name>.json``.
"""

from __future__ import annotations

from auditml.audit.inference.attribute import AttributeInferenceAudit
from auditml.audit.inference.base import (
    InferenceAudit,
    InferenceEvidence,
    InferenceOutcome,
    InferenceSettings,
)
from auditml.audit.inference.inversion import ModelInversionAudit
from auditml.registry import Registry

INFERENCE_AUDITS: Registry[type[InferenceAudit]] = Registry("inference audit")
INFERENCE_AUDITS.register("attribute_inference", AttributeInferenceAudit)
INFERENCE_AUDITS.register("model_inversion", ModelInversionAudit)

__all__ = [
    "INFERENCE_AUDITS", "AttributeInferenceAudit", "InferenceAudit", "InferenceEvidence",
    "InferenceOutcome", "InferenceSettings", "ModelInversionAudit",
]
