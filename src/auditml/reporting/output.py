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
Reports written before the list existed are recognised when the directory holds nothing but
the files such a report wrote and its marker file is JSON.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from auditml.fileio import check_writable, sha256_of_file, staged_directory, write_json
from auditml.reporting.rows import ReportError

OWNERSHIP_FILE = ".auditml-report.json"
ReportKind = Literal["run_report", "comparison"]
# What reports wrote before the list existed: their marker file first.
_LEGACY_FILES: dict[str, tuple[str, ...]] = {
    "run_report": ("run_report.json", "report.html"),
    "comparison": ("comparison.json", "report.html", "report.md", "roc_overlay.png",
                   "accuracy_vs_leakage.png"),
}


class ReportFiles(BaseModel):
    """``.auditml-report.json``: which files of the directory a report of ``kind`` wrote, each
    with the SHA-256 digests it may have (two while a new report is being installed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ReportKind
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
        legacy = _LEGACY_FILES[kind]
        if set(present) <= set(legacy) and legacy[0] in present and _is_json(out_dir / legacy[0]):
            return ReportFiles(kind=kind, files={name: [sha256_of_file(out_dir / name)]
                                                 for name in present})
        shown = ", ".join(present[:5]) + (" …" if len(present) > 5 else "")
        raise ReportError(
            f"out_dir {out_dir} is not empty and holds no earlier report of auditml's (it holds "
            f"{shown}); auditml writes only into a new or empty directory or over its own "
            "report: choose another out_dir"
        )
    try:
        files = ReportFiles.model_validate_json(listed.read_bytes())
    except (OSError, ValidationError, ValueError) as error:
        reason = " ".join(str(error).split())[:160]
        raise ReportError(f"out_dir {out_dir}: its {OWNERSHIP_FILE} is unreadable ({reason}); "
                          "choose another out_dir") from None
    if files.kind != kind:
        raise ReportError(f"out_dir {out_dir} holds a {files.kind.replace('_', ' ')}, not a "
                          f"{kind.replace('_', ' ')}: choose another out_dir")
    changed = [name for name, digests in files.files.items()
               if (out_dir / name).is_file() and sha256_of_file(out_dir / name) not in digests]
    if changed:
        raise ReportError(
            f"out_dir {out_dir}: {', '.join(changed)} changed since auditml wrote it; a new "
            "report would replace it: move it away or choose another out_dir"
        )
    return files


def _is_json(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError, RecursionError):
        return False


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


def _listing(kind: ReportKind, files: dict[str, list[str]]) -> dict[str, object]:
    return ReportFiles(kind=kind, files=dict(sorted(files.items()))).model_dump()
