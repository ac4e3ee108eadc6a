"""Decoded datasets kept as ``.npy`` files, so a later command skips decoding them.

Decompressing and parsing MNIST's IDX files, or importing scikit-learn to read its digits, costs
more than an ``audit`` of a small run does. The decoded arrays are saved once as ``.npy`` and
loaded from there afterwards, each checked before it is used:

* the file name carries a key hashed from every source file's path, size and modification time
  (and the cache's format version), so a replaced or touched source is decoded afresh and the
  stale files are deleted;
* a file that cannot be read, is truncated or is not a ``.npy`` fails ``np.load``; one whose
  shape or dtype is not what the dataset's own check accepts is not used. Either way the arrays
  are decoded from the sources again and the cache is rewritten.

Files go next to the sources when that directory is writable (``prefer_source_dir``), else to
the user's cache directory (``$AUDITML_CACHE_DIR``, else ``$XDG_CACHE_HOME/auditml``, else
``~/.cache/auditml``); if neither can be written, the arrays are simply not cached. Writes are
atomic, so a killed process never leaves a half-written file under the final name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from auditml.fileio import atomic_path

Arrays = dict[str, np.ndarray]
# Bump when what is cached changes meaning (normalisation, layout), so old files are not used.
FORMAT_VERSION = 1


def user_cache_dir() -> Path:
    """Where caches go when the sources' directory is not writable."""
    explicit = os.environ.get("AUDITML_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "auditml"


def cache_key(sources: Sequence[Path], label: str) -> str:
    """16 hex digits naming the sources' current state: path, size and mtime of each."""
    digest = hashlib.sha256(f"auditml-decoded-v{FORMAT_VERSION}|{label}".encode())
    for source in sources:
        status = Path(source).stat()
        digest.update(f"|{Path(source).resolve()}|{status.st_size}|{status.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached_arrays(
    sources: Sequence[Path],
    label: str,
    decode: Callable[[], Arrays],
    accept: Callable[[Arrays], bool],
    *,
    prefer_source_dir: bool = True,
) -> Arrays:
    """The arrays ``decode()`` makes from ``sources``, from the cache when it holds valid ones.

    ``label`` names the entry (one per dataset split, e.g. ``mnist-train``); ``accept`` says
    whether loaded arrays have the shapes and dtypes ``decode`` gives (it must not raise).
    """
    try:
        key = cache_key(sources, label)
    except OSError:  # a source vanished or cannot be read: let decode() report it
        return decode()
    directories = [user_cache_dir()]
    if prefer_source_dir:
        directories.insert(0, Path(sources[0]).parent)
    for directory in directories:
        found = _read(directory, label, key)
        if found is not None and accept(found):
            return found
    arrays = decode()
    for directory in directories:
        if _writable(directory) and _write(directory, label, key, arrays):
            break
    return arrays


def cached_by_content(
    key: str, label: str, compute: Callable[[], Arrays], accept: Callable[[Arrays], bool],
    *, keep: int = 4,
) -> Arrays:
    """The arrays ``compute()`` makes, kept in the user's cache directory under ``key``.

    For derived arrays with no source files to key on (features of images in memory): ``key``
    must name everything they depend on (e.g. a hash of the inputs and settings). Loaded arrays
    are checked with ``accept`` as in :func:`cached_arrays`. The ``keep`` entries of ``label``
    written last are kept (a dataset's training and test splits, a few datasets), older ones
    deleted.
    """
    directory = user_cache_dir()
    found = _read(directory, label, key)
    if found is not None and accept(found):
        return found
    arrays = compute()
    if _writable(directory) and _write(directory, label, key, arrays, prune=False):
        _keep_newest(directory, label, keep)
    return arrays


def _keep_newest(directory: Path, label: str, keep: int) -> None:
    """Delete the files of all but the ``keep`` newest keys of ``label``."""
    newest: dict[str, float] = {}
    files = list(directory.glob(f"{label}.decoded-*.npy"))
    for path in files:
        key = path.name.removeprefix(f"{label}.decoded-").split(".", 1)[0]
        try:
            newest[key] = max(newest.get(key, 0.0), path.stat().st_mtime)
        except OSError:
            continue
    stale = set(sorted(newest, key=newest.__getitem__, reverse=True)[keep:])
    for path in files:
        if path.name.removeprefix(f"{label}.decoded-").split(".", 1)[0] in stale:
            path.unlink(missing_ok=True)


def _path(directory: Path, label: str, key: str, name: str) -> Path:
    return directory / f"{label}.decoded-{key}.{name}.npy"


def _read(directory: Path, label: str, key: str) -> Arrays | None:
    """The arrays cached under ``key`` in ``directory``, or None if missing or unreadable."""
    names = sorted(
        path.name.removesuffix(".npy").rsplit(".", 1)[-1]
        for path in directory.glob(f"{label}.decoded-{key}.*.npy")
    )
    if not names:
        return None
    arrays = {}
    for name in names:
        try:
            arrays[name] = np.load(_path(directory, label, key, name), allow_pickle=False)
        except (OSError, ValueError, EOFError):  # unreadable, truncated or not a .npy file
            return None
    return arrays


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def _write(
    directory: Path, label: str, key: str, arrays: Mapping[str, np.ndarray], *, prune: bool = True
) -> bool:
    """Save ``arrays`` under ``key`` and (``prune``) delete this label's stale files; False if
    it failed."""
    try:
        for stale in directory.glob(f"{label}.decoded-*.npy") if prune else ():
            if not stale.name.startswith(f"{label}.decoded-{key}."):
                stale.unlink(missing_ok=True)
        for name, array in arrays.items():
            with atomic_path(_path(directory, label, key, name)) as tmp, tmp.open("wb") as file:
                np.save(file, np.ascontiguousarray(array), allow_pickle=False)
    except OSError:
        return False
    return True
