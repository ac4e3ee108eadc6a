"""auditml: train PyTorch models with and without DP-SGD, attack them, report the leakage."""

from auditml.errors import AuditMLError

__version__ = "0.1.0"

__all__ = ["AuditMLError", "__version__"]
