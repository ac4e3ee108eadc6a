"""Issues 12 and 28: the seed's DP tutorial configs with the dataset swapped, trained by
``auditml train`` with each DP recipe, over several seeds.

Each run is the config as written (batch 256, 20 epochs, lr 0.001, the config's ε, δ and C) with
only the dataset (and ``--train-size``) swapped, the seed set, and the recipe named:

* ``default``: the DP recipe (ScatterNet + linear head on 28x28 grey images, with its schedule:
  batch, epochs, SGD, C; σ calibrated for that schedule);
* ``gn``: the previous recipe, ``cnn_28x28_gn`` named as the model (Adam lr 3e-3, the config's
  schedule);
* ``plain``: ``training.dp.recipe: plain`` (the config as written).

Datasets: ``mnist-proxy`` (issue 28: the 10,000-image MNIST test split in ``--mnist-dir``,
shuffled with ``numpy.random.default_rng(0)``, the first 8,000 written as the training files and
the last 2,000 as the test files, into a temporary directory; use ``--train-size 3500``) and
``fashion`` (Fashion-MNIST in ``--fashion-dir``, 10,000 test images). It prints per run the
validation accuracy, the accountant's ε, σ, batch/epochs used and the wall time, then one table
of every dataset with issue 28's accuracy goals beside the means. The whole table, both
datasets, three seeds (about 25 minutes on 2 cores, most of it the first scattering of the
60,000 Fashion-MNIST images and the full-scale runs):

    python benchmarks/dp_recipe.py --dataset mnist-proxy fashion --seeds 0 1 2 \\
        --configs eps1 eps5 baseline full --recipes default

Or one part of it:

    python benchmarks/dp_recipe.py --dataset mnist-proxy --train-size 3500 --seeds 0 \\
        --configs eps1 eps5 --recipes default gn
    python benchmarks/dp_recipe.py --dataset fashion --configs eps1 eps5 full --seeds 0 1 2 \\
        --recipes default

The issue measured the proxy at 3,500 members because every member needed a held-out twin;
with ``data.audit_size`` it trains at the seed's own 5,000, 2,990 of them audited (the most the
8,000 images allow at equal class counts). The table labels each size ("5000/2990"):

    python benchmarks/dp_recipe.py --dataset mnist-proxy --train-size 5000 --audit-size 2990 \\
        --seeds 0 1 2 --configs eps1 eps5 baseline --recipes default

The time goal (the seed's DP configs at most 1.5x the same config without DP) is
``benchmarks/dp_overhead_runs.py``'s.

Measured figures are in ``auditml.training.recipe``'s docstring and the issue notes.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from auditml.config import load_config, parse_config
from auditml.training import train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def _read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array).tobytes(), 1))


def build_mnist_proxy(mnist_dir: Path, output: Path) -> Path:
    """Issue 28's MNIST proxy: the test split shuffled, 8,000 training and 2,000 test images."""
    images = _read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    order = np.random.default_rng(0).permutation(len(images))
    train_rows, test_rows = order[:8000], order[8000:]
    output.mkdir(parents=True, exist_ok=True)
    _write_idx(output / "train-images-idx3-ubyte.gz", images[train_rows])
    _write_idx(output / "train-labels-idx1-ubyte.gz", labels[train_rows])
    _write_idx(output / "t10k-images-idx3-ubyte.gz", images[test_rows])
    _write_idx(output / "t10k-labels-idx1-ubyte.gz", labels[test_rows])
    return output


# --configs names: the seed tutorial's three, and the full-scale Fashion-MNIST run (55,000
# members, 5,000 of them audited, ε=3, δ=1e-5; Fashion-MNIST only: the MNIST proxy's pool is
# 8,000 images).
CONFIG_FILES = {"eps1": "dp_tutorial_eps1.yaml", "eps5": "dp_tutorial_eps5.yaml",
                "baseline": "dp_tutorial_baseline.yaml", "full": "dp_fashion_full_eps3.yaml"}


def run(name: str, recipe: str, seed: int, data: dict, output: Path) -> dict:
    config = load_config(CONFIG_DIR / CONFIG_FILES[name])
    raw = config.model_dump(mode="json")
    raw["experiment_name"] = f"{name}_{recipe}_{seed}"
    raw["output_dir"] = str(output)
    raw["seed"] = seed
    raw["data"].update(data)
    if raw["training"]["dp"]["enabled"]:
        raw["training"]["dp"]["recipe"] = "plain" if recipe == "plain" else "default"
        if recipe == "gn":
            raw["model"]["arch"] = "cnn_28x28_gn"

    started = time.perf_counter()
    metrics = train(parse_config(raw), console=Console(file=io.StringIO())).metrics
    changes = (metrics["recipe"] or {}).get("schedule_changes", {})
    return {
        "config": name, "recipe": recipe if metrics["dp_enabled"] else "-", "seed": seed,
        "train_size": raw["data"]["train_size"], "audit_size": raw["data"].get("audit_size"),
        "val_acc": metrics["val_acc"], "epsilon": metrics["epsilon"],
        "sigma": metrics["noise_multiplier"], "arch": metrics["arch"],
        "batch_size": changes.get("batch_size", {}).get("used", raw["data"]["batch_size"]),
        "epochs": len(metrics["history"]),
        "wall_s": round(time.perf_counter() - started, 1),
    }


# Issue 28's accuracy goals, by dataset and config (the seed's own figures for the MNIST proxy).
GOALS = {("mnist-proxy", "eps1"): 0.962, ("mnist-proxy", "eps5"): 0.978,
         ("fashion", "eps1"): 0.83, ("fashion", "eps5"): 0.86, ("fashion", "full"): 0.90}


def _trained(row: dict) -> str:
    """The training set's size, and how many of it are audited where that is fewer."""
    audited = row["audit_size"]
    return f"{row['train_size']}" + (f"/{audited}" if audited not in (None, row["train_size"])
                                     else "")


def summary(rows: list[dict]) -> list[dict]:
    """One row per (dataset, training size, config, recipe), in first-seen order: the seeds'
    mean, min and max validation accuracy, the issue's goal (None where it sets none) and the
    mean wall time."""
    groups: dict[tuple[str, str, str, str], list[dict]] = {}
    for row in rows:
        key = (row["dataset"], _trained(row), row["config"], row["recipe"])
        groups.setdefault(key, []).append(row)
    table = []
    for (dataset, trained, name, recipe), group in groups.items():
        accs = [row["val_acc"] for row in group]
        first = group[0]
        table.append({
            "dataset": dataset, "trained": trained, "config": name, "recipe": recipe,
            "arch": first["arch"],
            "batch_size": first["batch_size"], "epochs": first["epochs"], "seeds": len(group),
            "mean": statistics.mean(accs), "min": min(accs), "max": max(accs),
            "goal": GOALS.get((dataset, name)) if recipe in ("default", "-") else None,
            "epsilon": sorted({round(row["epsilon"], 4) for row in group
                               if row["epsilon"] is not None}),
            "wall_s": statistics.mean(row["wall_s"] for row in group),
        })
    return table


def format_summary(table: list[dict]) -> str:
    """The summary as a text table; ``goal`` shows the issue's goal and the mean's distance from
    it (the seeds' min and max beside it say how far apart the seeds are)."""
    lines = ["dataset      trained/audited  config    recipe   arch               batch epochs "
             "seeds  mean    min     max     goal (mean − goal)  ε (accountant)  wall s"]
    for row in table:
        goal = ("-" if row["goal"] is None
                else f"{row['goal']:.1%} ({100 * (row['mean'] - row['goal']):+.1f})")
        lines.append(
            f"{row['dataset']:12} {row['trained']:16} {row['config']:9} {row['recipe']:8} "
            f"{row['arch']:18} "
            f"{row['batch_size']:5} {row['epochs']:6} {row['seeds']:5}  {row['mean']:.1%}  "
            f"{row['min']:.1%}  {row['max']:.1%}  {goal:18}  {row['epsilon']}  "
            f"{row['wall_s']:.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", choices=["mnist-proxy", "fashion"],
                        default=["mnist-proxy"], help="one or both; one table for all")
    parser.add_argument("--train-size", type=int, default=None,
                        help="members (default: the config's; 3500 for the MNIST proxy)")
    parser.add_argument("--audit-size", type=int, default=None,
                        help="data.audit_size: train on --train-size, audit this many of them "
                             "(the proxy at the seed's own 5,000: --train-size 5000 "
                             "--audit-size 2990)")
    parser.add_argument("--configs", nargs="+", default=["eps1", "eps5", "baseline"],
                        choices=sorted(CONFIG_FILES))
    parser.add_argument("--recipes", nargs="+", choices=["default", "gn", "plain"],
                        default=["default", "gn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--mnist-dir", type=Path, default=Path("/work/shared/data/mnist"))
    parser.add_argument("--fashion-dir", type=Path,
                        default=Path("/usr/share/datasets/fashion-mnist"))
    args = parser.parse_args()
    if args.dataset == ["mnist-proxy"] and "full" in args.configs:
        parser.error("--configs full is Fashion-MNIST's full-scale run: use --dataset fashion")
    rows = []
    with tempfile.TemporaryDirectory() as output:
        for dataset in dict.fromkeys(args.dataset):
            if dataset == "mnist-proxy":
                proxy = build_mnist_proxy(args.mnist_dir, Path(output) / "mnist_proxy")
                data = {"dataset": "mnist", "data_dir": str(proxy), "download": False,
                        "train_size": args.train_size or 3500}
            else:
                data = {"dataset": "fashion_mnist", "data_dir": str(args.fashion_dir),
                        "download": False}
                if args.train_size:
                    data["train_size"] = args.train_size
            if args.audit_size:
                data["audit_size"] = args.audit_size
            # The full-scale config is Fashion-MNIST's alone: the proxy's pool is 8,000 images.
            names = [name for name in args.configs if dataset == "fashion" or name != "full"]
            for name in names:
                recipes = args.recipes if name != "baseline" else ["-"]
                for recipe in recipes:
                    for seed in args.seeds:
                        row = {"dataset": dataset,
                               **run(name, recipe, seed, data, Path(output) / "runs")}
                        print(json.dumps(row), flush=True)
                        rows.append(row)
    print()
    print(format_summary(summary(rows)))


if __name__ == "__main__":
    main()
