"""Turning one attack's scores into ``audit/<attack>.json`` and its figures.

Every number comes from :mod:`auditml.metrics`; this module only assembles and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditml.attacks.base import MembershipAttack
from auditml.fileio import write_bytes
from auditml.metrics import (
    MembershipMetrics,
    epsilon_lower_bound,
    gdp_epsilon_estimate,
    membership_metrics,
    most_exposed_members,
    per_class_metrics,
    roc_curve,
)
from auditml.reporting.plots import RocSeries, gallery_figure, png_bytes, roc_overlay_figure
from auditml.run_directory import RunDirectory

EXPOSED_COUNT = 16
# Confidence of the ε lower bound: the bound holds with probability at least 1 − ALPHA.
EPSILON_BOUND_ALPHA = 0.05
# δ for the Gaussian ε estimate of a run without DP (the estimate needs δ > 0; a bound does not).
GDP_DELTA_WITHOUT_DP = 1e-5
OVERLAY_FILE = "roc_overlay.png"


@dataclass(frozen=True)
class AttackOutcome:
    attack: str
    result_path: Path
    metrics: MembershipMetrics
    result: dict[str, Any]
    scores: np.ndarray
    is_member: np.ndarray


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
) -> tuple[MembershipMetrics, dict[str, Any], np.ndarray]:
    """Every number about one attack's scores, as the JSON payload (no files written).

    Returns the metrics, the payload and the positions of the most exposed members.
    ``example_ids`` name the examples in the payload (pool indices for a run). ``delta`` is the
    run's δ (None without DP: the ε lower bound then uses δ = 0).
    """
    metrics = membership_metrics(scores, is_member, seed=seed)
    bound = epsilon_lower_bound(
        scores, is_member, delta=delta or 0.0, alpha=EPSILON_BOUND_ALPHA, policy="split",
        seed=seed,
    )
    estimate = gdp_epsilon_estimate(
        scores, is_member, delta=delta or GDP_DELTA_WITHOUT_DP, seed=seed
    )
    exposed = most_exposed_members(scores, is_member, EXPOSED_COUNT)
    payload = {
        "attack": attack.name,
        "settings": attack.settings(),
        "fitted": attack.fitted_values(),
        "counts": {"members": int(is_member.sum()), "nonmembers": int((~is_member).sum())},
        "metrics": metrics.to_dict(),
        "epsilon_lower_bound": bound.to_dict(),
        "gdp_estimate": estimate.to_dict(),
        "per_class": {
            str(label): values
            for label, values in per_class_metrics(scores, is_member, labels).items()
        },
        "most_exposed": [
            {"example": int(example_ids[i]), "label": int(labels[i]), "score": float(scores[i])}
            for i in exposed
        ],
        "compute": compute,
    }
    return metrics, payload, exposed


def attack_result(
    run: RunDirectory,
    attack: MembershipAttack,
    scores: np.ndarray,
    is_member: np.ndarray,
    *,
    labels: np.ndarray,
    pool_indices: np.ndarray,
    images: np.ndarray,
    seed: int,
    run_facts: dict[str, Any],
    compute: dict[str, Any],
) -> AttackOutcome:
    """Compute the attack's metrics, write its scores, plots and JSON; return the outcome.

    In the payload, ``most_exposed[].example`` is the example's index in the dataset's pool.
    """
    name = attack.name
    metrics, result, exposed = summarize_attack(
        attack, scores, is_member, labels=labels, example_ids=pool_indices, seed=seed,
        compute=compute, delta=run_facts.get("delta"),
    )
    scores_path = run.write_scores(name, scores, is_member)
    curve = roc_curve(scores, is_member)
    plot_path = run.roc_plot_path(name)
    write_bytes(
        plot_path,
        png_bytes(roc_overlay_figure(
            [RocSeries(run_facts["experiment_name"], curve.fpr, curve.tpr, metrics.auc)],
            attack=name,
        )),
    )
    gallery_path = None
    if images.ndim == 4 and len(exposed):
        gallery_path = run.audit_dir / f"{name}_exposed.png"
        captions = [f"#{int(pool_indices[i])} y={int(labels[i])}" for i in exposed]
        write_bytes(
            gallery_path,
            png_bytes(gallery_figure(images[exposed], captions, title=f"{name}: most exposed")),
        )
    result.update(
        scores_file=scores_path.name,
        roc_plot=plot_path.name,
        exposed_gallery=gallery_path.name if gallery_path else None,
        run=run_facts,
    )
    path = run.write_audit_result(name, result)
    return AttackOutcome(name, path, metrics, result, scores, is_member)


def write_overlay(run: RunDirectory, outcomes: list[AttackOutcome], title: str) -> Path:
    """All attacks of one audit on one log-log ROC plot."""
    series = []
    for outcome in outcomes:
        curve = roc_curve(outcome.scores, outcome.is_member)
        series.append(RocSeries(outcome.attack, curve.fpr, curve.tpr, outcome.metrics.auc))
    path = run.audit_dir / OVERLAY_FILE
    write_bytes(path, png_bytes(roc_overlay_figure(series, attack=title)))
    return path
