"""Atomic file writes: a reader never sees a half-written file, a failure never clobbers one.

Also the one reader of the ``.npz`` arrays a run writes (never unpickled; any fault is one
error line).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from auditml.errors import RunDirectoryError

T = TypeVar("T")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp (and some writers, e.g. safetensors) make the file 0600 whatever the umask;
        # a result file is as readable as any file the user creates.
        tmp.chmod(0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work, a destination ``path`` (a file or directory to be created or
    replaced, through a temporary sibling) that cannot be written: the nearest existing
    ancestor of its parent, and the directory itself if it exists, must take a new file (one is
    created there, then removed). A read-only mount, ``/proc`` or a path through a file end in
    one :class:`RunDirectoryError` naming ``what``, not a traceback after the work."""
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunDirectoryError(f"{what} {path} cannot be created: {ancestor} is not a "
                                "directory; choose another path")
    for directory in ([ancestor, path] if path.is_dir() else [ancestor]):
        try:
            fd, probe = tempfile.mkstemp(prefix=".auditml-write-check.", dir=directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as error:
            raise RunDirectoryError(
                f"{what} {path} cannot be written ({error.strerror or error} in {directory}); "
                "choose a writable path"
            ) from None


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting; restored on the next line
    os.umask(mask)
    return mask


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: Path, payload: Any) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


@contextmanager
def staged_directory(
    final: Path, install: Callable[[Path, Path], None] | None = None, *,
    check_old: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """Build a directory under a temporary name and put it in place when the block succeeds.

    By default ``final`` is swapped in whole: if it already exists it is replaced only after the
    new one is complete, so a failed run leaves the previous result untouched; ``check_old``
    (given the old directory once it is moved aside, just before it is deleted) may raise to
    keep it: it is put back and the new one dropped (:func:`_swap_in`). ``install``
    (``staging, final``) puts it in place another way (reports install file by file:
    :mod:`auditml.reporting.output`); whatever it leaves in the staging directory is removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".staging", dir=final.parent))
    # mkdtemp makes the directory 0700 whatever the umask; the run it becomes should not be.
    staging.chmod(0o777 & ~current_umask())
    try:
        yield staging
        if install is not None:
            install(staging, final)
        else:
            _swap_in(staging, final, check_old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _swap_in(staging: Path, final: Path, check_old: Callable[[Path], None] | None) -> None:
    """Put ``staging`` at ``final``. An existing ``final`` is first moved into a folder
    auditml has just created under a fresh name (``.<name>.<random>.old`` beside it), so the
    swap never touches a path of the user's; ``check_old`` sees it there (nothing can be added
    to it through ``final`` any more) and may raise, which puts it back untouched. Only once
    the new directory is in place is the old one deleted. A crash leaves at worst that
    folder, which no later swap uses."""
    if not final.exists() and not final.is_symlink():
        os.replace(staging, final)  # refused by the OS if something non-empty appeared there
        return
    holder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    old = holder / final.name
    try:
        os.replace(final, old)
    except BaseException:
        holder.rmdir()
        raise
    try:
        if check_old is not None:
            check_old(old)
        os.replace(staging, final)
    except BaseException:
        os.replace(old, final)
        holder.rmdir()
        raise
    # The new directory is in place: a failure to delete the old one (only ever auditml's
    # folder) leaves it behind rather than failing a finished run.
    shutil.rmtree(holder, ignore_errors=True)


def read_npz(
    path: Path, what: str, build: Callable[[Any], T], *, fix: str = "retrain the run"
) -> T:
    """``build(arrays)`` from the ``.npz`` at ``path`` (pickles refused). A missing file, a
    corrupt archive or arrays ``build`` rejects with ValueError, TypeError or KeyError become one
    :class:`RunDirectoryError` naming ``what``, the file and ``fix``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return build(data)
    except FileNotFoundError:
        raise RunDirectoryError(f"{what} missing: {path}") from None
    except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        # EOFError: numpy's word for an empty file.
        reason = " ".join(str(error).split())[:200]
        raise RunDirectoryError(f"{what} {path} is unreadable ({reason}); {fix}") from None


def npz_scalar(data: Any, key: str, kinds: str) -> Any:
    """The single value stored under ``key``, of a numpy dtype kind in ``kinds`` (e.g. "iu")."""
    value = data[key]
    if value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(f"{key} must be one value of kind {kinds!r}, got shape {value.shape} "
                         f"of {value.dtype}")
    return value[()]
