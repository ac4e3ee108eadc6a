"""Name -> object registries for datasets, models and attacks.

Each registry is filled by explicit ``register`` lines in its package's ``__init__``; adding an
entry is one new module plus one line there. Unknown names fail with the registry's own list.
``register_lazy`` names the entry's module instead of importing it, so listing and checking names
(a config, an audit plan) never imports what the entries need (torch, for models and attacks):
the module is imported the first time the entry is fetched.
"""

from __future__ import annotations

import difflib
from importlib import import_module
from typing import Generic, TypeVar, cast

from auditml.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from names to entries of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._lazy: dict[str, tuple[str, str]] = {}

    def register(self, name: str, entry: T) -> T:
        self._check_new(name)
        self._entries[name] = entry
        return entry

    def register_lazy(self, name: str, module: str, attribute: str) -> None:
        """Register ``module.attribute`` under ``name`` without importing ``module`` yet."""
        self._check_new(name)
        self._lazy[name] = (module, attribute)

    def get(self, name: str) -> T:
        if name in self._lazy and name not in self._entries:
            module, attribute = self._lazy[name]
            self._entries[name] = cast(T, getattr(import_module(module), attribute))
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def _check_new(self, name: str) -> None:
        if name in self._entries or name in self._lazy:
            raise ValueError(f"{self.kind} {name!r} is already registered")

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.available(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (
            f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self.available())}"
        )

    def available(self) -> list[str]:
        return sorted({*self._entries, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy
