"""auditml: train PyTorch models with and without DP-SGD, attack them, report the leakage."""

from __future__ import annotations

import sys
import types
from typing import Any

from auditml.errors import AuditMLError
from auditml.version import __version__

__all__ = [
    "AssumptionWarning", "AuditMLError", "CanaryAudit", "__version__", "audit",
    "audit_language_model",
]


class _Package(types.ModuleType):
    """The ``auditml`` module, whose ``audit`` is the function :func:`auditml.api.audit`.

    The audit *subpackage* shares the name, and importing any of its modules makes the import
    system bind ``auditml.audit`` to the subpackage. The property below keeps the function in
    that place: the subpackage stays importable by its dotted name (``import auditml.audit.core``,
    ``from auditml.audit.core import run_attacks``, ``from auditml.audit import core``), which
    goes through ``sys.modules``, not through this attribute. The function is imported on first
    use: it pulls in torch, and ``auditml --help`` must stay fast.
    """

    @property
    def audit(self) -> Any:
        replaced = vars(self).get("_audit_replaced")  # e.g. monkeypatch.setattr(auditml, ...)
        if replaced is not None:
            return replaced
        from auditml.api import audit

        return audit

    @audit.setter
    def audit(self, value: Any) -> None:
        if isinstance(value, types.ModuleType) and value.__name__ == "auditml.audit":
            return  # the import system binding the subpackage: it stays in sys.modules
        vars(self)["_audit_replaced"] = value


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in ("CanaryAudit", "AssumptionWarning"):  # gradient canaries in your own loop
        from auditml.audit import own_loop

        return getattr(own_loop, name)
    if name == "audit_language_model":  # the text attacks on any causal language model
        from auditml.api_text import audit_language_model

        return audit_language_model
    raise AttributeError(f"module 'auditml' has no attribute {name!r}")
