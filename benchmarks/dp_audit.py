"""Claimed ε against audited ε lower bounds, for a model without DP, with ε=8 and with ε=1.

Trains the three models on digits (same data, members, canaries and recipe apart from DP),
audits each with every attack and with the one-run canary audit, and prints the accountant's ε
beside each 95%-confidence lower bound (Clopper-Pearson at a threshold chosen on held-out
examples; Steinke et al. 2023 for the canaries) and each attack's Gaussian-DP estimate. A lower
bound above the claimed ε would mean broken training or accounting.

    python benchmarks/dp_audit.py [--train-size 150] [--models 4] [--canaries 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.formatting import format_epsilon
from auditml.training import train


def _config(name: str, epsilon: float | None, args: argparse.Namespace, out: Path) -> Any:
    training: dict[str, Any] = {"epochs": 200, "learning_rate": 0.002, "device": "cpu"}
    batch_size = 16
    if epsilon is not None:
        # The demo's DP recipe: larger batches, fewer epochs, a larger learning rate.
        training = {"epochs": 30, "learning_rate": 0.01, "device": "cpu",
                    "dp": {"enabled": True, "epsilon": epsilon, "delta": 1e-4,
                           "max_grad_norm": 1.0}}
        batch_size = 50
    training["canaries"] = {"count": args.canaries, "kind": "mislabeled"}
    return parse_config({
        "experiment_name": name,
        "output_dir": str(out),
        "data": {"dataset": "digits", "train_size": args.train_size, "batch_size": batch_size},
        "training": training,
        "audit": {"attacks": ["all", "dp_audit"], "reference_models": args.models,
                  "population_size": 2 * args.train_size},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=150)
    parser.add_argument("--models", type=int, default=4, help="reference models (even)")
    parser.add_argument("--canaries", type=int, default=300, help="one-run audit canaries")
    args = parser.parse_args()
    console = Console(width=140)
    table = Table(title=f"Claimed ε vs audited lower bounds (digits, {args.train_size} members)")
    for header in ("run", "ε (accountant)", "attack", "AUC", "ε lower bound (95%)",
                   "ε GDP estimate", "bound ≤ claim"):
        table.add_column(header, justify="left" if header in ("run", "attack") else "right")
    with tempfile.TemporaryDirectory() as scratch:
        for name, epsilon in (("no_dp", None), ("eps8", 8.0), ("eps1", 1.0)):
            start = time.perf_counter()
            config = _config(name, epsilon, args, Path(scratch))
            result = train(config, console=Console(quiet=True))
            report = run_audit(config.run_dir)
            claimed = result.metrics["epsilon"]
            for outcome in report.outcomes:
                bound = outcome.result["epsilon_lower_bound"]["epsilon"]
                estimate = outcome.result["gdp_estimate"]["epsilon"]
                holds = "—" if claimed is None else ("yes" if bound <= claimed else "VIOLATION")
                table.add_row(
                    name, format_epsilon(claimed), outcome.attack,
                    f"{outcome.metrics.auc:.3f}", f"{bound:.2f}", f"{estimate:.2f}", holds,
                )
            record = report.canary_audits.get("dp_audit")
            if record is not None:
                canary = record.model_dump(mode="json")
                bound = canary["epsilon_lower_bound"]
                best = canary["by_score"][canary["best_score"]]
                holds = "—" if claimed is None else ("yes" if bound <= claimed else "VIOLATION")
                table.add_row(
                    name, format_epsilon(claimed),
                    f"dp_audit ({canary['best_score']}, {best['correct']}/{best['guesses']} "
                    f"correct, max {canary['max_epsilon']:.2f})",
                    "—", f"{bound:.2f}", "—", holds,
                )
            console.print(f"{name}: trained and audited in {time.perf_counter() - start:.0f}s")
    console.print(table)


if __name__ == "__main__":
    main()
