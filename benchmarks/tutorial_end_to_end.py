"""The tutorial end to end with auditml, against a plain Opacus script, as one ratio.

auditml: the tutorial's commands as a user types them, each its own process: ``train`` and
``audit --attack mia_threshold`` for ``configs/dp_tutorial_{baseline,eps5,eps1}.yaml``, then
``compare`` over the three runs. Training shows validation accuracy every epoch, as the tutorial
does. Reference: ``plain_opacus_tutorial.py``, which trains the same three models with Opacus's
defaults and evaluates each once, auditing nothing. Issue #5 wants auditml's total at most 0.6
of the reference's.

The configs name MNIST; ``--dataset`` swaps in another 28x28 dataset of the same size
(Fashion-MNIST from Debian's dataset-fashion-mnist, by default, since MNIST's training split
cannot be downloaded here). ``--epochs`` scales both sides down for a quicker check.

    python benchmarks/tutorial_end_to_end.py [--dataset fashion_mnist] [--epochs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["baseline", "eps5", "eps1"]


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_tutorial(dataset: str, epochs: int) -> tuple[list[tuple[str, float]], float]:
    """Seconds of each auditml command of the tutorial, and of the plain Opacus script."""
    auditml = [sys.executable, "-m", "auditml"]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        steps: list[tuple[str, float]] = []
        for run in RUNS:
            raw = yaml.safe_load((ROOT / "configs" / f"dp_tutorial_{run}.yaml").read_text())
            raw["data"]["dataset"] = dataset
            raw["training"]["epochs"] = epochs
            config = work / f"{run}.yaml"
            config.write_text(yaml.safe_dump(raw))
            train = [*auditml, "train", "--config", str(config)]
            steps.append((f"train {run}", timed(train, work)))
            audit = [*auditml, "audit", "--config", str(config), "--attack", "mia_threshold"]
            steps.append((f"audit {run}", timed(audit, work)))
        runs = [f"results/dp_tutorial_{run}" for run in RUNS]
        compare = [*auditml, "compare", *runs, "--out", "results/dp_comparison"]
        steps.append(("compare", timed(compare, work)))
        plain = [sys.executable, str(ROOT / "benchmarks" / "plain_opacus_tutorial.py"),
                 "--dataset", dataset, "--epochs", str(epochs)]
        reference = timed(plain, work)
    return steps, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    steps, reference = run_tutorial(args.dataset, args.epochs)
    ours = sum(seconds for _, seconds in steps)
    print(f"tutorial on {args.dataset}, {args.epochs} epochs per model")
    for name, seconds in steps:
        print(f"  auditml {name:<16} {seconds:7.1f}s")
    print(f"  auditml total            {ours:7.1f}s")
    print(f"  plain Opacus script      {reference:7.1f}s  (3 models, Opacus defaults, no audit)")
    print(f"  ratio auditml / plain: {ours / reference:.2f}")


if __name__ == "__main__":
    main()
