"""K reference models at once (``train_batched``) against one after another (``fit_model``).

Trains K models of the tutorial recipe (the 28x28 CNN at batch 256 on Fashion-MNIST, each model
on its own random subset with its own seed) both ways in this process, for each K, with and
without DP-SGD, and prints the wall times, their ratio and how far the weights of the two ways
are apart (relative norm of the difference, worst tensor; they run the same mechanism, so this
is floating point only). Issue 11 wants, on a GPU, K = 64 models (5000 examples, 20 epochs) in
at most 4x the time of one model, and on 2 CPU cores the batched trainer no slower than the
loop.

On a GPU the default is the issue's full size; on a CPU a small one that finishes in a few
minutes on 2 cores (``--examples 512 --epochs 1``). ``--dataset digits`` when Debian's
dataset-fashion-mnist is not installed.

    python benchmarks/batched_training.py [--models 1 8 64] [--examples N] [--epochs E]
        [--device cpu|cuda] [--no-sequential-above 8] [--rounds 1] [--vectorize auto|yes|no]
        [--dp-only | --plain-only]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from auditml.config import AuditMLConfig, parse_config
from auditml.data import ArrayDataset
from auditml.training.batched import Weights, train_batched
from auditml.training.reference import load_pool
from auditml.training.trainer import fit_model


def recipe(dataset: str, epochs: int, dp: bool, device: str) -> AuditMLConfig:
    return parse_config({
        "experiment_name": "batched_benchmark",
        "data": {"dataset": dataset, "train_size": 5000 if dataset != "digits" else 600,
                 "batch_size": 256 if dataset != "digits" else 32},
        "training": {"epochs": epochs, "learning_rate": 0.001, "device": device,
                     "dp": {"enabled": True, "noise_multiplier": 1.0, "max_grad_norm": 1.0}
                     if dp else {"enabled": False}},
    })


def sequential(config: AuditMLConfig, pool: ArrayDataset, subsets: list[np.ndarray],
               seeds: list[int], device: torch.device) -> list[Weights]:
    trained = []
    for subset, seed in zip(subsets, seeds, strict=True):
        fit = fit_model(config, pool.subset(subset), None, seed=seed, device=device)
        trained.append({n: t.detach().cpu().numpy() for n, t in fit.model.state_dict().items()})
    return trained


def worst_difference(a: list[Weights], b: list[Weights]) -> float:
    return max(
        float(np.linalg.norm(x[n] - y[n]) / np.linalg.norm(x[n]))
        for x, y in zip(a, b, strict=True) for n in x
    )


def timed(work: Callable[..., list[Weights]], *args: Any, **kwargs: Any
          ) -> tuple[float, list[Weights]]:
    start = time.perf_counter()
    result = work(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--examples", type=int, help="per model (default 5000 GPU, 512 CPU)")
    parser.add_argument("--epochs", type=int, help="default 20 on a GPU, 1 on a CPU")
    parser.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", "digits"])
    parser.add_argument("--no-sequential-above", type=int, default=None,
                        help="skip the loop for larger K (estimate it as K x the K=1 loop)")
    parser.add_argument("--rounds", type=int, default=1, help="time each way this many times")
    parser.add_argument("--vectorize", choices=["auto", "yes", "no"], default="auto")
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument("--dp-only", action="store_true")
    kinds.add_argument("--plain-only", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    examples = args.examples or (5000 if gpu else 512)
    epochs = args.epochs or (20 if gpu else 1)
    vectorize = {"auto": None, "yes": True, "no": False}[args.vectorize]
    print(f"{args.dataset}, {examples} examples per model, {epochs} epochs, device {device}, "
          f"{torch.get_num_threads()} torch threads")
    for dp in [False, True][int(args.dp_only): 1 if args.plain_only else 2]:
        config = recipe(args.dataset, epochs, dp, args.device)
        pool = load_pool(config.resolved().model_dump(mode="json"))
        one_model: float | None = None
        # Warm up (first calls compile kernels and import torch.func): not part of any timing.
        train_batched(config, pool, [np.arange(2 * config.data.batch_size)], [0], device=device,
                      vectorize=vectorize)
        sequential(config, pool, [np.arange(2 * config.data.batch_size)], [0], device)
        for count in args.models:
            rng = np.random.default_rng(count)
            subsets = [rng.choice(len(pool), examples, replace=False) for _ in range(count)]
            seeds = [int(s) for s in rng.integers(2**31 - 1, size=count)]
            loop = args.no_sequential_above is None or count <= args.no_sequential_above
            batched_times, loop_times = [], []
            # Rounds alternate the two ways, so load from other processes hits both alike; the
            # fastest round of each is the least disturbed.
            for _ in range(args.rounds):
                batched_s, batched = timed(train_batched, config, pool, subsets, seeds,
                                           device=device, vectorize=vectorize)
                batched_times.append(batched_s)
                if loop:
                    loop_s, looped = timed(sequential, config, pool, subsets, seeds, device)
                    loop_times.append(loop_s)
            batched_s = min(batched_times)
            line = f"{'DP-SGD ' if dp else 'plain  '} K={count:3d}: batched {batched_s:8.2f}s"
            if loop:
                loop_s = min(loop_times)
                apart = worst_difference(looped, batched)
                line += (f"  one after another {loop_s:8.2f}s  loop/batched "
                         f"{loop_s / batched_s:5.2f}  weights apart {apart:.1e}")
            if one_model is None and count == 1:
                one_model = batched_s
            if one_model is not None:
                line += f"  batched K / batched 1 {batched_s / one_model:6.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
