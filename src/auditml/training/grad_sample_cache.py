"""Where ``grad_sample_mode: auto`` remembers which mode it measured fastest, and for what.

The choice is a fact about this machine and this software, not about a run: it is measured once
per :class:`ModeKey` (device, architecture, input shape, batch size, library versions) and kept
in a small JSON file, by default ``$XDG_CACHE_HOME/auditml/grad_sample_modes.json`` (``~/.cache``
without XDG_CACHE_HOME); ``AUDITML_GRAD_SAMPLE_MODE_CACHE`` names another file. The file is only
ever an optimisation: one that is missing, unreadable, corrupt or unwritable is measured around,
never an error, and an entry that names no known mode is measured again.

File format::

    {"format": 1,
     "choices": {"<key>": {"mode": "hooks", "step_seconds": {"fast": 0.012, ...}}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
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
CACHE_FORMAT = 1
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
    mode: str
    step_seconds: Mapping[str, float]


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

    def get(self, key: ModeKey) -> CachedChoice | None:
        entry = self._read().get(key.text())
        if not isinstance(entry, dict) or entry.get("mode") not in CONCRETE_MODES:
            return _UNSAVED.get((str(self.path), key.text()))
        seconds = entry.get("step_seconds")
        if not isinstance(seconds, dict):
            seconds = {}
        return CachedChoice(entry["mode"], {
            mode: float(value) for mode, value in seconds.items()
            if mode in CONCRETE_MODES and isinstance(value, int | float)
        })

    def put(self, key: ModeKey, choice: CachedChoice) -> bool:
        """Record ``choice``; False (and :attr:`problem` set) when the file cannot be written.

        Read, update, replace atomically: a concurrent writer can at worst drop another key's
        entry, which is then measured again, never leave a half-written file.
        """
        choices = self._read()
        choices[key.text()] = {"mode": choice.mode, "step_seconds": dict(choice.step_seconds)}
        try:
            write_json(self.path, {"format": CACHE_FORMAT, "choices": choices})
        except OSError as error:
            self.problem = f"cannot write {self.path} ({error.strerror or error})"
            _UNSAVED[(str(self.path), key.text())] = choice
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
        if (not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT
                or not isinstance(payload.get("choices"), dict)):
            self.problem = f"{self.path} is not a format-{CACHE_FORMAT} mode cache; rewritten"
            return {}
        return dict(payload["choices"])
