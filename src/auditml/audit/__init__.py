"""The audit pipeline: which audits run (:mod:`.plan`), the one core that runs every kind of
them (:mod:`.core`), their records (:mod:`.results`), canary audits (:mod:`.canaries`), the audits
beyond membership (:mod:`.inference`) and the run-directory driver behind ``auditml audit``
(:mod:`.runner`). It computes and never draws: figures are data its callers draw.

The attribute ``auditml.audit`` is not this package but the bring-your-own-model function
:func:`auditml.api.audit` (``auditml.audit(model, members, nonmembers, ...)``); this package's
modules are imported by name: ``from auditml.audit.core import run_plan`` or
``from auditml.audit import core``.
"""

from __future__ import annotations

__all__: list[str] = []
