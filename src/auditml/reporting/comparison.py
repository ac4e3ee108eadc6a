"""Compare runs side by side: privacy spent, accuracy kept, membership leakage measured.

:func:`compare_runs` reads each run directory (``metrics.json`` and ``audit/<attack>.json``
through :class:`~auditml.run_directory.RunDirectory`), turns each run into one
:class:`ComparisonRow`, and writes the report into ``out_dir``::

    report.md                 the table, an explanation of each column, links to the figures
    report.html               the same, self-contained (figures inlined as data: URIs)
    comparison.json           attack, run_dirs and the rows (the fields of ComparisonRow)
    roc_overlay.png           every run's ROC curve, log-log, with the chance diagonal
    accuracy_vs_leakage.png   validation accuracy against attack AUC, one point per run

The numbers in a row are copied from the run's files, never recomputed; only the ROC curves of
the overlay are computed, from the saved scores. The report directory is built under a temporary
name and swapped in at the end, so a failure leaves an earlier report untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from auditml.errors import AuditMLError, RunDirectoryError
from auditml.fileio import staged_directory, write_bytes, write_json, write_text
from auditml.formatting import format_delta, format_epsilon
from auditml.metrics import MembershipMetrics, MetricsInputError, RocCurve, roc_curve
from auditml.reporting.html import InlineImage, render_html
from auditml.reporting.plots import (
    LeakagePoint,
    RocSeries,
    accuracy_vs_leakage_figure,
    png_bytes,
    roc_overlay_figure,
)
from auditml.run_directory import CONFIG_FILE, METRICS_FILE, RunDirectory

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
COMPARISON_JSON = "comparison.json"
ROC_OVERLAY_PNG = "roc_overlay.png"
ACCURACY_VS_LEAKAGE_PNG = "accuracy_vs_leakage.png"

DEFAULT_ATTACK = "mia_threshold"
# The FPR target of the audit's ``metrics.tpr_at_fpr`` that the TPR@1%FPR column shows.
_ONE_PERCENT_FPR = 0.01


class ReportError(AuditMLError):
    """A comparison report cannot be written where or how it was asked."""


@dataclass(frozen=True)
class ComparisonRow:
    """One run in the comparison; every number is copied from the run's files.

    ``epsilon`` is the ε the accountant says training spent (``None`` without DP), ``delta`` the
    run's δ as recorded in ``metrics.json``, ``auc`` and ``tpr_at_1pct_fpr`` the attack's AUC and
    its TPR at 1% FPR from ``audit/<attack>.json``.
    """

    label: str
    run_name: str
    run_dir: str
    dp_enabled: bool
    epsilon: float | None
    delta: float | None
    val_acc: float
    auc: float
    tpr_at_1pct_fpr: float
    # The run's strongest audit by TPR at 1% FPR (then AUC), among every attack it was audited
    # with; the compared attack itself when it is the only one.
    strongest_attack: str
    strongest_auc: float
    strongest_tpr_at_1pct_fpr: float
    # The compared attack's statistically valid ε lower bound (None for audits made before
    # bounds were recorded); a DP run whose bound exceeds its accountant ε is a violation.
    epsilon_lower_bound: float | None = None

    @property
    def violation(self) -> bool:
        return (
            self.dp_enabled
            and self.epsilon is not None
            and self.epsilon_lower_bound is not None
            and self.epsilon_lower_bound > self.epsilon
        )


@dataclass(frozen=True)
class Comparison:
    """The rows of a written report, in the order the runs were given, and where it lives."""

    attack: str
    run_dirs: list[Path]
    rows: list[ComparisonRow]
    out_dir: Path

    @property
    def report_md(self) -> Path:
        return self.out_dir / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.out_dir / REPORT_HTML

    @property
    def comparison_json(self) -> Path:
        return self.out_dir / COMPARISON_JSON

    @property
    def roc_overlay_png(self) -> Path:
        return self.out_dir / ROC_OVERLAY_PNG

    @property
    def accuracy_vs_leakage_png(self) -> Path:
        return self.out_dir / ACCURACY_VS_LEAKAGE_PNG

    def to_json(self) -> dict[str, Any]:
        """The content of ``comparison.json``."""
        return {
            "attack": self.attack,
            "run_dirs": [str(path) for path in self.run_dirs],
            "rows": [{**asdict(row), "violation": row.violation} for row in self.rows],
        }


# -- the table, shared by report.md, report.html and the CLI ----------------------------------


def _format_epsilon(row: ComparisonRow) -> str:
    # Without DP there is no finite guarantee, whatever metrics.json holds under "epsilon".
    return format_epsilon(row.epsilon if row.dp_enabled else None)


def _format_delta(row: ComparisonRow) -> str:
    return format_delta(row.delta if row.dp_enabled else None)


@dataclass(frozen=True)
class _Column:
    header: str
    numeric: bool
    explanation: str
    cell: Callable[[ComparisonRow], str]


_COLUMNS: tuple[_Column, ...] = (
    _Column(
        "Model",
        False,
        "how the model was trained: “No DP” for plain training, “ε=…” for DP-SGD calibrated "
        "to that target ε, “σ=…” for DP-SGD with that noise multiplier set directly.",
        lambda row: row.label,
    ),
    _Column("Run", False, "the run's experiment name.", lambda row: row.run_name),
    _Column(
        "ε (accountant)",
        True,
        "the privacy budget training actually spent, from the privacy accountant; smaller is "
        "a stronger guarantee. ∞ means no differential-privacy guarantee (trained without DP).",
        _format_epsilon,
    ),
    _Column(
        "δ",
        True,
        "the probability with which the ε guarantee may fail; it should be well below "
        "1/(training-set size). — for runs without DP.",
        _format_delta,
    ),
    _Column(
        "ε lower bound (audit)",
        True,
        "a lower bound on ε that holds with 95% confidence, from the attack's scores "
        "(Clopper-Pearson intervals at a threshold chosen on one half of the audited examples, "
        "bound computed on the other half). If it exceeds the accountant's ε, the training or "
        "the accounting is broken: the row is flagged VIOLATION.",
        lambda row: "—" if row.epsilon_lower_bound is None else (
            f"{row.epsilon_lower_bound:.2f}" + (" VIOLATION" if row.violation else "")
        ),
    ),
    _Column(
        "Val Acc",
        True,
        "accuracy on the held-out validation set: the utility the model keeps.",
        lambda row: f"{100 * row.val_acc:.1f}%",
    ),
    _Column(
        "MIA AUC",
        True,
        "area under the membership-inference attack's ROC curve, members vs. non-members: "
        "0.5 is guessing, 1.0 is a perfect attack. Higher means more leakage.",
        lambda row: f"{row.auc:.3f}",
    ),
    _Column(
        "TPR@1%FPR",
        True,
        "the fraction of training members the attack identifies while wrongly flagging only "
        "1% of non-members; confident identification of a few members is the leakage that "
        "matters even when the AUC is near 0.5 (Carlini et al., 2022, “Membership Inference "
        "Attacks From First Principles”).",
        lambda row: f"{row.tpr_at_1pct_fpr:.3f}",
    ),
    _Column(
        "Strongest attack",
        False,
        "of all attacks the run was audited with, the one with the highest TPR at 1% FPR "
        "(ties: higher AUC); a model can pass the loss threshold and still leak to LiRA or "
        "RMIA.",
        lambda row: row.strongest_attack,
    ),
    _Column(
        "Its AUC",
        True,
        "the strongest attack's AUC.",
        lambda row: f"{row.strongest_auc:.3f}",
    ),
    _Column(
        "Its TPR@1%FPR",
        True,
        "the strongest attack's TPR at 1% FPR.",
        lambda row: f"{row.strongest_tpr_at_1pct_fpr:.3f}",
    ),
)

TABLE_HEADERS: tuple[str, ...] = tuple(column.header for column in _COLUMNS)


def table_cells(row: ComparisonRow) -> list[str]:
    """The row as the report shows it, one string per column of :data:`TABLE_HEADERS`."""
    return [column.cell(row) for column in _COLUMNS]


def comparison_table(comparison: Comparison) -> Table:
    """The report's table as a rich Table, for the CLI to print."""
    table = Table(title=f"Membership inference ({comparison.attack}) vs. differential privacy")
    for column in _COLUMNS:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in comparison.rows:
        # Text, not str: a cell is data, never rich markup.
        table.add_row(*(Text(cell) for cell in table_cells(row)))
    return table


# -- reading runs -----------------------------------------------------------------------------


def _audit_command(run: RunDirectory, attack: str) -> str:
    return f"auditml audit --config {run.path / CONFIG_FILE} --attack {attack}"


def _model_label(
    dp_enabled: bool, target_epsilon: float | None, noise_multiplier: float | None
) -> str:
    if not dp_enabled:
        return "No DP"
    if target_epsilon is not None:
        return f"ε={target_epsilon:g}"
    if noise_multiplier is not None:
        return f"σ={noise_multiplier:g}"
    return "DP"


def _number(mapping: dict[str, Any], key: str, where: str, fix: str) -> float:
    value = mapping.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RunDirectoryError(f"{where} has no number under {key!r} (got {value!r}): {fix}")
    return float(value)


def _optional_number(mapping: dict[str, Any], key: str, where: str, fix: str) -> float | None:
    return None if mapping.get(key) is None else _number(mapping, key, where, fix)


def _same_value(recorded: Any, current: Any) -> bool:
    if isinstance(recorded, bool) or isinstance(current, bool):
        return recorded is current
    if isinstance(recorded, int | float) and isinstance(current, int | float):
        return math.isclose(recorded, current, rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(recorded) and math.isnan(current)
        )
    return bool(recorded == current)


def _check_not_stale(
    run: RunDirectory, attack: str, audit: dict[str, Any], metrics: dict[str, Any]
) -> None:
    """Refuse an audit made before the run was retrained: its AUC belongs to another model."""
    recorded = audit.get("run")
    if not isinstance(recorded, dict):
        return
    for key in ("dp_enabled", "epsilon", "val_acc"):
        if key in recorded and not _same_value(recorded[key], metrics.get(key)):
            raise RunDirectoryError(
                f"the {attack} audit of run {run.path} is stale ({key} is {recorded[key]!r} "
                f"there but {metrics.get(key)!r} in {METRICS_FILE}, so the run was retrained "
                f"after the audit): run `{_audit_command(run, attack)}` again"
            )


def _bound(audit: dict[str, Any]) -> float | None:
    bound = audit.get("epsilon_lower_bound")
    value = bound.get("epsilon") if isinstance(bound, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _load_run(run_dir: Path, attack: str) -> tuple[ComparisonRow, RocCurve]:
    run = RunDirectory(run_dir)
    config_hint = str(run.path / CONFIG_FILE) if (run.path / CONFIG_FILE).is_file() else None
    run.require_trained(config_hint)
    audit_command = _audit_command(run, attack)
    results = run.audit_results()
    if attack not in results or not run.scores_path(attack).is_file():
        raise RunDirectoryError(
            f"run {run.path} has no {attack} audit: run `{audit_command}` first"
        )
    audit = results[attack]
    metrics = run.read_metrics()
    _check_not_stale(run, attack, audit, metrics)

    metrics_where = str(run.path / METRICS_FILE)
    retrain = f"retrain with `auditml train --config {run.path / CONFIG_FILE}`"
    audit_where = str(run.audit_json_path(attack))
    reaudit = f"run `{audit_command}` again"
    try:
        attack_metrics = MembershipMetrics.from_dict(audit.get("metrics") or {})
    except MetricsInputError as error:
        raise RunDirectoryError(f"{audit_where} is corrupt ({error}): {reaudit}") from None
    if _ONE_PERCENT_FPR not in attack_metrics.tpr_at_fpr:
        raise RunDirectoryError(f"{audit_where} has no TPR at {_ONE_PERCENT_FPR:g} FPR: {reaudit}")
    dp_enabled = metrics.get("dp_enabled")
    if not isinstance(dp_enabled, bool):
        raise RunDirectoryError(
            f"{metrics_where} has no true/false under 'dp_enabled' (got {dp_enabled!r}): {retrain}"
        )
    run_name = metrics.get("experiment_name")
    if not isinstance(run_name, str):
        raise RunDirectoryError(f"{metrics_where} has no 'experiment_name': {retrain}")

    strongest, strongest_metrics = attack, attack_metrics
    for other, payload in results.items():
        if other == attack or not run.scores_path(other).is_file():
            continue
        try:
            _check_not_stale(run, other, payload, metrics)
            candidate = MembershipMetrics.from_dict(payload.get("metrics") or {})
        except (RunDirectoryError, MetricsInputError):
            continue  # a stale or unreadable audit of another attack says nothing of this model
        if _ONE_PERCENT_FPR not in candidate.tpr_at_fpr:
            continue
        key = (candidate.tpr_at_fpr[_ONE_PERCENT_FPR], candidate.auc)
        if key > (strongest_metrics.tpr_at_fpr[_ONE_PERCENT_FPR], strongest_metrics.auc):
            strongest, strongest_metrics = other, candidate

    row = ComparisonRow(
        label=_model_label(
            dp_enabled,
            _optional_number(metrics, "target_epsilon", metrics_where, retrain),
            _optional_number(metrics, "noise_multiplier", metrics_where, retrain),
        ),
        run_name=run_name,
        run_dir=str(run.path),
        dp_enabled=dp_enabled,
        epsilon=_optional_number(metrics, "epsilon", metrics_where, retrain),
        delta=_optional_number(metrics, "delta", metrics_where, retrain),
        val_acc=_number(metrics, "val_acc", metrics_where, retrain),
        auc=attack_metrics.auc,
        tpr_at_1pct_fpr=attack_metrics.tpr_at_fpr[_ONE_PERCENT_FPR],
        epsilon_lower_bound=_bound(audit),
        strongest_attack=strongest,
        strongest_auc=strongest_metrics.auc,
        strongest_tpr_at_1pct_fpr=strongest_metrics.tpr_at_fpr[_ONE_PERCENT_FPR],
    )
    scores, is_member = run.read_scores(attack)
    try:
        curve = roc_curve(scores, is_member)
    except MetricsInputError as error:
        raise RunDirectoryError(
            f"scores file {run.scores_path(attack)} is unusable ({error}): {reaudit}"
        ) from None
    return row, curve


# -- writing the report -----------------------------------------------------------------------


def _check_attack_name(attack: str) -> None:
    # The name becomes part of file names inside the run directory.
    if not attack or attack.startswith(".") or Path(attack).name != attack or "\\" in attack:
        raise ReportError(
            f"`attack` must be a plain attack name such as 'mia_threshold', got {attack!r}"
        )


def _check_out_dir(out_dir: Path, run_dirs: Sequence[Path]) -> None:
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
                f"out_dir {out_dir} contains run {run_dir}: the report replaces its whole "
                "directory, which would delete the run; choose a directory that holds no run"
            )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ReportError(f"out_dir {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()) and not (out_dir / COMPARISON_JSON).is_file():
            raise ReportError(
                f"out_dir {out_dir} is not empty and holds no earlier report "
                f"({COMPARISON_JSON}); the report replaces the whole directory, so choose a new "
                "or empty one"
            )


def _check_distinct(run_dirs: Sequence[Path]) -> None:
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        resolved = run_dir.resolve()
        if resolved in seen:
            raise ReportError(f"run {run_dir} is listed twice (also as {seen[resolved]})")
        seen[resolved] = run_dir


def _plot_labels(rows: Sequence[ComparisonRow]) -> list[str]:
    """Model labels, with the run name added where two runs share a label."""
    labels = [row.label for row in rows]
    return [
        f"{row.label}, {row.run_name}" if labels.count(row.label) > 1 else row.label for row in rows
    ]


def _explanations() -> list[tuple[str, str]]:
    return [(column.header, column.explanation) for column in _COLUMNS]


def _intro(comparison: Comparison) -> str:
    count = len(comparison.rows)
    return (
        f"Membership-inference attack {comparison.attack} against {count} "
        f"run{'s' * (count != 1)}. Every number is read from the run's {METRICS_FILE} and "
        f"audit/{comparison.attack}.json; the ROC curves are drawn from the saved scores."
    )


_FIGURE_CAPTIONS = {
    ROC_OVERLAY_PNG: "ROC curves of the attack on log-log axes (the dashed diagonal is chance)",
    ACCURACY_VS_LEAKAGE_PNG: "Validation accuracy against attack AUC, one point per run",
}


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(comparison: Comparison) -> str:
    """The content of ``report.md``."""
    numeric = [column.numeric for column in _COLUMNS]
    lines = [
        f"# Privacy comparison: {comparison.attack}",
        "",
        _intro(comparison),
        "",
        "| " + " | ".join(TABLE_HEADERS) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    for row in comparison.rows:
        lines.append("| " + " | ".join(_markdown_cell(c) for c in table_cells(row)) + " |")
    violations = [row.run_name for row in comparison.rows if row.violation]
    if violations:
        lines += [
            "",
            f"**VIOLATION** in {', '.join(violations)}: the audit's ε lower bound exceeds the ε "
            "the accountant claims. The DP training or its accounting is broken; do not trust "
            "the claimed guarantee.",
        ]
    lines += ["", "## Columns", ""]
    lines += [f"- **{header}**: {text}" for header, text in _explanations()]
    lines += ["", "## Figures", ""]
    for file_name, caption in _FIGURE_CAPTIONS.items():
        lines += [f"![{caption}]({file_name})", ""]
    return "\n".join(lines)


def _write_report(directory: Path, comparison: Comparison, curves: Sequence[RocCurve]) -> None:
    labels = _plot_labels(comparison.rows)
    roc_png = png_bytes(
        roc_overlay_figure(
            [
                RocSeries(label, curve.fpr, curve.tpr, row.auc)
                for label, curve, row in zip(labels, curves, comparison.rows, strict=True)
            ],
            attack=comparison.attack,
        )
    )
    leakage_png = png_bytes(
        accuracy_vs_leakage_figure(
            [
                LeakagePoint(label, row.auc, row.val_acc)
                for label, row in zip(labels, comparison.rows, strict=True)
            ],
            attack=comparison.attack,
        )
    )
    pngs = {ROC_OVERLAY_PNG: roc_png, ACCURACY_VS_LEAKAGE_PNG: leakage_png}
    for file_name, png in pngs.items():
        write_bytes(directory / file_name, png)
    write_text(directory / REPORT_MD, render_markdown(comparison))
    page = render_html(
        title=f"Privacy comparison: {comparison.attack}",
        intro=_intro(comparison),
        headers=TABLE_HEADERS,
        rows=[table_cells(row) for row in comparison.rows],
        numeric_columns=[i for i, column in enumerate(_COLUMNS) if column.numeric],
        notes=_explanations(),
        images=[InlineImage(_FIGURE_CAPTIONS[name], png) for name, png in pngs.items()],
    )
    write_text(directory / REPORT_HTML, page)
    write_json(directory / COMPARISON_JSON, comparison.to_json())


def compare_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, attack: str = DEFAULT_ATTACK
) -> Comparison:
    """Compare trained and audited runs and write the report into ``out_dir``.

    Each run must have been trained (``auditml train``) and audited with ``attack``
    (``auditml audit --attack <attack>``); otherwise a :class:`RunDirectoryError` says which
    command to run. ``out_dir`` must lie outside every run, and if it exists it must be empty
    or an earlier report: it is replaced as a whole, and only once the new report is complete.
    Rows keep the order of ``run_dirs``.
    """
    if isinstance(run_dirs, str | Path):
        raise TypeError(
            "`run_dirs` must be a sequence of run directories, got a single path; wrap it in a list"
        )
    paths = [Path(run_dir) for run_dir in run_dirs]
    if not paths:
        raise ReportError("compare_runs needs at least one run directory, got none")
    out = Path(out_dir)
    _check_attack_name(attack)
    _check_distinct(paths)
    _check_out_dir(out, paths)
    loaded = [_load_run(path, attack) for path in paths]
    comparison = Comparison(
        attack=attack, run_dirs=paths, rows=[row for row, _ in loaded], out_dir=out
    )
    with staged_directory(out) as staging:
        _write_report(staging, comparison, [curve for _, curve in loaded])
    return comparison
