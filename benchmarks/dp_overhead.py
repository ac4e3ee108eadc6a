"""DP-SGD's cost over plain training, per per-example-gradient mode, as ratios in one process.

Times one epoch of a registered model (default: the tutorial's 28x28 CNN at batch 256) on random
data: without DP, and with DP-SGD in each ``training.dp.grad_sample_mode`` (auditml's ``fast``,
Opacus's ``hooks`` and ``ghost``). The modes are run in turn, round after round, so that machine
noise hits all alike; each is timed through the same code the trainer uses. Prints the absolute
times (median over rounds) and each ratio to the non-private epoch (issue #5 wants fast <= 1.5),
and the mode ``auto`` measures fastest here. ``step_ratios`` (used by ``gpu_suite.py``) times
single steps on one synthetic batch on any device instead, without the data loader.

    python benchmarks/dp_overhead.py [--arch cnn_28x28] [--examples 5120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import DPConfig
from auditml.models import build_model
from auditml.training.dp_sgd import TrainingStep, make_private, plain_step
from auditml.training.grad_sample_cache import ModeCache
from auditml.training.grad_sample_choice import ModeChoice, resolve_grad_sample_mode, time_steps
from auditml.training.privacy import NoisePlan

SHAPES = {"cnn_28x28": (1, 28, 28), "cnn_8x8": (1, 8, 8), "mlp": (1, 28, 28),
          "resnet_groupnorm": (3, 32, 32)}
MODES = ["non-private", "fast", "hooks", "ghost"]


def epoch_seconds(mode: str, arch: str, examples: int, batch_size: int) -> float:
    torch.manual_seed(0)
    shape = SHAPES[arch]
    model = build_model(arch, shape, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = TensorDataset(torch.randn(examples, *shape), torch.randint(0, 10, (examples,)))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    step = plain_step(model, optimizer)
    private = None
    if mode != "non-private":
        plan = NoisePlan(1.0, 1 / len(loader), len(loader), calibrated=False)
        dp = DPConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=1.0)
        private = make_private(model, optimizer, loader, plan=plan, dp=dp, mode=mode)
        step, loader = private.step, private.loader
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for x, y in loader:
            step(x, y)
        elapsed = time.perf_counter() - start
    if private is not None:
        private.close()
    return elapsed


def step_ratios(arch: str, batch_size: int, device: torch.device, *, rounds: int = 10,
                modes: tuple[str, ...] = ("fast", "hooks", "ghost")) -> dict[str, float]:
    """Median seconds of one step, non-private and in each DP mode (σ = 1, as in training), on
    one synthetic batch already on ``device``; the steps interleave, round after round."""
    torch.manual_seed(0)
    shape = SHAPES[arch]
    x = torch.randn(batch_size, *shape)
    y = torch.randint(0, 10, (batch_size,))
    steps: dict[str, TrainingStep] = {}
    closers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ["non-private", *modes]:
            model = build_model(arch, shape, 10).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            if mode == "non-private":
                steps[mode] = plain_step(model, optimizer)
                continue
            loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
            plan = NoisePlan(1.0, 1.0, rounds + 2, calibrated=False)
            dp = DPConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=1.0)
            private = make_private(model, optimizer, loader, plan=plan, dp=dp, mode=mode)
            steps[mode] = private.step
            closers.append(private.close)
        x, y = x.to(device), y.to(device)
        try:
            return time_steps({mode: functools.partial(step, x, y) for mode, step in
                               steps.items()}, device=device, budget_s=float("inf"),
                              rounds=rounds)
        finally:
            for close in closers:
                close()


def auto_choice(arch: str, batch_size: int, device: torch.device) -> ModeChoice:
    """What ``grad_sample_mode: auto`` picks here, measured afresh (a throwaway cache)."""
    model = build_model(arch, SHAPES[arch], 10).to(device)
    with tempfile.TemporaryDirectory() as scratch:
        return resolve_grad_sample_mode(
            "auto", model, arch=arch, input_shape=SHAPES[arch], batch_size=batch_size,
            device=device, cache=ModeCache(Path(scratch) / "modes.json"),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cnn_28x28", choices=sorted(SHAPES))
    parser.add_argument("--examples", type=int, default=5120)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    args = parser.parse_args()
    modes = ["non-private", *[m for m in args.modes if m != "non-private"]]
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            times[mode].append(epoch_seconds(mode, args.arch, args.examples, args.batch_size))
    auto = auto_choice(args.arch, args.batch_size, torch.device("cpu")).mode
    plain = statistics.median(times["non-private"])
    print(
        f"arch={args.arch} threads={torch.get_num_threads()} examples={args.examples} "
        f"batch={args.batch_size} rounds={args.rounds} (auto picks: {auto})"
    )
    for mode in modes:
        seconds = statistics.median(times[mode])
        print(f"  {mode:<12} epoch {seconds:7.3f}s   ratio to non-private {seconds / plain:5.2f}")


if __name__ == "__main__":
    main()
