"""Does the audit catch a broken DP-SGD? Correct runs vs runs with a fraction of the noise.

For each claimed ε, trains the tutorial's digits CNN twice with m gradient canaries — once
correctly, once with the noise silently scaled by ``--noise-factor`` while the accountant still
assumes the full σ (the run prints the claimed ε either way) — and audits each under the
all-iterates and last-iterate threat models; then the same pair with m black-box (mislabeled
input) canaries for ``dp_audit``. Prints the ε lower bound, the f-DP test's p-value, the
mechanism check (all iterates: the upper bound on the noise multiplier the sums carry, and the
true ε of DP-SGD at that noise and the measured sampling rate, from below), the ε lower bound
under the Gaussian assumption with its smaller normality p-value (reported beside the verdict,
not in it), the verdict and the time of each.

    python benchmarks/catch_bugs.py [--epsilons 1 2 4 8] [--noise-factor 0.5] [--seeds 1]
        [--kinds gradient mislabeled] [--canaries 1000]

With several seeds it ends with how often each audit said VIOLATION (the rates the issue asks
for: the broken runs should be flagged, the correct ones not).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import auditml.training.dp_sgd as dp_sgd
from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.training import train


@contextmanager
def noise_scaled(factor: float | None) -> Iterator[None]:
    """The planted bug: the fast path adds ``factor`` times the noise the accountant assumes."""
    original = dp_sgd.FastDPSGD.__init__
    if factor is not None:
        def init(self: dp_sgd.FastDPSGD, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.noise_multiplier *= factor

        dp_sgd.FastDPSGD.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        dp_sgd.FastDPSGD.__init__ = original  # type: ignore[method-assign]


def _config(name: str, epsilon: float, kind: str, args: argparse.Namespace, seed: int,
            out: Path) -> dict[str, Any]:
    return {
        "experiment_name": name, "output_dir": str(out), "seed": seed,
        "data": {"dataset": "digits", "train_size": 150, "batch_size": 50},
        "training": {
            "epochs": 30, "learning_rate": 0.01, "device": "cpu",
            "canaries": {"count": args.canaries, "kind": kind},
            "dp": {"enabled": True, "epsilon": epsilon, "delta": 1e-4},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--noise-factor", type=float, default=0.5)
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", default=["gradient", "mislabeled"],
                        choices=["gradient", "mislabeled"])
    args = parser.parse_args()
    console = Console(width=150)
    table = Table(title=f"Correct DP-SGD vs noise × {args.noise_factor:g} (digits CNN, "
                  f"m={args.canaries} canaries)")
    flagged: dict[tuple[float, str, str], list[bool]] = {}
    for header in ("claimed ε", "mechanism", "seed", "threat model", "ε lower bound",
                   "ε lb, DP-SGD family", "f-DP p-value", "σ ≤ (claimed)",
                   "ε lb at that σ", "ε lb if Gaussian (normality p)", "verdict", "train s",
                   "audit s"):
        table.add_column(header, justify="left" if header in ("mechanism", "threat model",
                                                              "verdict") else "right")
    with tempfile.TemporaryDirectory() as scratch:
        for epsilon in args.epsilons:
            for seed in range(args.seeds):
                for label, factor in (("correct", None), ("broken", args.noise_factor)):
                    for kind, audits in (
                        ("gradient", ["dp_audit_all_iterates", "dp_audit_last_iterate"]),
                        ("mislabeled", ["dp_audit"]),
                    ):
                        if kind not in args.kinds:
                            continue
                        name = f"e{epsilon:g}_{label}_{kind}_{seed}"
                        config = parse_config(_config(name, epsilon, kind, args, seed,
                                                      Path(scratch)))
                        start = time.perf_counter()
                        with noise_scaled(factor):
                            train(config, console=Console(file=io.StringIO()))
                        trained = time.perf_counter() - start
                        start = time.perf_counter()
                        records = run_audit(config.run_dir, audits).canary_audits
                        audited = time.perf_counter() - start
                        for record in records.values():
                            test = record.claim_test
                            p_value = None if test is None else test.p_value
                            family = None if test is None else test.family_epsilon_lower_bound
                            check = record.mechanism_check
                            noise = None if check is None else check.noise
                            gaussian = record.gaussian_bound
                            flagged.setdefault((epsilon, label, record.threat_model), []).append(
                                bool(record.violation))
                            table.add_row(
                                f"{epsilon:g}", label, str(seed),
                                record.threat_model.replace("_", " "),
                                f"{record.epsilon_lower_bound:.2f}",
                                "—" if family is None else f"{family:.2f}",
                                "—" if p_value is None else f"{p_value:.2g}",
                                "—" if noise is None else
                                f"{noise.upper:.3f} ({noise.claimed:.3f})",
                                "—" if check is None else
                                f"{check.family_epsilon_lower_bound:.2f}",
                                "—" if gaussian is None else
                                f"{gaussian.epsilon:.2f} ({gaussian.normality_p:.2g})",
                                "VIOLATION" if record.violation else "consistent",
                                f"{trained:.0f}", f"{audited:.1f}",
                            )
                        console.print(f"{name}: done", highlight=False)
                        for record in records.values():  # as it goes: long runs lose nothing
                            test = record.claim_test
                            console.print(
                                f"  {record.threat_model}: ε lb {record.epsilon_lower_bound:.2f},"
                                f" family {test and test.family_epsilon_lower_bound}, p "
                                f"{test and test.p_value}, mechanism check "
                                f"{record.mechanism_check}, "
                                f"Gaussian {record.gaussian_bound}, "
                                f"violation {record.violation}, train "
                                f"{trained:.0f} s, audit {audited:.1f} s", highlight=False)
    console.print(table)
    for (epsilon, label, threat_model), verdicts in flagged.items():
        console.print(f"claimed ε={epsilon:g} {label} {threat_model.replace('_', ' ')}: "
                      f"VIOLATION in {sum(verdicts)} of {len(verdicts)} seeds", highlight=False)


if __name__ == "__main__":
    main()
