"""What ``auditml audit`` costs beyond the attack's own compute (issue 11: <= 2 s on 2 cores).

Trains a small digits run once, then runs ``auditml audit --attack mia_threshold`` as a fresh
process several times. Each audit records, in its own process, the seconds its attack took
(``compute.seconds`` in ``audit/<attack>.json``); the fixed cost is the command's wall time
minus that. Measured twice, alternating: on the run as trained (the threshold attack reads the
model's saved outputs, ``target_outputs.npz``, and never imports torch) and on the same run
without that file (as older versions wrote runs: the model is loaded and run). Printed as
medians over the repeats with their ratio, a yardstick measured the same way (a bare
``python -c "import torch"``) and the machine's load, since on a shared machine absolute
seconds mean little.

    python benchmarks/audit_fixed_cost.py [--repeats 5] [--attack mia_threshold]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from auditml.run_directory import RunDirectory

CONFIG = {
    "experiment_name": "fixed_cost",
    "data": {"dataset": "digits", "train_size": 500, "batch_size": 50},
    "training": {"epochs": 3, "learning_rate": 0.005, "device": "cpu"},
}


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--attack", default="mia_threshold")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "auditml.cli"]
    with tempfile.TemporaryDirectory() as scratch:
        config_path = Path(scratch) / "config.yaml"
        config_path.write_text(yaml.safe_dump({**CONFIG, "output_dir": scratch}))
        subprocess.run([*cli, "train", "--config", str(config_path)], check=True,
                       stdout=subprocess.DEVNULL)
        # The same run as an older version wrote it: no saved outputs, so the model is loaded.
        without = Path(scratch) / "without_outputs"
        shutil.copytree(Path(scratch) / CONFIG["experiment_name"], without)
        (without / "target_outputs.npz").unlink()
        RunDirectory(without).write_manifest()
        without_config = Path(scratch) / "without.yaml"
        without_config.write_text(yaml.safe_dump(
            {**CONFIG, "output_dir": scratch, "experiment_name": without.name}
        ))
        runs = {"saved outputs": config_path, "model loaded": without_config}
        fixed: dict[str, list[float]] = {name: [] for name in runs}
        walls: dict[str, list[float]] = {name: [] for name in runs}
        for config in runs.values():  # warm the OS file cache and the decoded-dataset cache
            _wall([*cli, "audit", "--config", str(config), "--attack", args.attack])
        torch_imports = []
        for _ in range(args.repeats):
            for name, config in runs.items():
                wall = _wall([*cli, "audit", "--config", str(config), "--attack", args.attack])
                name_in_config = yaml.safe_load(config.read_text())["experiment_name"]
                record = json.loads((Path(scratch) / name_in_config / "audit"
                                     / f"{args.attack}.json").read_text())
                walls[name].append(wall)
                fixed[name].append(wall - float(record["compute"]["seconds"]))
            torch_imports.append(_wall([sys.executable, "-c", "import torch"]))
    torch_import = statistics.median(torch_imports)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} (1 min)")
    print(f"auditml audit --attack {args.attack}: median of {args.repeats}, alternating")
    for name in runs:
        print(f"  {name:14s} wall {statistics.median(walls[name]):5.2f} s, fixed cost "
              f"{statistics.median(fixed[name]):5.2f} s (wall - the attack's compute; issue 11 "
              "asks <= 2 s on 2 idle cores)")
    ratio = statistics.median(fixed["saved outputs"]) / statistics.median(fixed["model loaded"])
    print(f"  saved outputs / model loaded: {ratio:.2f} x")
    print(f"  yardstick: python -c 'import torch' {torch_import:.2f} s")


if __name__ == "__main__":
    main()
