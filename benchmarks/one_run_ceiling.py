"""The one-run ideal-mechanism figure: assumption-free ε lower bounds against the true ε, and the
ceiling no assumption-free audit can pass.

The ideal mechanism is simulated directly: m canaries, each included with probability 1/2, each
observed as N(μ, 1) when included and N(0, 1) when not (μ-GDP, whose true ε at δ is known). For
each (δ, μ, m) it prints, as medians over seeds divided by the true ε: Steinke, Nasr and
Jagielski's bound (``one_run_audit``), the f-DP test's (ε, δ) bound (``fdp_epsilon_audit``, what
the canary audits report), the bound under the Gaussian assumption (``gaussian_one_run_audit``,
exact here since the ideal mechanism's scores are Gaussian; beyond the ceiling because it is not
assumption-free), and the ceiling of :mod:`auditml.metrics.dp.one_run_limits` (the most any audit
valid for every (ε, δ)-DP algorithm can show in median; a proof, not a measurement). All at 95 %.

    python benchmarks/one_run_ceiling.py [--mus 0.5 1 2] [--canaries 1000 10000] [--seeds 9]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from auditml.metrics import fdp_epsilon_audit, gaussian_one_run_audit, one_run_audit
from auditml.metrics.dp.gdp import gdp_epsilon as _gdp_epsilon
from auditml.metrics.dp.one_run_limits import gaussian_one_run_ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mus", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--deltas", type=float, nargs="+", default=[1e-5, 1e-4])
    parser.add_argument("--canaries", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--seeds", type=int, default=9)
    args = parser.parse_args()
    print("δ | μ | true ε | canaries | Steinke lb / ε | f-DP (ε,δ) lb / ε | "
          "Gaussian-assumption lb / ε | ceiling (any assumption-free) / ε | s")
    for delta in args.deltas:
        for mu in args.mus:
            true = _gdp_epsilon(mu, delta)
            for canaries in args.canaries:
                start = time.perf_counter()
                rng = np.random.default_rng(0)
                steinke, f_dp, gaussian = [], [], []
                for _ in range(args.seeds):
                    included = rng.random(canaries) < 0.5
                    scores = rng.normal(mu * included, 1.0)
                    steinke.append(one_run_audit(scores, included, delta=delta).epsilon)
                    f_dp.append(fdp_epsilon_audit(scores, included, delta=delta).epsilon)
                    gaussian.append(gaussian_one_run_audit(scores, included, delta=delta).epsilon)
                ceiling = gaussian_one_run_ceiling(mu, canaries, delta=delta)
                print(f"{delta:g} | {mu:g} | {true:.2f} | {canaries} | "
                      f"{np.median(steinke) / true:.2f} | {np.median(f_dp) / true:.2f} | "
                      f"{np.median(gaussian) / true:.2f} | "
                      f"{ceiling / true:.2f} | {time.perf_counter() - start:.0f}", flush=True)


if __name__ == "__main__":
    main()
