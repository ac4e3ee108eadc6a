"""auditml: train PyTorch models with and without DP-SGD, attack them, report the leakage."""

from __future__ import annotations

from typing import Any

from auditml.errors import AuditMLError
from auditml.version import __version__

__all__ = ["AuditMLError", "CanaryAudit", "__version__", "audit"]


def __getattr__(name: str) -> Any:
    # ``auditml.audit`` pulls in torch; importing it lazily keeps ``auditml --help`` fast. It is
    # the audit package, callable as the bring-your-own-model function (auditml.api.audit).
    if name == "audit":
        import importlib

        return importlib.import_module("auditml.audit")
    if name == "CanaryAudit":  # gradient canaries in your own Opacus loop
        from auditml.audit.own_loop import CanaryAudit

        return CanaryAudit
    raise AttributeError(f"module 'auditml' has no attribute {name!r}")
