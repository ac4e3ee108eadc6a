"""Every attack against one target: AUC, TPR at 0.1% and 1% FPR, and the compute each used.

Trains a non-private target on digits (or Fashion-MNIST with --dataset fashion_mnist), trains the
reference and shadow models once, then runs every registered attack, plus LiRA offline and RMIA
with fewer reference models, and prints one table. Absolute times are for this machine; compare
rows with each other, not with other machines.

    python benchmarks/attack_strength.py [--dataset digits] [--train-size 150] [--models 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from auditml.attacks import ATTACKS, AuditTarget, MembershipAttack
from auditml.audit.core import GivenResources, run_attacks
from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.records import RunFacts
from auditml.training import train


def _config(args: argparse.Namespace, output_dir: Path) -> dict[str, Any]:
    image_like = args.dataset != "digits"
    return {
        "experiment_name": f"strength_{args.dataset}",
        "output_dir": str(output_dir),
        "data": {"dataset": args.dataset, "train_size": args.train_size, "batch_size": 16,
                 "data_dir": args.data_dir},
        "training": {"epochs": args.epochs, "learning_rate": 0.002, "device": "cpu"},
        "audit": {
            "attacks": ["all"],
            "reference_models": args.models,
            "population_size": 2 * args.train_size,
            "mia_lira": {"augmentations": "flip_shift" if image_like else "none"},
        },
    }


def _row(
    table: Table, name: str, attack: MembershipAttack, target: AuditTarget,
    is_member: np.ndarray, models: int, seed: int,
) -> None:
    examples = target.examples
    audited = run_attacks(
        target.model, examples.subset(np.flatnonzero(is_member)),
        examples.subset(np.flatnonzero(~is_member)), [attack],
        num_classes=target.num_classes, device=target.device, seed=seed, delta=None,
        run_facts=RunFacts(experiment_name=name, dp_enabled=False),
        resources=GivenResources(target.population, target.reference, target.shadow),
    )
    outcome = audited.outcomes[0]
    metrics = outcome.metrics
    table.add_row(
        name, f"{metrics.auc:.3f}", f"{metrics.tpr_at_fpr[0.001]:.2%}",
        f"{metrics.tpr_at_fpr[0.01]:.2%}", str(models), f"{outcome.record.compute.seconds:.1f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion_mnist"])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--train-size", type=int, default=150)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--models", type=int, default=8, help="reference models (even)")
    args = parser.parse_args()
    console = Console(width=140)

    with tempfile.TemporaryDirectory() as scratch:
        config = parse_config(_config(args, Path(scratch)))
        start = time.perf_counter()
        train(config, console=Console(quiet=True))
        target_seconds = time.perf_counter() - start
        start = time.perf_counter()
        # The runner trains (and saves) the reference and shadow models once, then every
        # attack; the rows below reuse those models, so none are trained twice.
        report = run_audit(config.run_dir, ["all"], console=console)
        audit_seconds = time.perf_counter() - start
        target, is_member = report.target, report.is_member
        reference = target.reference
        if reference is None:
            raise SystemExit("no registered attack needs reference models; nothing to compare")

        table = Table(
            title=f"Attack strength on {args.dataset}: {args.train_size} members, "
            f"{args.train_size} non-members (non-private target, {args.epochs} epochs)"
        )
        for header in ("attack", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "ref. models", "seconds"):
            table.add_column(header, justify="left" if header == "attack" else "right")
        for outcome in report.outcomes:
            result, metrics = outcome.result, outcome.result["metrics"]
            table.add_row(
                f"{outcome.attack} "
                f"({', '.join(f'{k}={v}' for k, v in result['settings'].items())})",
                f"{metrics['auc']:.3f}", f"{metrics['tpr_at_fpr']['0.001']:.2%}",
                f"{metrics['tpr_at_fpr']['0.01']:.2%}",
                str(result["compute"]["reference_models"]), f"{result['compute']['seconds']:.1f}",
            )
        if "mia_lira" in ATTACKS:
            lira = ATTACKS.get("mia_lira")
            _row(table, "mia_lira (mode=offline)", lira(mode="offline"), target, is_member,
                 len(reference), config.seed)
            _row(table, "mia_lira (mode=offline, variance=fixed)",
                 lira(mode="offline", variance="fixed"), target, is_member, len(reference),
                 config.seed)
        if "mia_rmia" in ATTACKS:
            for count in (1, 2):
                small = dataclasses.replace(target, reference=reference.subset(count))
                _row(table, f"mia_rmia ({count} reference models)", ATTACKS.get("mia_rmia")(),
                     small, is_member, count, config.seed)
        console.print(table)
        console.print(
            f"target training {target_seconds:.1f}s; audit with every attack, including "
            f"training {args.models} reference + {args.models} shadow models, {audit_seconds:.1f}s"
        )


if __name__ == "__main__":
    main()
