"""Compare runs side by side: privacy spent, accuracy kept, membership leakage measured.

:func:`compare_runs` reads each run directory (:mod:`auditml.reporting.reading`), turns each run
into one :class:`ComparisonRow`, and has every registered format
(:data:`auditml.reporting.writers.WRITERS`) write into ``out_dir``::

    report.md                 the table, an explanation of each column, links to the figures
    report.html               summary, table, vector figures and glossary in one file
    comparison.json           attack, run_dirs and the rows (the fields of ComparisonRow)
    roc_overlay.png           every run's ROC curve, log-log, with the chance diagonal
    accuracy_vs_leakage.png   validation accuracy against attack AUC, one point per run

The numbers in a row are copied from the run's files, never recomputed; only the ROC curves of
the overlay are computed, from the saved scores. The report directory is built under a temporary
name and swapped in at the end, so a failure leaves an earlier report untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from auditml.reporting.columns import TABLE_HEADERS, comparison_table, table_cells
from auditml.reporting.many_runs import load_many_runs_rows, many_runs_table
from auditml.reporting.output import check_out_dir, report_directory
from auditml.reporting.reading import load_comparison_row
from auditml.reporting.rows import (
    DEFAULT_ATTACK,
    Comparison,
    ComparisonData,
    ComparisonRow,
    ReportError,
)
from auditml.reporting.writers import WRITERS

__all__ = [
    "DEFAULT_ATTACK",
    "TABLE_HEADERS",
    "Comparison",
    "ComparisonRow",
    "ReportError",
    "compare_runs",
    "comparison_table",
    "many_runs_table",
    "table_cells",
]


def _check_attack_name(attack: str) -> None:
    # The name becomes part of file names inside the run directory.
    if not attack or attack.startswith(".") or Path(attack).name != attack or "\\" in attack:
        raise ReportError(
            f"`attack` must be a plain attack name such as 'mia_threshold', got {attack!r}"
        )


def _check_distinct(paths: Sequence[Path], kind: str = "run") -> None:
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise ReportError(f"{kind} {path} is listed twice (also as {seen[resolved]})")
        seen[resolved] = path


# The task of a model audited in Python, by the call that saved it (CanaryAudit's: unknown).
_SAVED_TASKS = {"api.audit": "classification", "api.audit_language_model": "causal_lm"}


def _task(path: Path) -> str | None:
    """A run's task: a trained run's from its training record, a saved Python-API audit's from
    its ``model.json``; None when neither can be read or says (loading the run then says what
    is wrong)."""
    from auditml.errors import AuditMLError
    from auditml.run_directory import RunDirectory

    run = RunDirectory(path)
    try:
        if run.saved_manifest() is not None:
            return _SAVED_TASKS.get(run.read_audited_model().source)
        return run.read_training().task
    except AuditMLError:
        return None


def _default_attack(paths: Sequence[Path]) -> str:
    """The loss threshold for classifiers, Min-K%++ for language models (runs whose task is
    unknown do not decide); runs of both tasks have no attack in common, and are refused."""
    from auditml.attacks import DEFAULT_TEXT_ATTACK

    tasks = {task for task in map(_task, paths) if task is not None}
    if len(tasks) > 1:
        raise ReportError(
            "these runs hold both classifiers and language models, and no attack fits both "
            f"(classifiers default to {DEFAULT_ATTACK}, language models to "
            f"{DEFAULT_TEXT_ATTACK}): compare each kind separately, or pass --attack (`attack=` "
            "in Python) naming one that every run was audited with"
        )
    return DEFAULT_TEXT_ATTACK if tasks == {"causal_lm"} else DEFAULT_ATTACK


def compare_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, attack: str | None = None,
    dp_audits: Sequence[str | Path] = (),
) -> Comparison:
    """Compare trained and audited runs and write the report into ``out_dir``.

    Each run must have been trained (``auditml train``) and audited with ``attack``
    (``auditml audit --attack <attack>``; default ``mia_threshold``, or ``mia_text_min_k_pp``
    when the runs are language models, trained or saved from ``auditml.audit_language_model``;
    runs of both kinds need ``attack``); otherwise a :class:`RunDirectoryError` says which
    command to run. ``out_dir`` must lie outside every run, and if it exists it must be empty
    or hold an earlier comparison: the new report, once complete, replaces the files that one
    wrote and leaves any other file alone (:mod:`auditml.reporting.output`).
    Rows keep the order of ``run_dirs``. ``dp_audits`` are ``auditml audit-dp`` result files,
    shown in a table of their own (:mod:`auditml.reporting.many_runs`).
    """
    if isinstance(run_dirs, str | Path):
        raise TypeError(
            "`run_dirs` must be a sequence of run directories, got a single path; wrap it in a list"
        )
    paths = [Path(run_dir) for run_dir in run_dirs]
    if not paths:
        raise ReportError("compare_runs needs at least one run directory, got none")
    out = Path(out_dir)
    attack = attack if attack is not None else _default_attack(paths)
    _check_attack_name(attack)
    _check_distinct(paths)
    check_out_dir(out, paths, kind="comparison")
    if isinstance(dp_audits, str | Path):
        raise TypeError("`dp_audits` must be a sequence of audit-dp result files")
    audit_files = [Path(path) for path in dp_audits]
    _check_distinct(audit_files, "audit-dp result")
    audits = load_many_runs_rows(audit_files)
    loaded = [load_comparison_row(path, attack) for path in paths]
    comparison = Comparison(
        attack=attack, run_dirs=paths, rows=[row for row, _ in loaded], out_dir=out,
        dp_audits=audits,
    )
    data = ComparisonData(comparison, [curve for _, curve in loaded])
    with report_directory(out, kind="comparison") as staging:
        for name in WRITERS.available():
            WRITERS.get(name)(staging, data)
    return comparison
