"""DP ÷ no-DP wall time of whole ``auditml train`` runs, with ``grad_sample_mode: auto`` measured
fresh, on an idle machine and under a competing CPU load (issue 29).

Each pair is two whole processes, alternating: the config without DP, then the same config with
DP and an empty mode cache (a new ``AUDITML_GRAD_SAMPLE_MODE_CACHE`` file each run, so ``auto``
measures as on a new machine). ``--load K`` runs K busy-looping processes for the whole time, as
another job on a shared machine would. ``--fresh-cache`` gives every run (both sides) an empty
``AUDITML_CACHE_DIR``, so the decoded dataset and the DP recipe's scattering features are computed
in the run, as on a new machine; without it they are reused after the first run. Prints each
run's wall time and the mode ``auto`` chose (with its reason), the median ratio, and the cache
entries the DP runs left behind.

    python benchmarks/dp_overhead_runs.py [--config configs/dp_tutorial_eps5.yaml] [--epochs 5]
        [--pairs 3] [--load 0] [--fresh-cache] [--data-dir /usr/share/datasets/fashion-mnist]

The dataset is Fashion-MNIST (the MNIST training split cannot be fetched on these machines); the
config is otherwise as written, with ``epochs`` set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _burn() -> None:
    while True:
        pass


def _config(source: Path, dp: bool, epochs: int, data_dir: str, out: Path, name: str) -> Path:
    raw = yaml.safe_load(source.read_text())
    raw["experiment_name"] = name
    raw["output_dir"] = str(out)
    raw["data"].update(dataset="fashion_mnist", data_dir=data_dir, download=False)
    raw["training"]["epochs"] = epochs
    raw["training"]["device"] = "cpu"
    raw["training"].setdefault("dp", {})["enabled"] = dp
    if not dp:
        raw["training"]["dp"] = {"enabled": False}
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(config: Path, cache: Path, data_cache: Path | None) -> tuple[float, str]:
    environment = {**os.environ, "AUDITML_GRAD_SAMPLE_MODE_CACHE": str(cache)}
    if data_cache is not None:
        environment["AUDITML_CACHE_DIR"] = str(data_cache)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "auditml", "train", "--config", str(config)],
                          capture_output=True, text=True, env=environment, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"auditml train failed:\n{done.stderr[-2000:]}")
    clipping = next((line for line in done.stdout.splitlines()
                     if line.startswith("Per-example clipping")), "-")
    return seconds, clipping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/dp_tutorial_eps5.yaml")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes alongside")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="an empty AUDITML_CACHE_DIR for every run (no cached features)")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(args.load)]
    for burner in burners:
        burner.start()
    ratios, plain_times, dp_times = [], [], []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch)
            for pair in range(args.pairs):
                plain = _config(args.config, False, args.epochs, args.data_dir, out,
                                f"plain{pair}")
                private = _config(args.config, True, args.epochs, args.data_dir, out,
                                  f"dp{pair}")
                cache = out / f"modes{pair}.json"
                plain_cache = out / f"cache_plain{pair}" if args.fresh_cache else None
                dp_cache = out / f"cache_dp{pair}" if args.fresh_cache else None
                plain_s, _ = _train(plain, cache, plain_cache)
                dp_s, clipping = _train(private, cache, dp_cache)
                plain_times.append(plain_s)
                dp_times.append(dp_s)
                ratios.append(dp_s / plain_s)
                print(f"pair {pair}: no DP {plain_s:.1f} s, DP {dp_s:.1f} s, ratio "
                      f"{dp_s / plain_s:.2f}; {clipping}", flush=True)
                if cache.exists():
                    for key, entry in json.loads(cache.read_text())["choices"].items():
                        print(f"  cached: {key}: {entry['mode']} "
                              f"{ {m: round(s, 3) for m, s in entry['step_seconds'].items()} } "
                              f"({entry['rounds']} rounds)", flush=True)
                else:
                    print("  cached: nothing", flush=True)
    finally:
        for burner in burners:
            burner.terminate()
    caches = "fresh caches" if args.fresh_cache else "caches reused"
    print(f"{args.config.name}, {args.epochs} epochs, {caches}, load {args.load}, load average at "
          f"the end {os.getloadavg()[0]:.1f}: median no DP {statistics.median(plain_times):.1f} s, "
          f"DP {statistics.median(dp_times):.1f} s, median ratio {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
