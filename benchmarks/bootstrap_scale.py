"""What the BCa bootstrap intervals cost one attack as the audit grows.

Times ``membership_intervals`` (1,000 resamples, the audit's FPR targets) at ``--sizes`` members
and as many non-members (Gaussian scores, a small shift, ties by rounding), best of
``--repeats``, and with ``--profile`` splits one call at the largest size into its parts:
drawing the resamples, the statistics of the resamples, the jackknife and the BCa step.

    python benchmarks/bootstrap_scale.py [--sizes 2000 10000 100000] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from auditml.metrics import bootstrap, membership_intervals
from auditml.metrics.summary import DEFAULT_FPRS


def scores_of(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    is_member = np.arange(2 * size) % 2 == 0
    return np.round(rng.normal(size=2 * size) + 0.3 * is_member, 4), is_member


def best_time(size: int, repeats: int) -> float:
    scores, is_member = scores_of(size)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        membership_intervals(scores, is_member, fprs=DEFAULT_FPRS)
        times.append(time.perf_counter() - start)
    return min(times)


def profile(size: int) -> None:
    scores, is_member = scores_of(size)
    data = bootstrap._sorted(scores, is_member)
    targets = np.asarray(DEFAULT_FPRS)
    rng = np.random.default_rng(0)
    parts = dict.fromkeys(("draw", "statistics", "jackknife", "bca"), 0.0)
    values = []
    for rows in bootstrap._blocks(1000, 2 * size):
        start = time.perf_counter()
        weights = bootstrap._multiplicities(rng, rows, size), bootstrap._multiplicities(
            rng, rows, size)
        parts["draw"] += time.perf_counter() - start
        start = time.perf_counter()
        values.append(bootstrap._weighted_statistics(data, *weights, targets)[1])
        parts["statistics"] += time.perf_counter() - start
    start = time.perf_counter()
    _, jackknife = bootstrap._jackknife(data, targets)
    parts["jackknife"] += time.perf_counter() - start
    start = time.perf_counter()
    bootstrap._bca(values[0][0], np.concatenate(values), bootstrap._acceleration(jackknife), 0.95)
    parts["bca"] += time.perf_counter() - start
    print(f"  parts at 2 x {size:,}: " + ", ".join(f"{k} {v:.3f}s" for k, v in parts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(f"membership_intervals, 1,000 resamples, FPRs {DEFAULT_FPRS}, best of {args.repeats}")
    for size in args.sizes:
        print(f"  2 x {size:>9,}: {best_time(size, args.repeats):7.3f}s")
    if args.profile:
        profile(max(args.sizes))


if __name__ == "__main__":
    main()
