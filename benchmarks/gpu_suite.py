"""Issue 11's figures in one command: every ratio against a reference measured in this process.

(a) DP-SGD step ÷ non-private step in each ``grad_sample_mode`` (fast, hooks, ghost), and what
    ``auto`` picks when it measures afresh (``dp_overhead.step_ratios``, ``auto_choice``);
(b) K models at once with ``train_batched``: wall time ÷ K = 1 batched, and ÷ one model trained
    alone by ``fit_model`` (``batched_training``'s recipe), plain and DP-SGD;
(c) ``auditml audit --attack mia_threshold``'s fixed cost (``audit_fixed_cost.py``);
(d) the tutorial's 7 commands ÷ the plain Opacus script (``tutorial_end_to_end.run_tutorial``).

Sizes: the issue's on a GPU (estimated 3-4 minutes on one H200, not yet run there: see
``gpu_check.sh``); ``--small`` (the default without CUDA) scales everything down for 2 CPU cores
(about 8 minutes on this shared, loaded 2-core machine, most of it the tutorial's 7 processes);
``--tiny`` is the CI smoke test's. A section that fails prints one ``error:`` line and the
others still run (exit status 1); ``--json`` is rewritten after every section.

    python benchmarks/gpu_suite.py [--device cuda|cpu] [--small | --tiny] [--json PATH]
        [--parts dp batched audit tutorial]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auditml.fileio import write_json
from auditml.training.batched import train_batched
from auditml.training.reference import load_pool

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

import batched_training
import dp_overhead
import tutorial_end_to_end

PARTS = ("dp", "batched", "audit", "tutorial")


@dataclass(frozen=True)
class Sizes:
    name: str
    dp_cases: tuple[tuple[str, int], ...]  # (architecture, batch size)
    dp_rounds: int
    dataset: str
    models: tuple[int, ...]
    examples: int
    epochs: int
    audit_repeats: int
    tutorial_epochs: int


SIZES = {
    # The table; K models of 5000 examples (epochs cut from 20 to 5: the ratios are
    # per step, and the whole suite must fit in 5 minutes).
    "full": Sizes("full", (("cnn_28x28", 256), ("cnn_28x28", 2048), ("resnet_groupnorm", 256)),
                  20, "fashion_mnist", (1, 8, 64), 5000, 5, 3, 20),
    "small": Sizes("small", (("cnn_28x28", 64), ("cnn_28x28", 256), ("resnet_groupnorm", 32)),
                   3, "fashion_mnist", (1, 8), 256, 1, 1, 1),
    "tiny": Sizes("tiny", (("cnn_8x8", 16),), 1, "digits", (1, 2), 32, 1, 1, 1),
}


def dp_section(sizes: Sizes, device: torch.device, report: Callable[[str], None]) -> list[dict]:
    report("(a) DP-SGD step ÷ non-private step, one synthetic batch on the device "
           f"(median of {sizes.dp_rounds})")
    report(f"    {'arch':<17}{'batch':>6}{'non-private':>13}{'fast':>7}{'hooks':>7}{'ghost':>7}"
           "   auto picks")
    rows = []
    for arch, batch in sizes.dp_cases:
        seconds = dp_overhead.step_ratios(arch, batch, device, rounds=sizes.dp_rounds)
        plain = seconds["non-private"]
        ratios = {mode: seconds[mode] / plain for mode in ("fast", "hooks", "ghost")
                  if mode in seconds}
        auto = dp_overhead.auto_choice(arch, batch, device)
        fastest = min(ratios, key=ratios.__getitem__)
        verdict = "= fastest here" if auto.mode == fastest else f"(fastest here: {fastest})"
        cells = "".join(f"{ratios[m]:7.2f}" if m in ratios else f"{'-':>7}"
                        for m in ("fast", "hooks", "ghost"))
        report(f"    {arch:<17}{batch:>6}{plain * 1e3:>10.1f} ms{cells}   {auto.mode} {verdict}")
        rows.append({"arch": arch, "batch_size": batch, "non_private_step_s": plain,
                     "ratio_to_non_private": ratios, "auto_picks": auto.mode,
                     "auto_reason": auto.reason, "fastest_measured": fastest})
    return rows


def batched_section(sizes: Sizes, device: torch.device, report: Callable[[str], None]
                    ) -> list[dict]:
    report(f"(b) K models at once (train_batched), {sizes.examples} examples per model, "
           f"{sizes.epochs} epoch(s), {sizes.dataset}; reference: one model alone (fit_model)")
    report(f"    {'':<8}{'K':>4}{'batched':>10}{'÷ K=1':>8}{'÷ alone':>9}{'models/s ÷ K=1':>16}")
    rows = []
    for dp in (False, True):
        config = batched_training.recipe(sizes.dataset, sizes.epochs, dp, device.type)
        pool = load_pool(config.resolved().model_dump(mode="json"))
        # Warm-ups, untimed: kernels, torch.func's imports, and auto's one measurement.
        warm = [np.arange(2 * config.data.batch_size)]
        train_batched(config, pool, warm, [0], device=device)
        batched_training.sequential(config, pool, warm, [0], device)
        rng = np.random.default_rng(0)
        alone_s, _ = batched_training.timed(
            batched_training.sequential, config, pool,
            [rng.choice(len(pool), sizes.examples, replace=False)], [1], device)
        one_s: float | None = None
        for count in sizes.models:
            subsets = [rng.choice(len(pool), sizes.examples, replace=False)
                       for _ in range(count)]
            seeds = [int(s) for s in rng.integers(2**31 - 1, size=count)]
            seconds, _ = batched_training.timed(train_batched, config, pool, subsets, seeds,
                                                device=device)
            one_s = seconds if one_s is None else one_s
            label = "DP-SGD" if dp else "plain"
            report(f"    {label:<8}{count:>4}{seconds:>9.2f}s{seconds / one_s:>8.2f}"
                   f"{seconds / alone_s:>9.2f}{count * one_s / seconds:>16.2f}")
            rows.append({"dp": dp, "models": count, "batched_s": seconds,
                         "ratio_to_batched_k1": seconds / one_s,
                         "ratio_to_one_alone": seconds / alone_s, "one_alone_s": alone_s,
                         "throughput_ratio_to_k1": count * one_s / seconds})
    return rows


def audit_fixed_cost_section(sizes: Sizes, device: torch.device,
                             report: Callable[[str], None]) -> dict:
    """Hook for ``benchmarks/audit_fixed_cost.py`` (another engineer's): its numbers come back
    through ``measure_fixed_cost(repeats=...) -> dict`` when it offers one; until then its own
    report is run as a command and relayed line by line."""
    report("(c) auditml audit --attack mia_threshold: fixed cost beyond the attack's compute")
    script = Path(__file__).resolve().parent / "audit_fixed_cost.py"
    if not script.exists():
        report("    not measured: benchmarks/audit_fixed_cost.py is not there")
        return {"measured": False, "why": "benchmarks/audit_fixed_cost.py missing"}
    import audit_fixed_cost

    measure = getattr(audit_fixed_cost, "measure_fixed_cost", None)
    if measure is not None:
        result = dict(measure(repeats=sizes.audit_repeats))
        for key, value in result.items():
            report(f"    {key:<28} {value}")
        return {"measured": True, **result}
    done = subprocess.run([sys.executable, str(script), "--repeats", str(sizes.audit_repeats)],
                          check=True, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    for line in lines:
        report(f"    {line}")
    return {"measured": True, "report": lines}


def tutorial_section(sizes: Sizes, device: torch.device, report: Callable[[str], None]
                     ) -> dict:
    report(f"(d) the tutorial's 7 commands ÷ the plain Opacus script, {sizes.dataset}, "
           f"{sizes.tutorial_epochs} epoch(s) per model")
    steps, reference = tutorial_end_to_end.run_tutorial(sizes.dataset, sizes.tutorial_epochs)
    ours = sum(seconds for _, seconds in steps)
    for name, seconds in steps:
        report(f"    auditml {name:<16}{seconds:7.1f}s")
    report(f"    auditml total {ours:.1f}s, plain Opacus script {reference:.1f}s: "
           f"ratio {ours / reference:.2f}")
    return {"steps": dict(steps), "auditml_s": ours, "plain_opacus_s": reference,
            "ratio": ours / reference}


SECTIONS: dict[str, Callable[[Sizes, torch.device, Callable[[str], None]], Any]] = {
    "dp": dp_section, "batched": batched_section, "audit": audit_fixed_cost_section,
    "tutorial": tutorial_section,
}


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} torch threads)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"],
                        default="cuda" if torch.cuda.is_available() else "cpu")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--small", action="store_true", help="CPU sizes (default without CUDA)")
    scale.add_argument("--tiny", action="store_true", help="the smoke test's sizes")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here; use --device cpu")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: directory {args.json.parent} does not exist")
    device = torch.device(args.device)
    sizes = SIZES["tiny" if args.tiny else "small" if args.small or device.type == "cpu"
                  else "full"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"auditml issue-11 suite: device {describe(device)}, torch {torch.__version__}, "
              f"sizes {sizes.name}, load average {load:.1f}")
    print(header, flush=True)
    results: dict[str, Any] = {"device": describe(device), "torch": torch.__version__,
                               "sizes": asdict(sizes), "load_average": load, "sections": {}}
    failed = []
    for part in args.parts:
        started = time.perf_counter()
        try:
            results["sections"][part] = SECTIONS[part](
                sizes, device, lambda line: print(line, flush=True))
        except Exception as error:  # one section's fault must not lose the others' figures
            failed.append(part)
            message = " ".join(str(error).split()) or type(error).__name__
            print(f"error: section {part} failed: {message}", flush=True)
            results["sections"][part] = {"error": message}
        print(f"    ({part}: {time.perf_counter() - started:.0f}s)", flush=True)
        # After every section, so that a run cut by a timeout keeps what it measured.
        if args.json is not None:
            write_json(args.json, results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
