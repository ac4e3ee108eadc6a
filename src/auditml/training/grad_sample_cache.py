"""Where ``grad_sample_mode: auto`` remembers which mode it measured fastest, and for what.

The choice is a fact about this machine and this software, not about a run: it is measured
per :class:`ModeKey` (device, architecture, input shape, batch size, library versions) and kept
in a small JSON file, by default ``$XDG_CACHE_HOME/auditml/grad_sample_modes.json`` (``~/.cache``
without XDG_CACHE_HOME); ``AUDITML_GRAD_SAMPLE_MODE_CACHE`` names another file. The file is only
ever an optimisation: one that is missing, unreadable, corrupt or unwritable is measured around,
never an error, and an entry that names no known mode is measured again.

A cached choice is not kept for good: an entry older than :data:`MAX_AGE_DAYS` is measured again
(machines, drivers and loads change), and so is one a run contradicted
(:meth:`ModeCache.forget`). Files of format 1 (before 2026-12) hold choices measured once, on
one step, whatever the machine's load was: they are measured again, and rewritten. ``auditml
mode-cache`` prints the file; ``auditml mode-cache --clear`` removes it.

File format::

    {"format": 2,
     "choices": {"<key>": {"mode": "hooks", "step_seconds": {"fast": 0.012, ...},
                           "rounds": 3, "measured_at": 1796601600.0}}}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auditml.fileio import write_json
from auditml.version import __version__

CACHE_ENVIRONMENT_VARIABLE = "AUDITML_GRAD_SAMPLE_MODE_CACHE"
CACHE_FORMAT = 2
# A cached choice older than this is measured again.
MAX_AGE_DAYS = 30.0
# The modes a measurement can choose among; auto is not one of them.
CONCRETE_MODES = ("fast", "hooks", "ghost")


@dataclass(frozen=True)
class ModeKey:
    """What the fastest mode depends on. Two runs with equal keys get the same choice."""

    device: str
    architecture: str
    input_shape: tuple[int, ...]
    batch_size: int
    software: str

    def text(self) -> str:
        """The key as one stable line, as stored in the cache file."""
        shape = "x".join(str(size) for size in self.input_shape)
        return (f"{self.device} | {self.architecture} | input {shape} | batch {self.batch_size} "
                f"| {self.software}")


def mode_key(
    model: nn.Module, *, arch: str, input_shape: tuple[int, ...], batch_size: int,
    device: torch.device,
) -> ModeKey:
    """The key of training ``model`` (registered as ``arch``) on ``device``."""
    return ModeKey(
        device=device_description(device), architecture=f"{arch}#{architecture_digest(model)}",
        input_shape=tuple(input_shape), batch_size=batch_size,
        software=f"torch {torch.__version__}, opacus {version('opacus')}, auditml {__version__}",
    )


def device_description(device: torch.device) -> str:
    """The device's kind and model: a choice measured on one GPU model says nothing of another.

    On a CPU the thread count is part of it, since it decides whether the fast path's extra
    kernels run in parallel.
    """
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        processor = platform.processor() or platform.machine()
        return f"cpu {processor}, {torch.get_num_threads()} threads"
    return device.type


def architecture_digest(model: nn.Module) -> str:
    """A short hash of the model's layers and which parameters train.

    The registered name alone is not enough: ``fix_model`` swaps layers, and a frozen layer
    changes which parameters are clipped.
    """
    parameters = [(name, tuple(p.shape), p.requires_grad) for name, p in model.named_parameters()]
    described = f"{model!r}\n{parameters!r}"
    return hashlib.sha256(described.encode()).hexdigest()[:12]


def default_cache_path() -> Path:
    override = os.environ.get(CACHE_ENVIRONMENT_VARIABLE)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "auditml" / "grad_sample_modes.json"


@dataclass(frozen=True)
class CachedChoice:
    """A measured choice: the mode, each mode's median step seconds, how many timed rounds
    decided it and when (Unix seconds)."""

    mode: str
    step_seconds: Mapping[str, float]
    rounds: int = 0
    measured_at: float = 0.0

    def age_days(self, now: float | None = None) -> float:
        return ((time.time() if now is None else now) - self.measured_at) / 86400.0


# Choices that could not be written, by (cache file, key): kept for this process so that the
# 64 reference models of one audit measure once even when the cache file is read-only.
_UNSAVED: dict[tuple[str, str], CachedChoice] = {}


class ModeCache:
    """The cache file at ``path`` (default :func:`default_cache_path`), read and written whole.

    ``problem`` says why the last read or write did not work (None when it did), so that the
    caller can tell the user once; nothing here raises for a bad file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.problem: str | None = None

    def get(self, key: ModeKey, *, now: float | None = None) -> CachedChoice | None:
        """The choice cached for ``key``; None when there is none, or it is older than
        :data:`MAX_AGE_DAYS` (measured in the future counts as old: a clock was reset)."""
        choice = _choice(self._read().get(key.text()))
        if choice is None:
            return _UNSAVED.get((str(self.path), key.text()))
        if not 0 <= choice.age_days(now) <= MAX_AGE_DAYS:
            return None
        return choice

    def entries(self) -> dict[str, CachedChoice]:
        """Every readable entry, by key text (expired ones included)."""
        return {text: choice for text, entry in self._read().items()
                if (choice := _choice(entry)) is not None}

    def forget(self, key: ModeKey) -> bool:
        """Remove ``key``'s entry (a run contradicted it): the next run measures again."""
        _UNSAVED.pop((str(self.path), key.text()), None)
        choices = self._read()
        if choices.pop(key.text(), None) is None:
            return False
        return self._write(choices)

    def clear(self) -> bool:
        """Remove the cache file; False when there is none. A file that is not a mode cache
        (the environment variable may name any file) is refused, not removed."""
        if not self.path.exists():
            return False
        if not _is_mode_cache(self.path):
            raise OSError(f"{self.path} is not an auditml mode cache; it was left untouched")
        self.path.unlink()
        for unsaved in [k for k in _UNSAVED if k[0] == str(self.path)]:
            del _UNSAVED[unsaved]
        return True

    def put(self, key: ModeKey, choice: CachedChoice) -> bool:
        """Record ``choice``; False (and :attr:`problem` set) when the file cannot be written.

        Read, update, replace atomically: a concurrent writer can at worst drop another key's
        entry, which is then measured again, never leave a half-written file.
        """
        choices = self._read()
        choices[key.text()] = {"mode": choice.mode, "step_seconds": dict(choice.step_seconds),
                               "rounds": choice.rounds, "measured_at": choice.measured_at}
        if not self._write(choices):
            _UNSAVED[(str(self.path), key.text())] = choice
            return False
        return True

    def _write(self, choices: dict[str, Any]) -> bool:
        try:
            write_json(self.path, {"format": CACHE_FORMAT, "choices": choices})
        except OSError as error:
            self.problem = f"cannot write {self.path} ({error.strerror or error})"
            return False
        return True

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            self.problem = f"cannot read {self.path} ({error})"
            return {}
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            self.problem = f"{self.path} is not JSON; it will be rewritten"
            return {}
        if (isinstance(payload, dict) and payload.get("format") == 1
                and isinstance(payload.get("choices"), dict)):
            # Format 1 kept single-step measurements taken under any load: measured again.
            self.problem = (f"{self.path} holds choices of an earlier auditml, each measured "
                            "on one step; they are measured again")
            return {}
        if (not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT
                or not isinstance(payload.get("choices"), dict)):
            self.problem = f"{self.path} is not a format-{CACHE_FORMAT} mode cache; rewritten"
            return {}
        return dict(payload["choices"])


def _choice(entry: object) -> CachedChoice | None:
    """A cache entry as a :class:`CachedChoice`; None for one that names no known mode."""
    if not isinstance(entry, dict) or entry.get("mode") not in CONCRETE_MODES:
        return None
    seconds = entry.get("step_seconds")
    if not isinstance(seconds, dict):
        seconds = {}
    rounds, measured_at = entry.get("rounds"), entry.get("measured_at")
    return CachedChoice(
        entry["mode"],
        {mode: float(value) for mode, value in seconds.items()
         if mode in CONCRETE_MODES and _number(value)},
        rounds=rounds if isinstance(rounds, int) and not isinstance(rounds, bool) else 0,
        measured_at=float(measured_at) if _number(measured_at) else 0.0,
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_mode_cache(path: Path) -> bool:
    """Whether ``path`` holds a mode cache of any format auditml wrote."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(payload, dict) and payload.get("format") in (1, CACHE_FORMAT)
            and isinstance(payload.get("choices"), dict) and set(payload) <= {"format", "choices"})
