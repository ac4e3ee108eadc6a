"""Issue 12: the seed's DP tutorial configs on Fashion-MNIST, trained by ``auditml train`` with
the default DP recipe and with ``training.dp.recipe: plain``, over several seeds.

Each run is the config as written (5,000 members, batch 256, 20 epochs, lr 0.001, the config's
ε, δ and C), with only the dataset swapped to Fashion-MNIST (the MNIST training split cannot be
fetched on these machines), the seed set, and the recipe named. It prints, per run, the
validation accuracy (the 10,000 test images), the accountant's ε that training printed, σ and the
wall time, then the mean per (config, recipe). The ε columns of the two recipes must be equal:
the recipe changes no part of the mechanism.

    python benchmarks/dp_recipe.py --seeds 0 1 2 [--configs eps1 eps5 baseline]
        [--recipes default plain] [--data-dir /usr/share/datasets/fashion-mnist]

Measured figures are in ``auditml.training.recipe``'s docstring and the issue note.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from auditml.config import load_config, parse_config
from auditml.training import train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def run(name: str, recipe: str, seed: int, data_dir: Path, output: Path) -> dict:
    config = load_config(CONFIG_DIR / f"dp_tutorial_{name}.yaml")
    raw = config.model_dump(mode="json")
    raw["experiment_name"] = f"{name}_{recipe}_{seed}"
    raw["output_dir"] = str(output)
    raw["seed"] = seed
    raw["data"].update(dataset="fashion_mnist", data_dir=str(data_dir), download=False)
    if raw["training"]["dp"]["enabled"]:
        raw["training"]["dp"]["recipe"] = recipe

    started = time.perf_counter()
    metrics = train(parse_config(raw), console=Console(file=io.StringIO())).metrics
    return {
        "config": name, "recipe": recipe if metrics["dp_enabled"] else "-", "seed": seed,
        "val_acc": metrics["val_acc"], "epsilon": metrics["epsilon"],
        "sigma": metrics["noise_multiplier"], "arch": metrics["arch"],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["eps1", "eps5", "baseline"])
    parser.add_argument("--recipes", nargs="+", default=["default", "plain"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as output:
        for name in args.configs:
            recipes = args.recipes if name != "baseline" else ["-"]
            for recipe in recipes:
                for seed in args.seeds:
                    row = run(name, recipe, seed, args.data_dir, Path(output))
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    print("\nconfig    recipe    mean val_acc   min    max    ε printed")
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["config"], row["recipe"]), []).append(row)
    for (name, recipe), group in groups.items():
        accs = [row["val_acc"] for row in group]
        eps = {row["epsilon"] for row in group}
        print(f"{name:9} {recipe:9} {statistics.mean(accs):8.1%}   {min(accs):.1%}  "
              f"{max(accs):.1%}  {sorted(eps)}")


if __name__ == "__main__":
    main()
