"""Canary audits: privacy audits that judge a training run by canaries it may have trained on.

A canary audit is not a membership attack: it does not score the audited members and
non-members, it scores the run's canaries (``training.canaries``; each was included by a
recorded coin) and turns the guesses into an ε lower bound. Each kind is a
:class:`~auditml.audit.canaries.base.CanaryAuditKind` registered in :data:`CANARY_AUDITS`;
adding one is one module plus one register line. Registered lazily: a kind's module (and torch)
is imported when the kind is first fetched, not when an audit is planned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditml.lazy import lazy_attributes
from auditml.registry import Registry

if TYPE_CHECKING:
    from auditml.audit.canaries.base import CanaryAuditKind
    from auditml.audit.canaries.one_run import OneRunAudit
    from auditml.audit.canaries.white_box import AllIteratesAudit, LastIterateAudit

_ONE_RUN, _WHITE_BOX = "auditml.audit.canaries.one_run", "auditml.audit.canaries.white_box"
__getattr__ = lazy_attributes(__name__, {
    "CanaryAuditKind": "auditml.audit.canaries.base", "OneRunAudit": _ONE_RUN,
    "AllIteratesAudit": _WHITE_BOX, "LastIterateAudit": _WHITE_BOX,
})

CANARY_AUDITS: Registry[type[CanaryAuditKind]] = Registry("canary audit")
CANARY_AUDITS.register_lazy("dp_audit", _ONE_RUN, "OneRunAudit")
CANARY_AUDITS.register_lazy("dp_audit_all_iterates", _WHITE_BOX, "AllIteratesAudit")
CANARY_AUDITS.register_lazy("dp_audit_last_iterate", _WHITE_BOX, "LastIterateAudit")
CANARY_AUDITS.register_lazy("secret_canaries", "auditml.audit.canaries.secret", "SecretAudit")

__all__ = [
    "CANARY_AUDITS", "AllIteratesAudit", "CanaryAuditKind", "LastIterateAudit", "OneRunAudit",
]
