"""The audit pipeline: which attacks run (:mod:`.plan`), the one core that runs them
(:mod:`.core`), their records (:mod:`.results`), canary audits (:mod:`.canaries`) and the
run-directory driver behind ``auditml audit`` (:mod:`.runner`).

``auditml.audit`` is also callable: ``auditml.audit(model, members, nonmembers, ...)`` is
:func:`auditml.api.audit`, the bring-your-own-model entry point (a package and a function share
the name, so the package forwards calls to the function).
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from auditml.api import audit

        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__: list[str] = []
