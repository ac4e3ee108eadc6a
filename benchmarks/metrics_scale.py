"""Metrics over a million scores: each function's time, and the total an audit pays.

Draws ``--scores`` membership scores (half members, Gaussian with a small shift, ties included by
rounding) and times, best of ``--repeats``, every metric an audit records for one attack (the
calls of ``auditml.attacks.results.summarize_attack``), then other functions on their own.
Issue #5 wants the audit's set under 1 second at 10^6 scores; the last line prints its total and
the ratio to that budget.

    python benchmarks/metrics_scale.py [--scores 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from auditml.metrics import (
    Split,
    advantage,
    calibrated_accuracy,
    epsilon_lower_bound,
    gdp_epsilon_estimate,
    gdp_lower_bound,
    membership_intervals,
    membership_metrics,
    most_exposed_members,
    per_class_metrics,
    roc_auc,
    roc_curve,
    tpr_at_fprs,
)


def best_time(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    is_member = np.arange(args.scores) % 2 == 0
    scores = np.round(rng.normal(size=args.scores) + 0.3 * is_member, 4)
    labels = rng.integers(0, 10, args.scores)
    fprs = [0.001, 0.01, 0.1]
    audit_calls: dict[str, Callable[[], object]] = {
        "membership_metrics (AUC, TPR@FPR, advantage, calibrated accuracy)":
            lambda: membership_metrics(scores, is_member),
        "epsilon_lower_bound (bonferroni_hull, the audit's)":
            lambda: epsilon_lower_bound(scores, is_member, delta=1e-5),
        "gdp_epsilon_estimate": lambda: gdp_epsilon_estimate(scores, is_member, delta=1e-5),
        "gdp_lower_bound": lambda: gdp_lower_bound(scores, is_member, delta=1e-5),
        "membership_intervals (BCa, 1,000 resamples)":
            lambda: membership_intervals(scores, is_member, fprs=fprs),
        "per_class_metrics (10 classes)": lambda: per_class_metrics(scores, is_member, labels),
        "most_exposed_members (20)": lambda: most_exposed_members(scores, is_member, 20),
    }
    building_blocks: dict[str, Callable[[], object]] = {
        "epsilon_lower_bound (split; not the audit's strategy)":
            lambda: epsilon_lower_bound(scores, is_member, delta=1e-5, threshold=Split()),
        "roc_curve": lambda: roc_curve(scores, is_member),
        "roc_auc": lambda: roc_auc(scores, is_member),
        "tpr_at_fprs (3)": lambda: tpr_at_fprs(scores, is_member, fprs),
        "advantage": lambda: advantage(scores, is_member),
        "calibrated_accuracy": lambda: calibrated_accuracy(scores, is_member, seed=0),
    }
    print(f"{args.scores:,} scores, best of {args.repeats}")
    total = 0.0
    for name, work in audit_calls.items():
        seconds = best_time(work, args.repeats)
        total += seconds
        print(f"  {name:<66} {seconds:7.3f}s")
    print(f"  total, what an audit computes: {total:.3f}s  (ratio to the 1 s budget: {total:.2f})")
    print("  other functions, each on its own:")
    for name, work in building_blocks.items():
        print(f"    {name:<64} {best_time(work, args.repeats):7.3f}s")


if __name__ == "__main__":
    main()
