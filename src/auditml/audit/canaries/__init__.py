"""Canary audits: privacy audits that judge a training run by canaries it may have trained on.

A canary audit is not a membership attack: it does not score the audited members and
non-members, it scores the run's canaries (``training.canaries``; each was included by a
recorded coin) and turns the guesses into an ε lower bound. Each kind is a
:class:`~auditml.audit.canaries.base.CanaryAuditKind` registered in :data:`CANARY_AUDITS`;
adding one is one module plus one register line.
"""

from __future__ import annotations

from auditml.audit.canaries.base import CanaryAuditKind
from auditml.audit.canaries.one_run import OneRunAudit
from auditml.audit.canaries.white_box import AllIteratesAudit, LastIterateAudit
from auditml.registry import Registry

CANARY_AUDITS: Registry[type[CanaryAuditKind]] = Registry("canary audit")
CANARY_AUDITS.register("dp_audit", OneRunAudit)
CANARY_AUDITS.register("dp_audit_all_iterates", AllIteratesAudit)
CANARY_AUDITS.register("dp_audit_last_iterate", LastIterateAudit)

__all__ = [
    "CANARY_AUDITS", "AllIteratesAudit", "CanaryAuditKind", "LastIterateAudit", "OneRunAudit",
]
