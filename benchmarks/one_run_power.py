"""What the one-run white-box audit can see: its rates on a simulated DP-SGD, many seeds in minutes.

The all-iterates observations of Dirac gradient canaries are, up to the real examples'
interference (measured negligible on the digits CNN: the OUT canaries' observations have std
5.69 for σ = 5.64), independent draws of the subsampled Gaussian: per step, N(0, σ²) plus 1 when
the canary is included and Poisson-sampled. This simulates them directly for the setting of
``benchmarks/catch_bugs.py`` (q = 1/3, 90 steps, δ = 1e-4, the PRV accountant) and runs the
audit itself (:class:`auditml.audit.canaries.white_box.AllIteratesAudit`: the curve test, the
mechanism check and their bounds), so the rates it prints are the ones the design predicts for
those training runs (batch sizes drawn as Poisson sampling of the 150 members draws them).
Columns: how often the verdict says VIOLATION; how often the curve test alone rejects (at its
4 % share); and the medians over seeds, divided by the claimed ε, of the record's reported
assumption-free bound (:func:`auditml.metrics.fdp_epsilon_audit` at the full 95 %), of the
curve test's
assumption-free bound (the largest (ε, δ)-DP curve it rejects), of its DP-SGD-family bound, of
the mechanism check's one, and of the bound under the Gaussian assumption (the record's
``gaussian_bound``; not in the verdict), with how often that bound alone exceeds the claim
(what flagging on it would do) and its median normality p-value.

    python benchmarks/one_run_power.py [--epsilons 1 2 4 8] [--canaries 1000 4000] [--seeds 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from opacus.accountants.utils import get_noise_multiplier

from auditml.audit.canaries.base import CanaryEvidence, PrivacyClaim
from auditml.audit.canaries.white_box import AllIteratesAudit
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics.dp.accounting import accountant_epsilon
from auditml.records import CanaryRecord, RunFacts

RATE, STEPS, DELTA, MEMBERS = 1 / 3, 90, 1e-4, 150


def simulated_canaries(sigma: float, factor: float, canaries: int, seed: int
                       ) -> GradientCanaryRecord:
    """One simulated DP-SGD run's Dirac gradient canaries: each included by a fair coin, sampled
    at RATE for STEPS steps, its coordinate's noisy sum carrying ``factor`` times the noise
    ``sigma`` the accountant assumes."""
    rng = np.random.default_rng(seed)
    included = rng.random(canaries) < 0.5
    sampled = (rng.random((STEPS, canaries)) < RATE) & included
    observations = sampled + rng.normal(0.0, sigma * factor, (STEPS, canaries))
    return GradientCanaryRecord(
        direction="dirac", seed=seed, coordinates=np.arange(canaries), dimension=canaries,
        included=included, sample_rate=RATE, noise_multiplier=sigma, max_grad_norm=1.0,
        observations=observations.astype(np.float32), sampled=sampled,
        initial=np.zeros(canaries, np.float32), final=np.zeros(canaries, np.float32),
        batch_sizes=rng.binomial(MEMBERS, RATE, STEPS), dataset_size=MEMBERS,
    )


def audit(sigma: float, factor: float, canaries: int, seed: int) -> CanaryRecord:
    record = simulated_canaries(sigma, factor, canaries, seed)
    history = [(sigma, RATE, STEPS)]
    claimed = accountant_epsilon(history, mechanism="prv", delta=DELTA)
    return AllIteratesAudit().run(CanaryEvidence(
        model=None, device=torch.device("cpu"), delta=DELTA,
        run_facts=RunFacts(experiment_name="simulated", dp_enabled=True, epsilon=claimed,
                           delta=DELTA),
        gradient_canaries=record, claim=PrivacyClaim("prv", history, claimed, DELTA),
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--canaries", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--noise-factor", type=float, default=0.5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("claimed ε | canaries | mechanism | VIOLATION | curve test rejects | "
          "reported lb / claimed | curve-test lb / claimed | curve-test family lb / claimed | "
          "mechanism-check lb / claimed | Gaussian lb / claimed | Gaussian lb > claimed | "
          "normality p | s")
    for epsilon in args.epsilons:
        sigma = get_noise_multiplier(target_epsilon=epsilon, target_delta=DELTA,
                                     sample_rate=RATE, steps=STEPS, accountant="prv")
        for canaries in args.canaries:
            for label, factor in (("correct", 1.0), ("broken", args.noise_factor)):
                start = time.perf_counter()
                results = [audit(sigma, factor, canaries, seed) for seed in range(args.seeds)]
                flagged = sum(bool(result.violation) for result in results)
                curve = [result.claim_test for result in results if result.claim_test]
                noise = [result.mechanism_check for result in results if result.mechanism_check]
                rejects = sum(test.violation for test in curve)
                reported = np.median([result.epsilon_lower_bound for result in results])
                free = np.median([test.epsilon_lower_bound for test in curve])
                family = np.median([test.family_epsilon_lower_bound for test in curve])
                measured = np.median([check.family_epsilon_lower_bound for check in noise])
                gaussians = [result.gaussian_bound for result in results if result.gaussian_bound]
                gaussian = np.median([bound.epsilon for bound in gaussians])
                beyond = sum(bound.epsilon > result.run.epsilon
                             for bound, result in zip(gaussians, results, strict=True))
                normality = np.median([bound.normality_p for bound in gaussians])
                print(f"{epsilon:g} | {canaries} | {label} | {flagged}/{args.seeds} | "
                      f"{rejects}/{args.seeds} | {reported / epsilon:.2f} | "
                      f"{free / epsilon:.2f} | {family / epsilon:.2f} | "
                      f"{measured / epsilon:.2f} | {gaussian / epsilon:.2f} | "
                      f"{beyond}/{len(gaussians)} | {normality:.2g} | "
                      f"{time.perf_counter() - start:.0f}", flush=True)


if __name__ == "__main__":
    main()
