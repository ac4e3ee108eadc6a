"""auditml: train PyTorch models with and without DP-SGD, attack them, report the leakage."""

from __future__ import annotations

from typing import Any

from auditml.errors import AuditMLError
from auditml.version import __version__

__all__ = ["AssumptionWarning", "AuditMLError", "CanaryAudit", "__version__", "audit"]


def __getattr__(name: str) -> Any:
    # ``auditml.audit`` pulls in torch; importing it lazily keeps ``auditml --help`` fast. It is
    # the audit package, callable as the bring-your-own-model function (auditml.api.audit).
    if name == "audit":
        import importlib

        return importlib.import_module("auditml.audit")
    if name in ("CanaryAudit", "AssumptionWarning"):  # gradient canaries in your own loop
        from auditml.audit import own_loop

        return getattr(own_loop, name)
    raise AttributeError(f"module 'auditml' has no attribute {name!r}")
