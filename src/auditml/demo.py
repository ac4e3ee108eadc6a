"""``auditml demo``: the DP tutorial end to end on scikit-learn's digits (no files, no network).

It trains the tutorial's three models (no DP, ε=5, ε=1), audits each with the loss-threshold
attack, compares them, and prints the table. Each step is the same library call the CLI makes,
and the configs are written next to the runs so every step can be repeated by hand.

The settings differ from the tutorial's MNIST ones where digits needs it: the dataset is small
(1,797 images of 8x8 pixels, easy to generalise on), so the members are few and the baseline
trains long enough to memorise them; that is what makes the non-private model leak measurably.

The demo writes only what is its own in ``--output-dir``: the configs under ``configs/``
replace only files an earlier demo wrote there, as it wrote them (listed with their SHA-256 in
``.auditml-report.json``), the runs only earlier runs, the report only an earlier comparison.
Anything else in the way is refused before the first model trains.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from auditml.audit.runner import run_audit
from auditml.config import load_config
from auditml.figures.audit_figures import draw_figure
from auditml.fileio import sha256_of_file
from auditml.reporting import compare_runs, comparison_table
from auditml.reporting.output import check_out_dir, check_owned_files, install_owned_files
from auditml.run_directory import RunDirectory
from auditml.training import train

DEMO_TRAIN_SIZE = 150
DEMO_DELTA = 1e-4  # below 1/train_size, as a meaningful δ must be


def demo_configs(output_dir: Path) -> dict[str, dict[str, Any]]:
    """The tutorial's three configs, on digits.

    The baseline trains long on small batches, as an unregularised model is trained to fit its
    data. The DP runs follow the tutorial's tips: larger batches (each noisy step averages more
    examples), a larger learning rate and fewer epochs (fewer steps spend less privacy).
    """

    def config(name: str, batch_size: int, training: dict[str, Any]) -> dict[str, Any]:
        return {
            "experiment_name": name,
            "output_dir": str(output_dir),
            "data": {"dataset": "digits", "train_size": DEMO_TRAIN_SIZE, "batch_size": batch_size},
            "training": {"device": "auto", **training},
        }

    def private(epsilon: float, max_grad_norm: float) -> dict[str, Any]:
        return {
            "epochs": 30,
            "learning_rate": 0.01,
            "dp": {"enabled": True, "epsilon": epsilon, "delta": DEMO_DELTA,
                   "max_grad_norm": max_grad_norm},
        }

    return {
        "dp_tutorial_baseline": config(
            "dp_tutorial_baseline", 16, {"epochs": 200, "learning_rate": 0.002}
        ),
        "dp_tutorial_eps5": config("dp_tutorial_eps5", 50, private(5.0, 1.0)),
        "dp_tutorial_eps1": config("dp_tutorial_eps1", 50, private(1.0, 0.5)),
    }


def run_demo(output_dir: Path, *, console: Console | None = None) -> Path:
    """Run the tutorial on digits under ``output_dir``; return the report directory."""
    console = console or Console()
    started = time.perf_counter()
    output_dir = Path(output_dir)
    configs = {f"configs/{name}.yaml": yaml.safe_dump(raw, sort_keys=False).encode()
               for name, raw in demo_configs(output_dir).items()}
    report_dir = output_dir / "dp_comparison"
    # Every refusal before the first model trains (module docstring).
    legacy = functools.partial(_earlier_configs, configs)
    check_owned_files(output_dir, list(configs), kind="demo", what="--output-dir", legacy=legacy)
    run_dirs = [output_dir / name for name in demo_configs(output_dir)]
    for run_dir in run_dirs:
        RunDirectory(run_dir).check_can_train()
    check_out_dir(report_dir, run_dirs, kind="comparison")
    install_owned_files(output_dir, configs, kind="demo", what="--output-dir", legacy=legacy)
    for name in configs:
        path = output_dir / name
        config = load_config(path)
        console.rule(f"[bold]{config.experiment_name}")
        console.print(f"$ auditml train --config {path}", highlight=False, markup=False)
        step = time.perf_counter()
        result = train(config, console=console)
        console.print(
            f"val_acc={result.metrics['val_acc']:.1%}  ({time.perf_counter() - step:.1f}s)",
            highlight=False,
        )
        console.print(f"$ auditml audit --config {path} --attack mia_threshold", highlight=False,
                      markup=False)
        step = time.perf_counter()
        report = run_audit(config.run_dir, ["mia_threshold"], config_hint=str(path),
                           draw=draw_figure)
        console.print(
            f"MIA AUC={report.outcomes[0].metrics.auc:.3f}  ({time.perf_counter() - step:.1f}s)",
            highlight=False,
        )
    console.rule("[bold]compare")
    comparison = compare_runs(run_dirs, report_dir)
    console.print(comparison_table(comparison))
    console.print(
        f"report: {report_dir / 'report.html'} (also report.md, comparison.json)  "
        f"total {time.perf_counter() - started:.0f}s",
        highlight=False, markup=False,
    )
    return report_dir


def _earlier_configs(configs: dict[str, bytes], directory: Path) -> dict[str, list[str]]:
    """The configs a demo wrote before it listed them: those whose content is exactly what it
    writes now (so replacing them changes nothing)."""
    return {name: [sha256_of_file(directory / name)] for name, content in configs.items()
            if (directory / name).is_file() and (directory / name).read_bytes() == content}
