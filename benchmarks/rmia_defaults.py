"""RMIA's settings compared on the same targets and reference models: the evidence for its defaults.

Trains one non-private target per seed with ``auditml train`` and its reference models with
``auditml audit``, then scores RMIA under each setting from the same outputs (mode, a, γ, ties
kept or broken, softmax temperature) and prints AUC, TPR at 0.1 % and 1 % FPR and the examples
tied at the top score (with the non-members among them), averaged over the seeds. The table in
``auditml.attacks.rmia``'s module docstring came from

    python benchmarks/rmia_defaults.py --seeds 0 1 [--dataset digits] [--train-size 500]
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
from rich.console import Console
from rich.table import Table

from auditml.attacks.rmia import rmia_scores, true_class_probs, tune_offline_a
from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.metrics import membership_metrics
from auditml.models import predict_logits
from auditml.training import train

FPRS = (0.001, 0.01)


def _outputs(args: argparse.Namespace, seed: int) -> dict[str, np.ndarray]:
    """The target's and the reference models' logits on the audited and population examples."""
    with tempfile.TemporaryDirectory() as scratch:
        config = parse_config({
            "experiment_name": f"rmia_{args.dataset}_{seed}", "output_dir": scratch, "seed": seed,
            "data": {"dataset": args.dataset, "train_size": args.train_size, "batch_size": 32,
                     "data_dir": args.data_dir},
            "training": {"epochs": args.epochs, "learning_rate": 0.002, "device": "cpu"},
            "audit": {"attacks": ["mia_rmia"], "reference_models": args.models,
                      "population_size": args.population},
        })
        train(config, console=Console(quiet=True))
        report = run_audit(config.run_dir, ["mia_rmia"], console=Console(quiet=True))
        target = report.target
        if target is None or target.reference is None or target.population is None:
            raise SystemExit("the audit built no reference models or population")
        return {
            "target_x": target.logits(), "reference_x": target.reference.logits(target.examples.x),
            "keep": np.asarray(target.reference.keep, bool), "y": np.asarray(target.examples.y),
            "target_z": predict_logits(target.model, target.population.x),
            "reference_z": target.reference.logits(target.population.x),
            "y_z": np.asarray(target.population.y), "is_member": report.is_member,
        }


def _settings(out: dict[str, np.ndarray], temperature: float) -> dict[str, np.ndarray]:
    """Every compared setting's scores on one target at one temperature."""
    probs = {
        name: true_class_probs(out[name] / temperature, out["y_z" if name.endswith("z") else "y"])
        for name in ("target_x", "reference_x", "target_z", "reference_z")
    }
    args = (probs["target_x"], probs["reference_x"], out["keep"], probs["target_z"],
            probs["reference_z"])
    tuned = tune_offline_a(probs["reference_x"], out["keep"], probs["reference_z"]).a
    scores = {}
    for gamma in (1.0, 2.0):
        scores[f"offline, tuned a, γ={gamma:g}, ties kept"] = rmia_scores(
            *args, mode="offline", a=tuned, gamma=gamma, break_ties=False)
        scores[f"online, γ={gamma:g}, ties kept"] = rmia_scores(
            *args, mode="online", a=None, gamma=gamma, break_ties=False)
    scores["offline, tuned a, ties broken"] = rmia_scores(*args, mode="offline", a=tuned,
                                                          gamma=1.0)
    scores["offline, a=0.33, ties broken"] = rmia_scores(*args, mode="offline", a=0.33,
                                                         gamma=1.0)
    scores["online, ties broken"] = rmia_scores(*args, mode="online", a=None, gamma=1.0)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "fashion_mnist"])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--train-size", type=int, default=500)
    parser.add_argument("--population", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--models", type=int, default=8, help="reference models (even)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    args = parser.parse_args()

    rows: dict[str, list[tuple[float, ...]]] = {}
    for seed in args.seeds:
        out = _outputs(args, seed)
        for temperature in args.temperatures:
            for name, scores in _settings(out, temperature).items():
                metrics = membership_metrics(scores, out["is_member"], fprs=FPRS, seed=seed)
                rows.setdefault(f"T={temperature:g}, {name}", []).append((
                    metrics.auc, *(metrics.tpr_at_fpr[fpr] for fpr in FPRS),
                    metrics.tied_at_top or 0, metrics.tied_at_top_nonmembers or 0,
                ))
    table = Table(title=f"RMIA settings on {args.dataset}: {args.train_size} members and "
                  f"non-members, {args.models} reference models, means over seeds "
                  f"{', '.join(map(str, args.seeds))}")
    for header in ("setting", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "tied at top (non-members)"):
        table.add_column(header, justify="left" if header == "setting" else "right")
    for name, values in rows.items():
        auc, low, one, tied, tied_out = np.mean(values, axis=0)
        table.add_row(name, f"{auc:.3f}", f"{low:.1%}", f"{one:.1%}",
                      f"{tied:.1f} ({tied_out:.1f})")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
