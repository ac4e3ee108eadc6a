"""One family of errors. Each message is a single line: what is wrong, where, what to do.

The CLI prints ``str(error)`` and exits with code 2; nothing else is shown to the user.
"""

from __future__ import annotations


class AuditMLError(Exception):
    """Base class of every error auditml raises on bad input."""


class ConfigError(AuditMLError):
    """The configuration file or a setting in it is invalid."""


class DataError(AuditMLError):
    """A dataset cannot be found, read or split as asked."""


class RunDirectoryError(AuditMLError):
    """A run directory is missing, incomplete or corrupt."""


class ModelError(AuditMLError):
    """A model cannot be built, trained privately or loaded."""


class TrainingError(ModelError):
    """Training ran but did not train: no trainable tensor moved, or a tensor became non-finite."""


class UnknownNameError(AuditMLError):
    """A name is not in a registry (dataset, model, attack, ...)."""


class ArgumentError(AuditMLError, ValueError):
    """An argument of a Python-API call is invalid; the message names it. Also a ValueError,
    as Python code calling a function expects of a bad argument."""
