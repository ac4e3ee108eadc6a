"""The arbiter for attack defaults: every registered attack, at its defaults and tuned, over seeds.

For each target and seed, auditml trains the target (:func:`auditml.training.train`), then the
reference models (the largest count of ``--models``) and the shadow models once, through the audit
runner's own resources (:class:`auditml.audit.runner.RunResources`, saved in the run directory),
and runs through the audit core (:func:`auditml.audit.core.run_attacks`):

- every registered attack at its defaults (so an attack added to the registry appears here with
  no change to this file), and the tuned settings of :data:`TUNED` (LiRA's variance, offline
  mode and augmentations; RMIA's γ, offline a and online mode);
- each attack that needs reference models with 2, 4, 8, 16 of them (``--models``): the first k of
  the trained models, which are complementary pairs (model 2j+1 trained on the other half of
  model 2j's), so every subset keeps each example IN for exactly half of its models and the
  sweep retrains nothing. The models' logits on an input are computed once and shared.

Each cell is the mean over seeds of the AUC and the TPR at 0.1 % and 1 % FPR, with a 95 % BCa
bootstrap interval over *examples* (:func:`auditml.metrics.mean_membership_intervals`: each seed's
members and non-members resampled separately, the statistic the mean over seeds). The interval
is the sampling noise of the audited examples of these seeds; the seeds' training randomness is
held fixed (its spread is in the JSON log: ``per_seed``).

Targets (``--targets``): ``fashion`` is issue 30's setting (Fashion-MNIST, ``cnn_28x28``, 20 epochs
Adam, 1,000 members + 1,000 non-members, 2,000 population images, 8 reference models on
complementary halves); ``digits`` (scikit-learn's 8x8 digits, ``cnn_8x8``) and ``diabetes``
(tabular, ``mlp_tabular``; 442 patients, so 110 + 110 audited and TPR at 0.1 % FPR means no
false positive at all) need no file. The shadow-model attack uses ``--shadow-models`` (8)
models trained on population data.

    python benchmarks/attack_strength.py --seeds 5 --log attack_strength.json
    python benchmarks/attack_strength.py --targets digits --seeds 2 --models 2 4 \\
        --train-size 100 --epochs 10          # a few minutes on 2 CPU cores

The ``s`` column is each attack's seconds fitting and scoring; the reference models' logits are
shared, so the first variant to query an input pays for them and the others do not.

``--work-dir D`` keeps the run directories (targets, reference and shadow models): a rerun with
the same settings reuses them, so a killed run resumes. Absolute seconds are for the machine
that ran; compare rows with each other.

``--attacks A [B ...]`` measures only those attacks (shadow models are trained only for
``mia_shadow``): ``mia_boundary_distance``'s label queries (1,000 per example) took most of the
15 minutes a Fashion-MNIST seed's attacks took with every attack.

Fashion-MNIST, issue 30's setting, seeds 0-4, with the defaults of issue 30 (RMIA online, T = 2,
ties broken; LiRA variance auto); 2 shared CPU cores, per seed target 15-110 s and 16 reference
models 65-140 s when trained, attacks 36-67 s on kept models; AUC / TPR@0.1% / TPR@1% FPR,
mean over the 5 seeds [95 % BCa interval over examples]:

    python benchmarks/attack_strength.py --targets fashion --seeds 5 \
        --attacks mia_threshold mia_lira mia_rmia mia_qmia mia_label_only \
        --work-dir fashion_runs --log attack_strength_fashion.json

- 8 reference models: RMIA default 0.682 [0.671, 0.692] / 4.8 % [2.7, 6.0] / 10.7 % [8.7, 12.0]
  (per seed TPR@0.1% 5.6, 3.3, 3.2, 6.8, 5.3; TPR@1% 10.5, 7.2, 10.2, 13.5, 12.1); online
  with γ = 1 or 2 gives the same figures (ties broken by LR(x): the order does not depend on γ);
  offline γ = 2 0.671 / 4.2 % / 10.4 %; offline a = 0.33 0.664 / 3.9 % / 9.5 %. LiRA default
  (variance fixed below 64 models) 0.649 / 2.8 % / 8.0 %; per-example variance 0.624 / 0.3 % /
  2.6 %; offline 0.633 / 2.0 % / 7.0 %; flip_shift 0.613 / 2.2 % / 5.3 %.
- No reference models: QMIA 0.613 / 0.3 % / 2.3 %; loss threshold 0.569 / 0.0 % / 0.8 %;
  label-only (augmentations) 0.554 / 0.0 % / 0.0 %.
- Reference models swept (2 / 4 / 8 / 16), AUC / TPR@0.1% / TPR@1%: RMIA default 0.678 / 3.1 %
  / 9.6 %, 0.683 / 4.9 % / 11.3 %, 0.682 / 4.8 % / 10.7 %, 0.687 / 6.1 % / 11.5 %; LiRA default
  0.603 / 1.7 % / 4.8 %, 0.636 / 2.3 % / 5.4 %, 0.649 / 2.8 % / 8.0 %, 0.660 / 4.5 % / 8.6 %.
  RMIA with 2 models beats LiRA with 8 in AUC and TPR@1% on each of the 5 seeds; at 0.1 % FPR
  in 3 of 5 (means 3.1 % against 2.8 %).

The multi-signal attack (``mia_multi_signal``: RMIA's log-ratios at T = 1, 2, 4 and LiRA's
online and offline statistics, weighed by a logistic regression learned with each reference
model playing the target), the same kept models and seeds (``--attacks mia_rmia mia_lira
mia_multi_signal --models 2 8 16``; a work dir kept with 16 reference models is reused only
when 16 is among ``--models``, else they are retrained), against RMIA's default:

- 8 reference models: 0.683 [0.672, 0.693] / 4.8 % [3.0, 5.8] / 11.3 % [9.9, 13.0] against
  0.682 / 4.8 % / 10.7 % (per seed TPR@0.1% 6.7, 3.0, 2.7, 5.3, 6.4: above RMIA's in 2 seeds
  of 5; TPR@1% 12.6, 8.1, 10.2, 12.7, 12.8: above in 3, equal in 1; AUC within 0.003 in each).
- 2 / 16 reference models: 0.675 / 3.0 % / 9.4 % (RMIA 0.678 / 3.1 % / 9.6 %); 0.688 /
  6.2 % / 11.6 % (RMIA 0.687 / 6.1 % / 11.5 %).
- Learned weights (standardised signals, seed 0, 8 models): RMIA T = 2 1.40, T = 1 -0.34,
  T = 4 -0.04, LiRA online 0.17, offline 0.09 — the combination is RMIA's T = 2 statistic
  with small corrections. It adds no power beyond the intervals' noise: RMIA stays the
  default. (It needs no population data, RMIA does.)

Before those defaults (seeds 0-1, every attack): RMIA offline, γ = 1, a tuned 0.646 / 2.8 % /
8.6 % (a = 0.33, γ = 1: 0.0 % at 0.1 % FPR on seed 0, the tie at the top score); shadow models
0.610 / 0.5 % / 2.1 %.

Digits and diabetes, every attack, seeds 0-4, the same defaults (``--targets digits diabetes
--seeds 5``, 2 CPU cores, 15-24 s a digits seed and 6 s a diabetes seed), 8 reference models:

- digits (500 + 500): RMIA 0.642 / 3.0 % / 6.9 %; LiRA 0.612 / 2.4 % / 4.8 % (per-example
  variance 0.601 / 0.3 % / 2.4 %); shadow 0.553 / 0.5 % / 2.2 %; QMIA 0.548 / 0.9 % / 2.2 %;
  loss threshold 0.540 / 0.1 % / 1.0 %; boundary distance 0.537 / 0.2 % / 1.0 %; label-only
  0.528 / 0.0 % / 0.6 %. With 2 reference models RMIA gives 0.627 / 2.8 % / 5.7 %.
- diabetes (110 + 110, so TPR at 0.1 % FPR is the TPR at no false positive): RMIA 0.685 /
  6.0 % / 7.6 %; LiRA 0.641 / 2.5 % / 4.9 %; QMIA 0.630 / 3.1 % / 4.7 %; threshold 0.558 /
  1.3 % / 2.4 %; shadow 0.554 / 1.1 % / 3.1 %; boundary distance 0.545 / 1.8 % / 2.2 %;
  label-only 0.569 / 0.0 % / 0.0 %. With 2 reference models RMIA gives 0.675 / 5.1 % / 7.1 %.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from auditml.attacks import ATTACKS, MembershipAttack, ReferenceModels, attacks_of
from auditml.audit.core import GivenResources, run_attacks
from auditml.audit.runner import RunResources
from auditml.config import AuditMLConfig, parse_config
from auditml.data import select
from auditml.errors import AuditMLError
from auditml.fileio import check_writable, write_json
from auditml.metrics import mean_membership_intervals
from auditml.records import RunFacts
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, load_dataset, train
from auditml.training.device import resolve_device

FPRS = (0.001, 0.01)
MODEL_COUNTS = (2, 4, 8, 16)
HEADLINE_MODELS = 8
"""The reference-model count of the first table (issue 30's setting), when swept."""
RESAMPLES = 1000


@dataclass(frozen=True)
class TargetSetting:
    """How one target is trained and audited (sizes may be shrunk from the command line)."""

    dataset: str
    arch: str
    train_size: int
    epochs: int
    population_size: int
    learning_rate: float = 0.001
    batch_size: int = 64

    def config(self, name: str, seed: int, output_dir: Path, data_dir: Path,
               reference_models: int, device: str = "cpu") -> AuditMLConfig:
        return parse_config({
            "experiment_name": name,
            "seed": seed,
            "output_dir": str(output_dir),
            "data": {"dataset": self.dataset, "train_size": self.train_size,
                     # a --train-size below the batch size takes batches of the whole set
                     "batch_size": min(self.batch_size, self.train_size),
                     "data_dir": str(data_dir),
                     "download": False},
            "model": {"arch": self.arch},
            "training": {"epochs": self.epochs, "learning_rate": self.learning_rate,
                         "optimizer": "adam", "device": device},
            "audit": {"reference_models": reference_models,
                      "population_size": self.population_size},
        }, "attack_strength")


TARGETS: dict[str, TargetSetting] = {
    # Issue 30's setting (the figures it quotes for auditml and LeakPro).
    "fashion": TargetSetting("fashion_mnist", "cnn_28x28", train_size=1000, epochs=20,
                             population_size=2000),
    # 1,797 images: 500 + 500 audited, the other 797 (the validation set) are the population.
    "digits": TargetSetting("digits", "cnn_8x8", train_size=500, epochs=30, population_size=797),
    # 442 patients: 110 + 110 audited, the other 222 are the population.
    "diabetes": TargetSetting("diabetes", "mlp_tabular", train_size=110, epochs=100,
                              population_size=222, batch_size=32),
}

TUNED: dict[str, tuple[dict[str, Any], ...]] = {
    # Carlini et al. 2022: a global variance below ~64 models; the offline test; their
    # augmented queries (images only: refused on tabular rows by the attack itself).
    "mia_lira": (
        {"variance": "fixed"},
        {"variance": "per_example"},
        {"mode": "offline", "variance": "fixed"},
        {"augmentations": "flip_shift", "variance": "fixed"},
    ),
    # Zarifzadeh et al. 2024: γ; offline a given (0.33, LeakPro's) or tuned (None); online.
    "mia_rmia": (
        {"mode": "offline", "gamma": 2.0},
        {"mode": "offline", "a": 0.33, "gamma": 1.0},
        {"mode": "offline", "a": 0.33, "gamma": 2.0},
        {"mode": "online", "gamma": 1.0},
        {"mode": "online", "gamma": 2.0},
    ),
}
"""Settings tried beside each attack's defaults; one equal to the defaults is left out."""


@dataclass(frozen=True)
class Variant:
    """One attack with given settings (``tuned`` False: the attack's defaults)."""

    attack: str
    settings: dict[str, Any]
    tuned: bool

    @property
    def label(self) -> str:
        if not self.tuned:
            return "default"
        return ", ".join(f"{key}={value}" for key, value in self.settings.items())

    def build(self) -> MembershipAttack:
        return ATTACKS.get(self.attack)(**self.settings)


def variants(input_shape: tuple[int, ...], *, skipped: list[str] | None = None,
             attacks: Sequence[str] | None = None) -> list[Variant]:
    """Every registered attack (or those named in ``attacks``) at its defaults, then the
    :data:`TUNED` settings that differ from the defaults and suit inputs of ``input_shape``; why
    any was left out goes to ``skipped``."""
    found: list[Variant] = []
    for name in attacks_of("classification") if attacks is None else attacks:
        default = ATTACKS.get(name)()
        found.append(Variant(name, {}, tuned=False))
        for settings in TUNED.get(name, ()):
            variant = Variant(name, settings, tuned=True)
            try:
                attack = variant.build()
                attack.check_inputs(input_shape)
            except AuditMLError as error:  # e.g. a setting another version renamed
                if skipped is not None:
                    skipped.append(f"{name} ({variant.label}): {error}")
                continue
            if attack.settings() != default.settings():
                found.append(variant)
    return found


class SharedLogits:
    """Reference models whose logits on an input are computed once and shared by every subset.

    LiRA, RMIA and their tuned settings all query the same models on the same inputs; with the
    sweep over model counts, each query would otherwise run 4 x (number of variants) times.
    """

    def __init__(self, models: ReferenceModels) -> None:
        self.models = models
        self._memo: dict[bytes, np.ndarray] = {}

    def logits(self, x: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(x)
        key = hashlib.sha256(f"{data.dtype}{data.shape}".encode() + data.tobytes()).digest()
        if key not in self._memo:
            self._memo[key] = self.models.logits(data)
        return self._memo[key]

    def subset(self, count: int) -> ReferenceSubset:
        if count > len(self.models):
            raise ValueError(f"{count} reference models asked for, {len(self.models)} trained")
        return ReferenceSubset(self, count)


@dataclass(frozen=True)
class ReferenceSubset:
    """The first ``count`` models of a :class:`SharedLogits` (the ReferenceModels protocol)."""

    shared: SharedLogits
    count: int

    @property
    def keep(self) -> np.ndarray:
        return np.asarray(self.shared.models.keep)[: self.count]

    def __len__(self) -> int:
        return self.count

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.shared.logits(x)[: self.count]


@dataclass(frozen=True)
class Measurement:
    """One variant on one seed's target, with ``models`` reference (or shadow) models."""

    target: str
    variant: Variant
    models: int
    seed: int
    auc: float
    tpr_at_fpr: dict[float, float]
    scores: np.ndarray
    is_member: np.ndarray
    seconds: float
    fitted: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.variant.attack, "setting": self.variant.label,
                "tuned": self.variant.tuned, "models": self.models, "seed": self.seed,
                "auc": self.auc, "tpr_at_fpr": {repr(f): v for f, v in self.tpr_at_fpr.items()},
                "seconds": self.seconds, "fitted": self.fitted}


@dataclass(frozen=True)
class SeedRun:
    """Every measurement on one seed's target, and what training it cost."""

    measurements: list[Measurement]
    seconds: dict[str, float]


def measure_seed(
    name: str, setting: TargetSetting, seed: int, model_counts: Sequence[int], *,
    work_dir: Path, data_dir: Path, shadow_models: int, console: Console,
    skipped: list[str] | None = None, device: str = "cpu", attacks: Sequence[str] | None = None,
) -> SeedRun:
    """Train (or reuse) one seed's target, reference and shadow models (shadow models only when
    a chosen attack needs them); run every variant of ``attacks`` (None: every attack)."""
    config = setting.config(f"{name}_seed{seed}", seed, work_dir, data_dir, max(model_counts),
                            device)
    where = resolve_device(config.training.device)
    seconds = {"target": _trained(config)}
    run = RunDirectory(config.run_dir)
    split, loaded = run.read_split(), load_dataset(config)
    data = select(loaded, split)
    model = build_run_model(config)
    model.load_state_dict(run.read_model_state())
    model.to(where).eval()

    def resources(count: int) -> RunResources:
        audit = config.audit.model_copy(update={"reference_models": count})
        return RunResources(run, config, audit, split, loaded, console)

    start = time.perf_counter()
    shared = SharedLogits(resources(max(model_counts)).reference(data.members))
    seconds["reference"] = time.perf_counter() - start
    found = variants(tuple(data.members.x.shape[1:]), skipped=skipped, attacks=attacks)
    start = time.perf_counter()
    needs_shadow = any("shadow" in ATTACKS.get(variant.attack).requires for variant in found)
    shadow = resources(shadow_models).shadow() if needs_shadow else None
    seconds["shadow"] = time.perf_counter() - start
    population = resources(1).population()
    facts = RunFacts(experiment_name=config.experiment_name, dp_enabled=False)

    def measure(chosen: list[Variant], reference: ReferenceModels | None, count: int | None
                ) -> list[Measurement]:
        attacks = [variant.build() for variant in chosen]
        with warnings.catch_warnings():
            # e.g. LiRA's per-example variance with few models: measured here on purpose.
            warnings.simplefilter("ignore", UserWarning)
            audited = run_attacks(
                model, data.members, data.nonmembers, attacks,
                num_classes=config.dataset_spec.num_classes, device=where, seed=seed,
                delta=None, run_facts=facts,
                resources=GivenResources(population, reference, shadow),
            )
        return [
            Measurement(
                name, variant, count if count is not None
                else int(outcome.record.compute.reference_models),
                seed, float(outcome.metrics.auc),
                {fpr: float(outcome.metrics.tpr_at_fpr[fpr]) for fpr in FPRS},
                outcome.scores, outcome.is_member, float(outcome.record.compute.seconds),
                dict(outcome.record.fitted),
            )
            for variant, outcome in zip(chosen, audited.outcomes, strict=True)
        ]

    swept = [variant for variant in found if _swept(variant)]
    measurements = measure([v for v in found if v not in swept], None, None)
    for count in sorted(model_counts):
        measurements += measure(swept, shared.subset(count), count)
    return SeedRun(measurements, seconds)


def _swept(variant: Variant) -> bool:
    """Whether the variant's attack uses reference models (and so is run at every count)."""
    return "reference" in ATTACKS.get(variant.attack).requires


def _trained(config: AuditMLConfig) -> float:
    """Train the target into its run directory, or reuse the one a rerun finds there; seconds."""
    run = RunDirectory(config.run_dir)
    if run.path.exists():
        try:
            run.require_trained()
            stored = run.read_config()
        except AuditMLError:
            pass  # incomplete: trained again below
        else:
            if _recipe(stored) != _recipe(config):
                raise AuditMLError(
                    f"{run.path} holds a target trained with other settings; give another "
                    "--work-dir, or delete that run directory"
                )
            return 0.0
    start = time.perf_counter()
    train(config, console=Console(quiet=True))
    return time.perf_counter() - start


def _recipe(config: AuditMLConfig) -> dict[str, Any]:
    """What the target depends on: the config but where it is saved and how it is audited."""
    dumped = config.resolved().model_dump(mode="json")  # as the run directory stores it
    for key in ("output_dir", "audit"):
        dumped.pop(key)
    return dumped


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds, its interval, and each seed's value."""

    mean: float
    low: float
    high: float
    per_seed: list[float]

    def cell(self, percent: bool) -> str:
        show: Callable[[float], str] = (
            (lambda v: f"{100 * v:.1f}") if percent else (lambda v: f"{v:.3f}"))
        return f"{show(self.mean)}{'%' if percent else ''} [{show(self.low)}, {show(self.high)}]"


@dataclass(frozen=True)
class Summary:
    """One variant with one model count, over seeds."""

    target: str
    variant: Variant
    models: int
    seeds: list[int]
    auc: Estimate
    tpr_at_fpr: dict[float, Estimate]
    seconds: float
    fitted: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.variant.attack, "setting": self.variant.label,
            "settings": self.variant.settings, "tuned": self.variant.tuned,
            "models": self.models, "seeds": self.seeds,
            "auc": vars(self.auc),
            "tpr_at_fpr": {repr(fpr): vars(value) for fpr, value in self.tpr_at_fpr.items()},
            "seconds": self.seconds, "fitted": self.fitted,
        }


def summarize(measurements: Sequence[Measurement], *, resamples: int = RESAMPLES
              ) -> list[Summary]:
    """Group measurements by (target, attack, setting, models): means over seeds and intervals.

    Every group must hold each seed once (a seed missing from one variant would make its mean
    incomparable with the others').
    """
    groups: dict[tuple[str, str, str, int], list[Measurement]] = {}
    for measurement in measurements:
        key = (measurement.target, measurement.variant.attack, measurement.variant.label,
               measurement.models)
        groups.setdefault(key, []).append(measurement)
    summaries = []
    for key, group in groups.items():
        seeds = [m.seed for m in group]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{key}: seeds {seeds} repeat")
        intervals = mean_membership_intervals(
            [(m.scores, m.is_member) for m in group], fprs=FPRS, resamples=resamples, seed=0)

        def estimate(values: list[float], interval: tuple[float, float]) -> Estimate:
            return Estimate(float(np.mean(values)), interval[0], interval[1], values)

        summaries.append(Summary(
            group[0].target, group[0].variant, group[0].models, seeds,
            estimate([m.auc for m in group], intervals.auc),
            {fpr: estimate([m.tpr_at_fpr[fpr] for m in group], intervals.tpr_at_fpr[fpr])
             for fpr in FPRS},
            float(np.mean([m.seconds for m in group])),
            [m.fitted for m in group],
        ))
    seed_sets = {tuple(sorted(s.seeds)) for s in summaries}
    if len(seed_sets) > 1:
        raise ValueError(f"variants were measured on different seeds: {sorted(seed_sets)}")
    return summaries


def headline_count(model_counts: Sequence[int]) -> int:
    """The count of the first table: :data:`HEADLINE_MODELS` when swept, else the largest."""
    return HEADLINE_MODELS if HEADLINE_MODELS in model_counts else max(model_counts)


def target_tables(target: str, summaries: Sequence[Summary], model_counts: Sequence[int]
                  ) -> list[Table]:
    """Two tables for one target: every attack and setting at :func:`headline_count` reference
    models (the others at theirs), with intervals; then the sweep over model counts (means)."""
    mine = [s for s in summaries if s.target == target]
    headline = headline_count(model_counts)
    seeds = len(mine[0].seeds) if mine else 0
    first = Table(title=f"{target}: every attack, {headline} reference models where used; "
                  f"means over {seeds} seeds [95% BCa interval over examples]")
    for header in ("attack", "setting", "models", "AUC", "TPR@0.1%FPR", "TPR@1%FPR", "s"):
        first.add_column(header, justify="left" if header in ("attack", "setting") else "right")
    for s in mine:
        if _swept(s.variant) and s.models != headline:
            continue
        first.add_row(s.variant.attack, s.variant.label, str(s.models), s.auc.cell(False),
                      s.tpr_at_fpr[0.001].cell(True), s.tpr_at_fpr[0.01].cell(True),
                      f"{s.seconds:.1f}")
    second = Table(title=f"{target}: reference models swept; AUC / TPR@0.1% / TPR@1% FPR, "
                   f"means over {seeds} seeds")
    second.add_column("attack")
    second.add_column("setting")
    counts = sorted(model_counts)
    for count in counts:
        second.add_column(f"{count} models", justify="right")
    cells: dict[tuple[str, str], dict[int, Summary]] = {}
    for s in mine:
        if _swept(s.variant):
            cells.setdefault((s.variant.attack, s.variant.label), {})[s.models] = s
    for (attack, label), by_count in cells.items():
        second.add_row(attack, label, *(
            f"{by_count[c].auc.mean:.3f} / {100 * by_count[c].tpr_at_fpr[0.001].mean:.1f}% / "
            f"{100 * by_count[c].tpr_at_fpr[0.01].mean:.1f}%" if c in by_count else "-"
            for c in counts))
    return [first, second]


@dataclass(frozen=True)
class BenchmarkResult:
    summaries: list[Summary]
    measurements: list[Measurement]
    seconds: dict[str, dict[int, dict[str, float]]]
    skipped: list[str]


def run_benchmark(
    targets: dict[str, TargetSetting], seeds: Sequence[int], model_counts: Sequence[int], *,
    work_dir: Path, data_dir: Path, shadow_models: int, console: Console,
    resamples: int = RESAMPLES, device: str = "cpu", attacks: Sequence[str] | None = None,
) -> BenchmarkResult:
    """Measure every target on every seed, then summarise (see the module docstring)."""
    counts = sorted(set(model_counts))
    if not counts or any(count < 2 or count % 2 for count in counts):
        raise AuditMLError(
            f"--models must be even counts of at least 2 (complementary pairs), got {model_counts}")
    if shadow_models < 2 or shadow_models % 2:
        raise AuditMLError(f"--shadow-models must be even and at least 2, got {shadow_models}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise AuditMLError(f"seeds must be distinct and at least one, got {list(seeds)}")
    measurements: list[Measurement] = []
    seconds: dict[str, dict[int, dict[str, float]]] = {}
    skipped: list[str] = []
    for name, setting in targets.items():
        for seed in seeds:
            start = time.perf_counter()
            seed_run = measure_seed(name, setting, seed, counts, work_dir=work_dir,
                                    data_dir=data_dir, shadow_models=shadow_models,
                                    console=console, skipped=skipped, device=device,
                                    attacks=attacks)
            measurements += seed_run.measurements
            seed_run.seconds["total"] = time.perf_counter() - start
            seconds.setdefault(name, {})[seed] = seed_run.seconds
            console.print(f"{name} seed {seed}: " + ", ".join(
                f"{part} {value:.0f}s" for part, value in seed_run.seconds.items()),
                highlight=False)
    return BenchmarkResult(summarize(measurements, resamples=resamples), measurements, seconds,
                           sorted(set(skipped)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--models", type=int, nargs="+", default=list(MODEL_COUNTS),
                        help="reference-model counts swept (even; the largest is trained)")
    parser.add_argument("--shadow-models", type=int, default=8)
    parser.add_argument("--attacks", nargs="+", choices=attacks_of("classification"),
                        help="only these attacks (default: every registered one); shadow models "
                        "are trained only when mia_shadow is among them")
    parser.add_argument("--train-size", type=int, help="members (as many non-members)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--population-size", type=int)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--work-dir", type=Path,
                        help="keep run directories here (a rerun reuses them); default: temporary")
    parser.add_argument("--log", type=Path, help="write every figure as JSON here")
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--device", default="cpu", help="training.device: cpu, auto, cuda, ...")
    args = parser.parse_args(argv)
    console = Console(width=160)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    shrink = {key: value for key, value in (("train_size", args.train_size),
              ("epochs", args.epochs), ("population_size", args.population_size))
              if value is not None}
    targets = {name: replace(TARGETS[name], **shrink) for name in args.targets}
    if args.log is not None:
        check_writable(args.log, "--log")
    try:
        with tempfile.TemporaryDirectory(prefix="attack_strength_") as scratch:
            result = run_benchmark(
                targets, list(range(args.seeds)), args.models,
                work_dir=args.work_dir or Path(scratch), data_dir=args.data_dir,
                shadow_models=args.shadow_models, console=console, resamples=args.resamples,
                device=args.device, attacks=args.attacks)
    except AuditMLError as error:
        console.print(f"error: {error}", highlight=False, markup=False)
        return 2
    for name in targets:
        for table in target_tables(name, result.summaries, args.models):
            console.print(table)
    for line in result.skipped:
        console.print(f"not run: {line}", highlight=False, markup=False)
    if args.log is not None:
        write_json(args.log, {
            "command": ["python", "benchmarks/attack_strength.py", *(argv or sys.argv[1:])],
            "interval": "95% BCa bootstrap over examples of the mean over seeds "
                        "(auditml.metrics.mean_membership_intervals); seeds held fixed",
            "targets": {name: vars(setting) for name, setting in targets.items()},
            "seconds": result.seconds,
            "skipped": result.skipped,
            "summaries": [s.to_dict() for s in result.summaries],
            "measurements": [m.to_dict() for m in result.measurements],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
