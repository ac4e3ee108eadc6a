"""The sweep's table (``sweep.json``, ``sweep.md``) and figures, from its audited runs.

Every number is read from the runs' validated records (``metrics.json``, ``audit/<attack>.json``)
through :class:`~auditml.run_directory.RunDirectory`; nothing is recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from auditml.config import AuditMLConfig
from auditml.formatting import format_confidence, format_delta, format_epsilon, format_rate
from auditml.metrics.dp.trials_epsilon import epsilon_bound_tail
from auditml.reporting import glossary
from auditml.reporting.verdict import TAIL_NAMES
from auditml.run_directory import RunDirectory, SweepDirectory

# The FPR at which the table reports the TPR (a key of MembershipMetrics.tpr_at_fpr).
TABLE_FPR = 0.01

TUNING_STATEMENT = (
    "Tuning leaks too. These runs used one fixed set of hyperparameters. If you try several "
    "learning rates, clipping norms or other settings on the private data and keep the best, "
    "that choice depends on the data, and the ε of each run no longer covers what you release: "
    "the tuning itself must be accounted for (Papernot & Steinke 2022, \"Hyperparameter Tuning "
    "with Renyi Differential Privacy\", ICLR). `auditml sweep --tune NAME=V1,V2,... "
    "--tune-stopping geometric:GAMMA` runs their random-stopping tuner and reports the ε of the "
    "whole tuning procedure."
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepRow(_Frozen):
    """One run of the sweep audited by one attack.

    ``epsilon_target`` is the ε the run was calibrated to and ``epsilon_claimed`` the ε its
    accountant reports (both None for the run without DP: no guarantee, shown as ∞).
    ``epsilon_lower_bound`` is a statistical bound that holds with ``bound_confidence``;
    ``gdp_epsilon_estimate`` is an estimate, not a bound.
    """

    run: str
    epsilon_target: float | None
    epsilon_claimed: float | None
    delta: float | None
    val_acc: float
    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    epsilon_lower_bound: float
    bound_confidence: float
    gdp_epsilon_estimate: float
    violation: bool
    # Which tail the bound came from (auditml.metrics.dp.trials_epsilon.BoundTail); None for a
    # bound of 0, or not known (a sweep.json written before tails were recorded).
    bound_tail: str | None = None
    # A language model's perplexity on its validation texts (its val_acc is of next tokens);
    # None for a classifier.
    val_perplexity: float | None = None


class SweepRecord(_Frozen):
    """``sweep.json``: the table, one row per (ε, attack), in the order the ε were given."""

    experiment_name: str
    attacks: list[str]
    rows: list[SweepRow]
    tuning_statement: str
    tuning: dict[str, Any] | None = None


def sweep_rows(
    config: AuditMLConfig, run_dirs: Sequence[Path], epsilons: Sequence[float],
    attacks: Sequence[str],
) -> SweepRecord:
    """The table of the audited runs ``run_dirs`` (trained at ``epsilons``)."""
    rows = []
    for run_dir, epsilon in zip(run_dirs, epsilons, strict=True):
        run = RunDirectory(run_dir)
        training_id = run.require_trained().training_id
        training = run.read_training()
        claimed = training.epsilon if training.dp_enabled else None
        for attack in attacks:
            result = run.read_attack(attack, training_id=training_id)
            bound = result.epsilon_lower_bound
            rows.append(SweepRow(
                run=run.path.name,
                epsilon_target=None if math.isinf(epsilon) else epsilon,
                epsilon_claimed=claimed,
                delta=training.delta if training.dp_enabled else None,
                val_acc=training.val_acc,
                val_perplexity=training.val_perplexity,
                attack=attack,
                auc=result.membership_metrics().auc,
                tpr_at_1pct_fpr=result.membership_metrics().tpr_at_fpr[TABLE_FPR],
                epsilon_lower_bound=bound.epsilon,
                bound_confidence=1 - bound.alpha,
                gdp_epsilon_estimate=result.gdp_estimate.epsilon,
                violation=claimed is not None and bound.epsilon > claimed,
                bound_tail=epsilon_bound_tail(bound.as_written()) if bound.epsilon > 0 else None,
            ))
    return SweepRecord(experiment_name=config.experiment_name, attacks=list(attacks), rows=rows,
                       tuning_statement=TUNING_STATEMENT)


HEADERS = (
    "ε target", glossary.EPSILON_CLAIMED.name, glossary.DELTA.name, glossary.VAL_ACC.name,
    "Attack", glossary.AUC.name, glossary.TPR_AT_1PCT_FPR.name,
    "ε lower bound (a bound)", "GDP ε (an estimate, not a bound)",
)


def headers(record: SweepRecord) -> tuple[str, ...]:
    """:data:`HEADERS`, with the validation perplexity after the accuracy for language models."""
    if not _has_perplexity(record):
        return HEADERS
    at = HEADERS.index(glossary.VAL_ACC.name) + 1
    return (*HEADERS[:at], glossary.VAL_PERPLEXITY.name, *HEADERS[at:])


def _has_perplexity(record: SweepRecord) -> bool:
    return any(row.val_perplexity is not None for row in record.rows)


def table_cells(row: SweepRow, *, perplexity: bool = False) -> list[str]:
    """The row's cells under :func:`headers` (``perplexity``: with its perplexity column)."""
    tail = TAIL_NAMES.get(row.bound_tail or "")
    bound = (f"≥ {row.epsilon_lower_bound:.2f} ({format_confidence(row.bound_confidence)} conf."
             f"{', ' + tail if tail else ''})")
    utility = [format_rate(row.val_acc)]
    if perplexity:
        utility.append("—" if row.val_perplexity is None else f"{row.val_perplexity:.2f}")
    return [
        format_epsilon(row.epsilon_target), format_epsilon(row.epsilon_claimed),
        format_delta(row.delta), *utility, row.attack, f"{row.auc:.3f}",
        format_rate(row.tpr_at_1pct_fpr), bound + (" VIOLATION" if row.violation else ""),
        f"{row.gdp_epsilon_estimate:.2f}",
    ]


def table_rows(record: SweepRecord) -> list[list[str]]:
    """Every row's cells, under :func:`headers`."""
    perplexity = _has_perplexity(record)
    return [table_cells(row, perplexity=perplexity) for row in record.rows]


def markdown(record: SweepRecord) -> str:
    columns = headers(record)
    lines = [
        f"# ε sweep: {record.experiment_name}", "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(cells) + " |" for cells in table_rows(record)), "",
    ]
    for term in (glossary.EPSILON_CLAIMED, glossary.EPSILON_LOWER_BOUND, glossary.GDP_ESTIMATE,
                 glossary.TPR_AT_1PCT_FPR, glossary.VIOLATION):
        lines.append(f"- **{term.name}**: {term.definition}")
    lines += ["", "Figures: accuracy_vs_epsilon.png, tpr_vs_epsilon.png, bound_vs_epsilon.png",
              "", "## Tuning costs privacy", "", record.tuning_statement, ""]
    if record.tuning is not None:
        lines += tuning_lines(record.tuning)
    return "\n".join(lines)


def tuning_lines(tuning: dict[str, Any]) -> list[str]:
    """The tuner's result in words (filled by :mod:`auditml.sweep.tuner`)."""
    return [str(line) for line in tuning.get("summary", [])] + [""]


def read_sweep_record(sweep: SweepDirectory) -> SweepRecord:
    return SweepRecord.model_validate_json(sweep.table_path("json").read_text(encoding="utf-8"))
