"""Beyond membership (issue 13): attribute inference on diabetes and model inversion on digits,
each for a non-private target and DP targets, through auditml's Python API.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/beyond_membership.py [--seeds 0 1 2]
        [--skip-inversion] [--skip-attribute] [--inversion-epsilons 5 1] [--output-dir DIR]

(OMP_NUM_THREADS=1: on a loaded 2-core machine torch's default 2 threads wait on each other;
these small models then train and invert 10-60x slower: 994 s in all instead of 94 s here.)

Attribute inference: ``diabetes`` (sensitive attribute ``sex``), 150 members, 150 non-members;
the 142 remaining patients are the attacker's auxiliary data. Three targets per seed (``seed:``
draws the split, the initialisation and the batches):
  no DP      mlp_tabular, Adam lr 0.01, batch 16, 200 epochs (train accuracy 1.0: it memorises)
  DP ε=5, 1  the demo's DP recipe: batch 50 (Poisson), lr 0.01, 30 epochs, C=1, δ=1e-3
Each run is audited by ``run_audit(run, ["mia_threshold", "attribute_inference"])``.

Model inversion: the demo's digits configs (``auditml.demo.demo_configs``): the non-private
baseline (150 members, batch 16, 200 epochs) and the DP targets (ε=5: C=1, ε=1: C=0.5; batch
50, 30 epochs, δ=1e-4), each inverted by ``miface`` and ``tv`` with default settings. Each
gallery PNG is copied beside its record under ``<output-dir>/inversion/`` (one run holds one
gallery, so the second method would overwrite the first).

Measured 2026-12-01 (auditml 5928440: the inversion defaults of 98ea8ee) on 2 CPU cores shared
with other jobs (load 5-7), default flags, OMP_NUM_THREADS=1: 80 s in all (diabetes trainings
1.4-3 s without DP, 2-15 s with; digits baseline 7.6 s; each inversion 0.5-2.8 s). With torch's
default 2 threads (at a162f80): 994 s (no-DP trainings 85-98 s, the digits baseline 247 s, its
inversions 128-133 s), the same diabetes results, but a different digits CNN (its convolutions
sum in another order). Means over seeds 0, 1, 2 (adv:
advantage over imputation on members; sig: seeds where it is > 0 at p < 0.05; gap: accuracy on
members minus non-members)::

    target    val_acc MIA AUC  attack        acc mem  acc non   adv     sig   gap
    no DP      0.671   0.637   imputation     0.684    0.696    -       -    -0.011
                               model_output   0.676    0.729   -0.009   0/3  -0.053
                               confidence     0.691    0.522   +0.007   0/3  +0.169
    DP eps=5   0.709   0.520   imputation     0.684    0.696    -       -    -0.011
                               model_output   0.716    0.731   +0.031   1/3  -0.016
                               confidence     0.576    0.549   -0.109   0/3  +0.027
    DP eps=1   0.692   0.510   imputation     0.684    0.696    -       -    -0.011
                               model_output   0.718    0.733   +0.033   1/3  -0.016
                               confidence     0.529    0.524   -0.156   0/3  +0.004

No attack infers the members' sex better than imputation on the non-private model. Its
confidence attack is member-specific (gap +0.27 and +0.20, Fisher p < 0.001, on seeds 0 and 2)
but only as accurate as imputation on members. model_output beats imputation only on DP models
(seed 1: +0.107 [+0.040, +0.180] at ε=5, +0.080 [+0.013, +0.147] at ε=1), and by as much on
non-members: it learns what the model learned about the population, not about its members.

Model inversion, digits (evaluator: held-out accuracy 0.960; member closer: of 10 classes, the
reconstruction's nearest member is nearer than its nearest non-member, balanced sign test)::

    target                val_acc  method  eval acc  member closer  p
    dp_tutorial_baseline   0.937   miface    0.80        6/10      0.377
                                   tv        0.60        4/10      0.828
    dp_tutorial_eps5       0.698   miface    1.00        8/10      0.055
                                   tv        1.00        8/10      0.055
    dp_tutorial_eps1       0.414   miface    0.50       10/10      0.001
                                   tv        0.60        9/10      0.011

(At a162f80, before the per-method step sizes: miface 0.60 / 0.90 / 0.30 evaluator accuracy.)

The DP models' reconstructions lie nearer their members (8-10 of 10 classes; significant at
ε=1), the non-private CNN's no nearer its members than other digits (4-6 of 10), although the
ε=5 model's are the most recognisable (10 of 10) and the ε=1 model's the least (one reading,
not tested here: the smoother DP models' class maxima resemble the class average of their 150
members). As ``member_vs_nonmember`` says, rejecting its null shows
dependence on the training sample, not a copied individual.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.demo import demo_configs
from auditml.figures.audit_figures import draw_figure
from auditml.training import train

TRAIN_SIZE = 150
DELTA = 1e-3  # below 1/TRAIN_SIZE
NO_DP = {"epochs": 200, "learning_rate": 0.01}
DP_RECIPE = {"epochs": 30, "learning_rate": 0.01}
ATTRIBUTE_TARGETS: dict[str, float | None] = {"no DP": None, "DP eps=5": 5.0, "DP eps=1": 1.0}
QUIET = Console(quiet=True)


def attribute_config(output_dir: Path, target: str, seed: int) -> dict[str, Any]:
    """The raw config of one diabetes target (``target`` a key of ATTRIBUTE_TARGETS)."""
    epsilon = ATTRIBUTE_TARGETS[target]
    if epsilon is None:
        batch, training = 16, dict(NO_DP)
    else:
        batch = 50
        training = {**DP_RECIPE, "dp": {"enabled": True, "epsilon": epsilon, "delta": DELTA}}
    slug = "nodp" if epsilon is None else f"eps{epsilon:g}"
    return {
        "experiment_name": f"diabetes_{slug}_seed{seed}",
        "output_dir": str(output_dir),
        "seed": seed,
        "data": {"dataset": "diabetes", "train_size": TRAIN_SIZE, "batch_size": batch},
        "training": {"device": "cpu", **training},
    }


def train_run(raw: dict[str, Any]) -> tuple[Path, float, float]:
    """Train; return the run directory, validation accuracy and wall seconds."""
    config = parse_config(raw, raw["experiment_name"])
    started = time.perf_counter()
    result = train(config, console=QUIET)
    return config.run_dir, float(result.metrics["val_acc"]), time.perf_counter() - started


def attribute_rows(run_dir: Path) -> tuple[float, dict[str, dict[str, float]]]:
    """Membership AUC, and per attribute attack the numbers the note reports."""
    report = run_audit(run_dir, ["mia_threshold", "attribute_inference"])
    record = report.inference_audits["attribute_inference"]
    rows = {}
    for name, result in record.attacks.items():  # type: ignore[attr-defined]
        advantage = result.advantage_members
        rows[name] = {
            "acc_members": result.members.accuracy,
            "acc_nonmembers": result.nonmembers.accuracy,
            "advantage": advantage.advantage if advantage else float("nan"),
            "advantage_low": advantage.interval[0] if advantage else float("nan"),
            "advantage_high": advantage.interval[1] if advantage else float("nan"),
            "advantage_p": advantage.p_value if advantage else float("nan"),
            "gap": result.member_gap.gap,
            "gap_p": result.member_gap.p_value,
        }
    return report.outcomes[0].metrics.auc, rows


def attribute_benchmark(output_dir: Path, seeds: list[int]) -> dict[str, Any]:
    print(f"== attribute inference: diabetes, sex; {TRAIN_SIZE} members, {TRAIN_SIZE} "
          f"non-members, seeds {seeds}")
    print("   no DP: batch 16, Adam lr 0.01, 200 epochs; DP: batch 50, lr 0.01, 30 epochs, "
          f"C=1, delta={DELTA:g}")
    header = (f"{'target':<9} {'seed':>4} {'val_acc':>7} {'MIA AUC':>7}  {'attack':<12} "
              f"{'acc mem':>7} {'acc non':>7}  {'adv mem [95% CI]':<24} {'p':>6}  "
              f"{'gap':>6} {'p':>6}")
    print(header)
    results: dict[str, list[dict[str, Any]]] = {target: [] for target in ATTRIBUTE_TARGETS}
    for target in ATTRIBUTE_TARGETS:
        for seed in seeds:
            run_dir, val_acc, seconds = train_run(attribute_config(output_dir, target, seed))
            auc, rows = attribute_rows(run_dir)
            results[target].append({"seed": seed, "val_acc": val_acc, "auc": auc,
                                    "attacks": rows, "train_s": seconds, "run": str(run_dir)})
            for i, (name, row) in enumerate(rows.items()):
                lead = (f"{target:<9} {seed:>4} {val_acc:>7.3f} {auc:>7.3f}" if i == 0
                        else " " * 30)
                advantage = ("baseline" if name == "imputation" else
                             f"{row['advantage']:+.3f} [{row['advantage_low']:+.3f}, "
                             f"{row['advantage_high']:+.3f}]")
                p = "" if name == "imputation" else f"{row['advantage_p']:.3f}"
                print(f"{lead}  {name:<12} {row['acc_members']:>7.3f} "
                      f"{row['acc_nonmembers']:>7.3f}  {advantage:<24} {p:>6}  "
                      f"{row['gap']:>+6.3f} {row['gap_p']:>6.3f}")
    print(f"-- mean over {len(seeds)} seeds (p: seeds with p < 0.05)")
    for target, runs in results.items():
        mean = statistics.fmean
        lead = (f"{target:<9} {'mean':>4} {mean(r['val_acc'] for r in runs):>7.3f} "
                f"{mean(r['auc'] for r in runs):>7.3f}")
        for i, name in enumerate(runs[0]["attacks"]):
            rows = [r["attacks"][name] for r in runs]
            significant = sum(row["advantage_p"] < 0.05 for row in rows)
            advantage = ("baseline" if name == "imputation"
                         else f"{mean(row['advantage'] for row in rows):+.3f}")
            p = "" if name == "imputation" else f"{significant}/{len(rows)}"
            print(f"{lead if i == 0 else ' ' * 30}  {name:<12} "
                  f"{mean(row['acc_members'] for row in rows):>7.3f} "
                  f"{mean(row['acc_nonmembers'] for row in rows):>7.3f}  {advantage:<24} "
                  f"{p:>6}  {mean(row['gap'] for row in rows):>+6.3f}")
    return results


def inversion_benchmark(output_dir: Path, epsilons: list[int]) -> list[dict[str, Any]]:
    configs = demo_configs(output_dir)
    names = ["dp_tutorial_baseline", *(f"dp_tutorial_eps{epsilon}" for epsilon in epsilons)]
    gallery_dir = output_dir / "inversion"
    gallery_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n== model inversion: digits, the demo's configs {names}, default settings")
    print(f"{'target':<22} {'val_acc':>7} {'method':<7} {'eval acc':>8} {'evaluator':>9} "
          f"{'member closer':>13} {'p':>6} {'wall s':>7}  gallery")
    found = []
    for name in names:
        run_dir, val_acc, _ = train_run(configs[name])
        for method in ("miface", "tv"):
            started = time.perf_counter()
            report = run_audit(run_dir, ["model_inversion"],
                               {"model_inversion": {"method": method}}, draw=draw_figure)
            seconds = time.perf_counter() - started
            record: Any = report.inference_audits["model_inversion"]
            gallery = gallery_dir / f"{name}_{method}.png"
            shutil.copyfile(run_dir / "audit" / "model_inversion_gallery.png", gallery)
            (gallery_dir / f"{name}_{method}.json").write_text(
                json.dumps(record.model_dump(mode="json"), indent=1), encoding="utf-8")
            closer = f"{record.member_closer}/{len(record.classes)} ({record.ties} tie)"
            print(f"{name:<22} {val_acc:>7.3f} {method:<7} {record.evaluation_accuracy:>8.2f} "
                  f"{record.evaluator_held_out_accuracy:>9.3f} {closer:>13} "
                  f"{record.p_value:>6.3f} {seconds:>7.1f}  {gallery}")
            found.append({"target": name, "method": method, "val_acc": val_acc,
                          "record": record.model_dump(mode="json"), "wall_s": seconds,
                          "gallery": str(gallery), "run": str(run_dir)})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-attribute", action="store_true")
    parser.add_argument("--skip-inversion", action="store_true")
    parser.add_argument("--inversion-epsilons", type=int, nargs="*", choices=[1, 5],
                        default=[5, 1], help="the demo's DP targets inverted beside the baseline")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="where runs go (default: a new folder under the system's temp dir)")
    args = parser.parse_args()
    output_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="auditml_beyond_"))
    print(f"runs under {output_dir}")
    started = time.perf_counter()
    summary: dict[str, Any] = {}
    if not args.skip_attribute:
        summary["attribute_inference"] = attribute_benchmark(output_dir, args.seeds)
    if not args.skip_inversion:
        summary["model_inversion"] = inversion_benchmark(output_dir, args.inversion_epsilons)
    path = output_dir / "beyond_membership.json"
    path.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"\nsummary {path}; total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
