"""Summary tables for the terminal (rich)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from auditml.formatting import format_delta, format_epsilon


def audit_table(result: dict[str, Any]) -> Table:
    """One attack's numbers, as written to ``audit/<attack>.json``."""
    metrics, run = result["metrics"], result["run"]
    settings = ", ".join(f"{key}={value}" for key, value in result["settings"].items())
    table = Table(title=f"{result['attack']} ({settings}) on {run['experiment_name']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    privacy = (
        f"ε={format_epsilon(run['epsilon'])}, δ={format_delta(run['delta'])}"
        if run.get("dp_enabled")
        else "no DP"
    )
    table.add_row("training", privacy)
    table.add_row("members / non-members", f"{metrics['members']} / {metrics['nonmembers']}")
    table.add_row("ROC AUC", f"{metrics['auc']:.3f}")
    for fpr, tpr in metrics["tpr_at_fpr"].items():
        table.add_row(f"TPR @ {float(fpr):.1%} FPR", f"{tpr:.2%}")
    table.add_row("advantage (max TPR − FPR)", f"{metrics['advantage']:.3f}")
    calibrated = metrics["calibrated_accuracy"]
    table.add_row("accuracy (threshold from held-out half)", f"{calibrated['accuracy']:.1%}")
    return table
