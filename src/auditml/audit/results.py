"""One attack's scores turned into its :class:`~auditml.records.AttackRecord`, and written.

Every number comes from :mod:`auditml.metrics`; this module only assembles, and writes through
:class:`~auditml.run_directory.RunDirectory`. Figures are computed here as data
(:mod:`auditml.figure_data`) and drawn by the ``draw`` the caller passes (none: no PNG).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditml.attacks import MembershipAttack
from auditml.figure_data import Draw, FigureData, ImageGallery, RocFigure, RocSeries
from auditml.fileio import write_bytes
from auditml.metrics import (
    DEFAULT_STRATEGY,
    MembershipIntervals,
    MembershipMetrics,
    epsilon_lower_bound,
    gdp_epsilon_estimate,
    gdp_estimate_interval,
    gdp_lower_bound,
    members_singled_out,
    membership_intervals,
    membership_metrics,
    most_exposed_members,
    per_class_metrics,
    roc_curve,
)
from auditml.records import AttackRecord, InferenceRecord, RunFacts
from auditml.run_directory import RunDirectory

EXPOSED_COUNT = 16
# Confidence of the ε lower bound: the bound holds with probability at least 1 − ALPHA.
EPSILON_BOUND_ALPHA = 0.05
# δ for the Gaussian ε estimate of a run without DP (the estimate needs δ > 0; a bound does not).
GDP_DELTA_WITHOUT_DP = 1e-5
# Resamples of the BCa intervals on the AUC and the TPRs (~0.3 s at 2 x 2,000 examples).
BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class AttackOutcome:
    """One attack's scores, its metrics and its record (``exposed``: positions of the most
    exposed members, for the gallery)."""

    attack: str
    metrics: MembershipMetrics
    record: AttackRecord
    scores: np.ndarray
    is_member: np.ndarray
    exposed: np.ndarray

    @property
    def result(self) -> dict[str, Any]:
        """The record as the JSON mapping written to ``audit/<attack>.json``."""
        return self.record.model_dump(mode="json")


def summarize_attack(
    attack: MembershipAttack,
    scores: np.ndarray,
    is_member: np.ndarray,
    *,
    labels: np.ndarray,
    example_ids: np.ndarray,
    seed: int,
    compute: dict[str, Any],
    delta: float | None,
    run_facts: RunFacts,
) -> AttackOutcome:
    """Every number about one attack's scores (no files written).

    ``example_ids`` name the examples in the record (pool indices for a run). ``delta`` is the
    run's δ (None without DP: the ε lower bound then uses δ = 0).
    """
    metrics = membership_metrics(scores, is_member, seed=seed)
    intervals = membership_intervals(
        scores, is_member, fprs=tuple(metrics.tpr_at_fpr), resamples=BOOTSTRAP_RESAMPLES, seed=seed
    )
    bound = epsilon_lower_bound(
        scores, is_member, delta=delta or 0.0, confidence=1 - EPSILON_BOUND_ALPHA,
        threshold=DEFAULT_STRATEGY,
    )
    gdp_delta = delta or GDP_DELTA_WITHOUT_DP
    gdp_bound = gdp_lower_bound(scores, is_member, delta=gdp_delta,
                                confidence=1 - EPSILON_BOUND_ALPHA)
    exposed = most_exposed_members(scores, is_member, EXPOSED_COUNT)
    record = AttackRecord(
        attack=attack.name,
        settings=attack.settings(),
        fitted=attack.fitted_values(),
        counts={"members": int(is_member.sum()), "nonmembers": int((~is_member).sum())},
        metrics=metrics.to_dict(),
        intervals=intervals.to_dict(),
        singled_out=members_singled_out(scores, is_member).to_dict(),
        epsilon_lower_bound=bound.to_dict(),
        gdp_estimate=gdp_estimate_record(scores, is_member, intervals, delta=gdp_delta),
        gdp_lower_bound=gdp_bound.to_dict(),
        per_class={
            str(label): values
            for label, values in per_class_metrics(scores, is_member, labels).items()
        },
        most_exposed=[
            {"example": int(example_ids[i]), "label": int(labels[i]), "score": float(scores[i])}
            for i in exposed
        ],
        compute=compute,
        run=run_facts,
    )
    return AttackOutcome(attack.name, metrics, record, scores, is_member, exposed)


def gdp_estimate_record(
    scores: np.ndarray, is_member: np.ndarray, intervals: MembershipIntervals | None, *,
    delta: float,
) -> dict[str, Any]:
    """The Gaussian-DP ε estimate as an attack record holds it (``gdp_estimate``): with the
    interval the AUC's bootstrap interval implies (:func:`~auditml.metrics.gdp_estimate_interval`),
    or without one when ``intervals`` is None (as records were before intervals)."""
    estimate: dict[str, Any] = gdp_epsilon_estimate(scores, is_member, delta=delta).to_dict()
    if intervals is not None:
        estimate["interval"] = list(gdp_estimate_interval(
            intervals.auc, int(is_member.sum()), int((~is_member).sum()), delta=delta))
    return estimate


def write_outcome(
    run: RunDirectory, outcome: AttackOutcome, *, images: np.ndarray, pool_indices: np.ndarray,
    draw: Draw | None = None,
) -> AttackOutcome:
    """Write the attack's scores and record into ``run``, and its figures when given a ``draw``
    (:mod:`auditml.figure_data`); the outcome as written, its record naming the figures drawn."""
    name, record = outcome.attack, outcome.record
    plot: Path | None = None
    gallery: Path | None = None
    if draw is not None:
        plot = run.roc_plot_path(name)
        draw(attack_roc_figure(outcome), plot)
        exposed = exposed_gallery(outcome, images, pool_indices)
        if exposed is not None:
            gallery = run.gallery_path(name)
            draw(exposed, gallery)
    record = record.model_copy(update={
        "roc_plot": plot.name if plot else None,
        "exposed_gallery": gallery.name if gallery else None,
    })
    record = run.write_attack(record, outcome.scores, outcome.is_member)
    return AttackOutcome(
        name, outcome.metrics, record, outcome.scores, outcome.is_member, outcome.exposed
    )


def write_overlay(
    run: RunDirectory, outcomes: list[AttackOutcome], title: str, *, draw: Draw | None = None
) -> Path | None:
    """All attacks of one audit on one log-log ROC plot (None without a ``draw``: no figure).

    With one attack that plot is the attack's own, already drawn by :func:`write_outcome`: its
    bytes are written again rather than the same figure rendered twice (a fifth of a one-attack
    audit's fixed cost)."""
    if draw is None:
        return None
    path = run.overlay_path()
    if len(outcomes) == 1 and outcomes[0].record.roc_plot is not None:
        drawn = run.roc_plot_path(outcomes[0].attack)
        if drawn.is_file():
            write_bytes(path, drawn.read_bytes())
            return path
    series = []
    for outcome in outcomes:
        curve = roc_curve(outcome.scores, outcome.is_member)
        series.append(RocSeries(outcome.attack, curve.fpr, curve.tpr, outcome.metrics.auc))
    draw(RocFigure(series, title), path)
    return path


def attack_roc_figure(outcome: AttackOutcome) -> RocFigure:
    """The attack's ROC curve, labelled with the audited model's name."""
    curve = roc_curve(outcome.scores, outcome.is_member)
    return RocFigure([RocSeries(outcome.record.run.experiment_name, curve.fpr, curve.tpr,
                                outcome.metrics.auc)], outcome.attack)


def exposed_gallery(
    outcome: AttackOutcome, images: np.ndarray, pool_indices: np.ndarray
) -> ImageGallery | None:
    """The images of the members the attack finds most exposed, captioned with their pool
    index and label; None when the inputs are not images (or none is exposed)."""
    if images.ndim != 4 or not len(outcome.exposed):
        return None
    labels = [example.label for example in outcome.record.most_exposed]
    captions = [
        f"#{int(pool_indices[i])} y={label}"
        for i, label in zip(outcome.exposed, labels, strict=True)
    ]
    return ImageGallery(images[outcome.exposed], captions, f"{outcome.attack}: most exposed")


def write_inference(
    run: RunDirectory, name: str, record: InferenceRecord, figures: Mapping[str, FigureData], *,
    draw: Draw | None = None,
) -> None:
    """Write an inference audit's figures (with a ``draw``) and its ``record`` into ``run``."""
    if draw is not None:
        for suffix, figure in figures.items():
            draw(figure, run.inference_figure_path(name, suffix))
    run.write_inference(record)
