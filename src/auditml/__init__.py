"""auditml: train PyTorch models with and without DP-SGD, attack them, report the leakage."""

from __future__ import annotations

from typing import Any

from auditml.errors import AuditMLError

__version__ = "0.1.0"

__all__ = ["AuditMLError", "__version__", "audit"]


def __getattr__(name: str) -> Any:
    # ``auditml.audit`` pulls in torch; importing it lazily keeps ``auditml --help`` fast.
    if name == "audit":
        from auditml.api import audit

        return audit
    raise AttributeError(f"module 'auditml' has no attribute {name!r}")
