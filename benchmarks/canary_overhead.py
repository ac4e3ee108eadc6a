"""What gradient canaries add to a DP-SGD step, as a ratio in one process (issue 10: <= 10%).

Times one epoch of the tutorial's 28x28 CNN at batch 256 on random data with DP-SGD, without and
with ``m`` gradient canaries (injection into the clipped sum, the projection of every noisy sum
on every canary, the bookkeeping), through the same ``make_private`` the trainer uses. The two
are run in turn, round after round, so machine noise hits both alike. Prints the median epoch
times and their ratio.

    python benchmarks/canary_overhead.py [--mode fast] [--count 1000] [--direction dirac]
    python benchmarks/canary_overhead.py --own-loop     # CanaryAudit on a plain Opacus loop

``--own-loop`` times a plain Opacus ``hooks`` loop four ways: without an audit, with
``auditml.CanaryAudit`` (canaries added after the clipping), with it given the model, the loader
and the engine as well (every assumption checked: the first-batch probe, the batch sizes, the
divisors) and with ``CanaryAudit(through_clipping=True)`` (canaries and the clipping probe
through the optimiser's own per-example clipping). On a shared 2-core machine glibc's returning
of the per-example gradients' memory to the system dominates (sys time above user time) and
swamps the ratio; run with ``MALLOC_MMAP_THRESHOLD_=2000000000
MALLOC_TRIM_THRESHOLD_=20000000000`` to keep it in the process (it also halved the epoch time
there).

``random_direction`` regenerates every direction at every step (O(m·d)): expect it to cost a
multiple of the step on a model this size; ``dirac`` is a gather of m coordinates.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import DPConfig
from auditml.models import build_model
from auditml.training.dp_sgd import make_private
from auditml.training.gradient_canaries import GradientCanaries, optimizer_parameters
from auditml.training.privacy import NoisePlan

SHAPE = (1, 28, 28)


class _Timed:
    """Seconds spent inside the canaries' own calls (a direct measure, robust to machine noise
    that the epoch-time ratio is not on a shared machine)."""

    def __init__(self, canaries: GradientCanaries) -> None:
        self.seconds = 0.0
        for name in ("add_to_sums", "observe"):
            setattr(canaries, name, self._timed(getattr(canaries, name)))

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            start = time.perf_counter()
            result = call(*args)
            self.seconds += time.perf_counter() - start
            return result

        return timed


def epoch_seconds(
    mode: str, count: int, direction: str, examples: int, batch_size: int, device: torch.device
) -> tuple[float, float]:
    """The epoch's seconds, and those spent in the canaries' calls."""
    torch.manual_seed(0)
    model = build_model("cnn_28x28", SHAPE, 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = TensorDataset(torch.randn(examples, *SHAPE), torch.randint(0, 10, (examples,)))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    plan = NoisePlan(1.0, 1 / len(loader), len(loader), calibrated=False)
    dp = DPConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=1.0)
    canaries = None
    if count:
        canaries = GradientCanaries(
            optimizer_parameters(optimizer), count=count, direction=direction,
            max_grad_norm=1.0, sample_rate=plan.sample_rate, noise_multiplier=1.0, seed=0,
        )
    timer = _Timed(canaries) if canaries is not None else None
    private = make_private(model, optimizer, loader, plan=plan, dp=dp, mode=mode,
                           canaries=canaries)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        for x, y in private.loader:
            private.step(x.to(device), y.to(device))
        if canaries is not None:
            canaries.record()  # moving the observations off the device is part of the cost
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    private.close()
    return elapsed, timer.seconds if timer is not None else 0.0


def own_loop_epoch_seconds(kind: str, count: int, examples: int, batch_size: int,
                           device: torch.device) -> float:
    """One epoch of a plain Opacus ``hooks`` loop: ``kind`` none | after | checked | through."""
    from opacus import PrivacyEngine

    import auditml

    torch.manual_seed(0)
    model = build_model("cnn_28x28", SHAPE, 10).to(device)
    data = TensorDataset(torch.randn(examples, *SHAPE), torch.randint(0, 10, (examples,)))
    engine = PrivacyEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = engine.make_private(
            module=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
            data_loader=DataLoader(data, batch_size=batch_size), noise_multiplier=1.0,
            max_grad_norm=1.0, grad_sample_mode="hooks",
        )
        audit = None
        if kind != "none":
            given = ({"model": model, "data_loader": loader, "privacy_engine": engine}
                     if kind == "checked" else {})
            audit = auditml.CanaryAudit(optimizer, count=count, seed=0,
                                        through_clipping=kind == "through", **given)
        start = time.perf_counter()
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x.to(device)), y.to(device)).backward()
            optimizer.step()
        if audit is not None:
            audit._record()  # moving the observations off the device is part of the cost
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def own_loop(args: argparse.Namespace, device: torch.device) -> None:
    kinds = ("none", "after", "checked", "through")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    own_loop_epoch_seconds("through", args.count, args.examples, args.batch_size, device)
    for round_ in range(args.rounds):  # the order turns each round: no kind always goes first
        turn = round_ % len(kinds)
        for kind in kinds[turn:] + kinds[:turn]:
            times[kind].append(own_loop_epoch_seconds(kind, args.count, args.examples,
                                                      args.batch_size, device))
    plain = statistics.median(times["none"])
    print(f"cnn_28x28 Opacus hooks loop device={device} threads={torch.get_num_threads()} "
          f"examples={args.examples} batch={args.batch_size} rounds={args.rounds}")
    print(f"  without an audit                        epoch {plain:7.3f}s")
    for kind, words in (("after", "CanaryAudit (after the clipping)"),
                        ("checked", "CanaryAudit(model, data_loader, engine)"),
                        ("through", "CanaryAudit(through_clipping=True)")):
        median = statistics.median(times[kind])
        print(f"  {words:<39} epoch {median:7.3f}s   overhead {median / plain - 1:+.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="fast", choices=["fast", "hooks", "ghost"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--direction", default="dirac", choices=["dirac", "random_direction"])
    parser.add_argument("--examples", type=int, default=5120)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--own-loop", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.own_loop:
        own_loop(args, device)
        return
    times: dict[int, list[float]] = {0: [], args.count: []}
    inside: list[float] = []
    epoch_seconds(args.mode, 0, args.direction, args.examples, args.batch_size, device)  # warm-up
    for _ in range(args.rounds):
        for count in times:
            seconds, in_canaries = epoch_seconds(
                args.mode, count, args.direction, args.examples, args.batch_size, device
            )
            times[count].append(seconds)
            if count:
                inside.append(in_canaries / (seconds - in_canaries))
    plain, canaried = statistics.median(times[0]), statistics.median(times[args.count])
    print(
        f"cnn_28x28 mode={args.mode} device={device} threads={torch.get_num_threads()} "
        f"examples={args.examples} batch={args.batch_size} rounds={args.rounds}"
    )
    print(f"  without canaries           epoch {plain:7.3f}s")
    print(f"  {args.count} {args.direction:<16} canaries epoch {canaried:7.3f}s   "
          f"overhead {canaried / plain - 1:+.1%}")
    print(f"  time inside the canaries' calls / the rest of the epoch: "
          f"{statistics.median(inside):.2%} (median over rounds)")


if __name__ == "__main__":
    main()
