"""Package attributes imported on first use (PEP 562), so ``import auditml.x`` stays cheap."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``name`` from ``home[name]`` on first
    use and keeps it in the package's namespace, so later look-ups skip the function."""

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home[name]), name)
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__
