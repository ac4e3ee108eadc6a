"""What the one-run white-box audit can see: its rates on a simulated DP-SGD, many seeds in minutes.

The all-iterates observations of Dirac gradient canaries are, up to the real examples'
interference (measured negligible on the digits CNN: the OUT canaries' observations have std
5.69 for σ = 5.64), independent draws of the subsampled Gaussian: per step, N(0, σ²) plus 1 when
the canary is included and Poisson-sampled. This simulates them directly for the setting of
``benchmarks/catch_bugs.py`` (q = 1/3, 90 steps, δ = 1e-4, the PRV accountant) and runs the
audit's own claim test and bounds (:func:`auditml.audit.canaries.white_box.check_claim`), so the
rates it prints are the ones the design predicts for those training runs.

    python benchmarks/one_run_power.py [--epsilons 1 2 4 8] [--canaries 1000 4000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from opacus.accountants.utils import get_noise_multiplier

from auditml.audit.canaries.base import PrivacyClaim
from auditml.audit.canaries.scores import all_iterates_scores, estimate_noise_multiplier
from auditml.audit.canaries.white_box import check_claim

RATE, STEPS, DELTA = 1 / 3, 90, 1e-4


def audit(sigma: float, factor: float, canaries: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    included = rng.random(canaries) < 0.5
    sampled = (rng.random((STEPS, canaries)) < RATE) & included
    observations = sampled + rng.normal(0.0, sigma * factor, (STEPS, canaries))
    noise = estimate_noise_multiplier(observations, clip=1.0)
    scores = all_iterates_scores(observations, noise_multiplier=noise, sample_rate=RATE, clip=1.0)
    claim = PrivacyClaim("prv", [(sigma, RATE, STEPS)], 0.0, DELTA)
    return check_claim(scores, included, claim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--canaries", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--noise-factor", type=float, default=0.5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("claimed ε | canaries | mechanism | VIOLATION | family ε lb / claimed (median) | s")
    for epsilon in args.epsilons:
        sigma = get_noise_multiplier(target_epsilon=epsilon, target_delta=DELTA,
                                     sample_rate=RATE, steps=STEPS, accountant="prv")
        for canaries in args.canaries:
            for label, factor in (("correct", 1.0), ("broken", args.noise_factor)):
                start = time.perf_counter()
                results = [audit(sigma, factor, canaries, seed) for seed in range(args.seeds)]
                flagged = sum(bool(result["violation"]) for result in results)
                ratio = np.median([float(result["family_epsilon_lower_bound"])  # type: ignore[arg-type]
                                   for result in results]) / epsilon
                print(f"{epsilon:g} | {canaries} | {label} | {flagged}/{args.seeds} | "
                      f"{ratio:.2f} | {time.perf_counter() - start:.0f}", flush=True)


if __name__ == "__main__":
    main()
