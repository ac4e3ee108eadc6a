"""Where a report may be written, and how it is put there without touching anything else.

A report directory (``auditml report --out``, ``auditml compare --out``) is auditml's only where
auditml wrote it: every file a report writes is listed, with its SHA-256, in
``.auditml-report.json`` (:class:`ReportFiles`). A new report is built under a temporary name
and then installed file by file: it replaces the files an earlier report wrote (verified by
their hashes) and leaves every other file where it is. It refuses, before any work:

- a directory that is, holds or lies inside a run;
- a directory that holds files but no report of auditml's (no list, or a list of another
  kind: a run report is not a comparison) — a file merely *named* like a report's proves
  nothing;
- a report file the user changed since auditml wrote it (its hash differs).

At the end it refuses a new report file whose name a user's file already has. Installing keeps
a list that covers every file auditml wrote at every moment (the old and the new hashes until
the last step), so an interruption leaves a directory the next report still recognises.
A directory without the list is never taken for a report: its files are the user's, whatever
their names and content (a report of an auditml older than the list must be removed by hand).

``auditml sweep`` and ``auditml demo`` write a few files of their own into a directory that also
holds other things (run directories, a report, the user's files): they keep the same list
(kinds ``sweep`` and ``demo``) but own only the files it names. :func:`check_owned_files`
refuses, before any work, a file they would write that is not listed or changed since they wrote
it; :func:`install_owned_files` writes them, each replaced atomically, under the same list.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from auditml.fileio import (
    check_writable,
    sha256_of_file,
    staged_directory,
    write_bytes,
    write_json,
)
from auditml.reporting.rows import ReportError

OWNERSHIP_FILE = ".auditml-report.json"
ReportKind = Literal["run_report", "comparison"]
# Commands that own only the files they list in a directory holding other things too.
OwnedKind = Literal["sweep", "demo"]
# The files ``kind`` owns in ``directory`` that it wrote before the list existed, by name, with
# their digests (recognised by their content or by a marker file that only ``kind`` writes).
LegacyFiles = Callable[[Path], dict[str, list[str]]]


class ReportFiles(BaseModel):
    """``.auditml-report.json``: which files of the directory a report of ``kind`` wrote, each
    with the SHA-256 digests it may have (two while a new report is being installed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ReportKind | OwnedKind
    files: dict[str, list[str]]


def check_out_dir(out_dir: Path, run_dirs: Sequence[Path], *, kind: ReportKind) -> None:
    """Refuse ``out_dir`` unless it is new, empty, or holds an earlier report of ``kind`` whose
    files are as auditml wrote them (module docstring)."""
    target = out_dir.resolve()
    for run_dir in run_dirs:
        run = run_dir.resolve()
        if target == run or run in target.parents:
            raise ReportError(
                f"out_dir {out_dir} is inside run {run_dir}: the report would be mixed into the "
                "run's files; choose a directory outside every run, e.g. results/comparison"
            )
        if target in run.parents:
            raise ReportError(
                f"out_dir {out_dir} contains run {run_dir}: a report there would sit among the "
                "run's files; choose a directory that holds no run"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"out_dir {out_dir} exists and is not a directory")
    _earlier_report(out_dir, kind)
    check_writable(out_dir, "out_dir")


def _files(directory: Path) -> list[str]:
    """Every file below ``directory``, as paths relative to it (POSIX form)."""
    return sorted(path.relative_to(directory).as_posix() for path in directory.rglob("*")
                  if path.is_file() or path.is_symlink())


def _earlier_report(out_dir: Path, kind: ReportKind) -> ReportFiles | None:
    """The list of the earlier report in ``out_dir`` (None for a new or empty directory), or a
    :class:`ReportError` saying why the directory is not one auditml may write into."""
    if not out_dir.is_dir():
        return None
    present = _files(out_dir)
    if not present:
        return None
    listed = out_dir / OWNERSHIP_FILE
    if not listed.is_file():
        # No list, no report of auditml's: a JSON file named like a report's proves nothing.
        shown = ", ".join(present[:5]) + (" …" if len(present) > 5 else "")
        raise ReportError(
            f"out_dir {out_dir} is not empty and holds no earlier report of auditml's (it holds "
            f"{shown}, and no {OWNERSHIP_FILE}); auditml writes only into a new or empty "
            "directory or over its own report: choose another out_dir (a report of an older "
            "auditml, which kept no list, is removed by hand)"
        )
    files = _read_listing(out_dir, kind, "out_dir")
    changed = [name for name, digests in files.files.items()
               if (out_dir / name).is_file() and sha256_of_file(out_dir / name) not in digests]
    if changed:
        raise ReportError(
            f"out_dir {out_dir}: {', '.join(changed)} changed since auditml wrote it; a new "
            "report would replace it: move it away or choose another out_dir"
        )
    return files


def _read_listing(directory: Path, kind: ReportKind | OwnedKind, what: str) -> ReportFiles:
    """``directory``'s list, which must be one of ``kind``."""
    try:
        files = ReportFiles.model_validate_json((directory / OWNERSHIP_FILE).read_bytes())
    except (OSError, ValidationError, ValueError) as error:
        reason = " ".join(str(error).split())[:160]
        raise ReportError(f"{what} {directory}: its {OWNERSHIP_FILE} is unreadable ({reason}); "
                          f"choose another {what}") from None
    if files.kind != kind:
        raise ReportError(f"{what} {directory} holds a {files.kind.replace('_', ' ')}, not a "
                          f"{kind.replace('_', ' ')}: choose another {what}")
    return files


@contextmanager
def report_directory(out_dir: Path, *, kind: ReportKind) -> Iterator[Path]:
    """Build a report under a temporary name next to ``out_dir``; when the block succeeds,
    install it (module docstring). A failure leaves ``out_dir`` as it was."""
    with staged_directory(Path(out_dir), functools.partial(_install, kind=kind)) as staging:
        yield staging


def _install(staging: Path, final: Path, kind: ReportKind) -> None:
    new = {name: sha256_of_file(staging / name) for name in _files(staging)}
    if not final.exists():
        write_json(staging / OWNERSHIP_FILE, _listing(kind, {n: [d] for n, d in new.items()}))
        os.replace(staging, final)
        return
    old = _earlier_report(final, kind)
    old_files = old.files if old is not None else {}
    users = {name for name in _files(final) if name not in old_files and name != OWNERSHIP_FILE}
    clash = sorted(users & set(new))
    if clash:
        raise ReportError(f"out_dir {final}: {', '.join(clash)} is not auditml's and the report "
                          "would replace it: move it away or choose another out_dir")
    # While files move, the list covers the old and the new ones alike.
    merged = {name: sorted(set(old_files.get(name, [])) | ({new[name]} if name in new else set()))
              for name in set(old_files) | set(new)}
    write_json(final / OWNERSHIP_FILE, _listing(kind, merged))
    for name in new:
        (final / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, final / name)
    for name, digests in old_files.items():
        stale = final / name
        if name not in new and stale.is_file() and sha256_of_file(stale) in digests:
            stale.unlink()
    write_json(final / OWNERSHIP_FILE, _listing(kind, {n: [d] for n, d in new.items()}))


def _listing(kind: ReportKind | OwnedKind, files: dict[str, list[str]]) -> dict[str, object]:
    return ReportFiles(kind=kind, files=dict(sorted(files.items()))).model_dump()


def check_owned_files(
    directory: Path, names: Sequence[str], *, kind: OwnedKind, what: str,
    legacy: LegacyFiles | None = None,
) -> dict[str, list[str]]:
    """The files an earlier ``kind`` wrote in ``directory`` (by name, with their digests), after
    checking that each of ``names`` there is absent or one of them, unchanged; otherwise a
    :class:`ReportError` naming the file and the fix (``what`` names the option that chose
    ``directory``, e.g. ``--out``). Every other file of the directory is left alone."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ReportError(f"{what} {directory} exists and is not a directory; choose another "
                          f"{what}")
    if (directory / OWNERSHIP_FILE).is_file():
        owned = _read_listing(directory, kind, what).files
    else:
        owned = legacy(directory) if legacy is not None and directory.is_dir() else {}
    for name in names:
        path = directory / name
        if not (path.exists() or path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_file() or name not in owned:
            raise ReportError(
                f"{what} {directory}: {name} is not a file an earlier auditml {kind} wrote there, "
                f"and the {kind} would replace it: move it away or choose another {what}"
            )
        if sha256_of_file(path) not in owned[name]:
            raise ReportError(
                f"{what} {directory}: {name} changed since auditml {kind} wrote it, and the "
                f"{kind} would replace it: move it away or choose another {what}"
            )
    check_writable(directory, what)
    return owned


def install_owned_files(
    directory: Path, contents: Mapping[str, bytes], *, kind: OwnedKind, what: str,
    legacy: LegacyFiles | None = None,
) -> None:
    """Write ``contents`` (file name -> bytes) into ``directory``, each file replaced atomically,
    after :func:`check_owned_files`; the list names every file ``kind`` wrote there. While files
    are written it holds their old and new digests, so an interruption leaves a directory the
    next ``kind`` still recognises."""
    directory = Path(directory)
    owned = check_owned_files(directory, list(contents), kind=kind, what=what, legacy=legacy)
    new = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    # Files written earlier and not now stay listed while they are as written.
    kept = {name: digests for name, digests in owned.items() if name not in new
            and (directory / name).is_file() and sha256_of_file(directory / name) in digests}
    merged = {**kept, **{name: sorted({*owned.get(name, []), digest})
                         for name, digest in new.items()}}
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / OWNERSHIP_FILE, _listing(kind, merged))
    for name, data in contents.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(directory / name, data)
    write_json(directory / OWNERSHIP_FILE,
               _listing(kind, {**kept, **{name: [digest] for name, digest in new.items()}}))
