"""How often the bound under the Gaussian assumption exceeds a correct DP-SGD's claim.

The bound (``gaussian_bound`` in every canary record) is reported beside the verdict, not in it:
its validity rests on the canaries' scores being Gaussian, which DP-SGD does not promise. This
measures what would happen if it were in the verdict: on the simulated all-iterates canaries of
``benchmarks/one_run_power.py`` (q = 1/3, 90 steps, δ = 1e-4, PRV accountant), the fraction of
correct runs whose bound exceeds the claimed ε (false alarms; at 95 % a valid bound exceeds
the true ε at most 5 % of the time, and the true ε is at most the claim), and of runs with the
noise scaled by ``--noise-factor`` whose bound exceeds it (detections). Only the scores and the
bound are computed (not the whole audit), so thousands of seeds take minutes.

    python benchmarks/one_run_gaussian_validity.py [--epsilons 2 4 8] [--seeds 500]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from one_run_power import DELTA, RATE, STEPS, simulated_canaries
from opacus.accountants.utils import get_noise_multiplier

from auditml.audit.canaries.base import gaussian_bound
from auditml.audit.canaries.white_box import AllIteratesAudit
from auditml.metrics.dp.accounting import accountant_epsilon


def bound(sigma: float, factor: float, canaries: int, seed: int) -> float:
    """The all-iterates audit's ε lower bound under the Gaussian assumption, one simulated run."""
    record = simulated_canaries(sigma, factor, canaries, seed)
    scores = AllIteratesAudit().scores(record)
    result = gaussian_bound({"all_iterates": scores}, record.included, delta=DELTA, confidence=0.95)
    return 0.0 if result is None else result.epsilon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--noise-factor", type=float, default=0.5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("claimed ε | mechanism | bound > claimed | median bound / claimed | s")
    for epsilon in args.epsilons:
        sigma = get_noise_multiplier(target_epsilon=epsilon, target_delta=DELTA,
                                     sample_rate=RATE, steps=STEPS, accountant="prv")
        claimed = accountant_epsilon([(sigma, RATE, STEPS)], mechanism="prv", delta=DELTA)
        for label, factor in (("correct", 1.0), ("broken", args.noise_factor)):
            start = time.perf_counter()
            bounds = np.array([bound(sigma, factor, args.canaries, seed)
                               for seed in range(args.seeds)])
            print(f"{epsilon:g} | {label} | {int((bounds > claimed).sum())}/{args.seeds} | "
                  f"{np.median(bounds) / claimed:.2f} | {time.perf_counter() - start:.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
