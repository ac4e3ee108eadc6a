"""``auditml audit``: run an attack against a trained run and write ``audit/<attack>.json``.

The runner is the only place that connects the three parts: it reads the run directory, asks
the attack for scores, hands the scores to :mod:`auditml.metrics`, and writes what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auditml.attacks import ATTACKS, AuditTarget
from auditml.data import DATASETS, select
from auditml.errors import RunDirectoryError
from auditml.fileio import write_bytes
from auditml.metrics import MembershipMetrics, membership_metrics, roc_curve
from auditml.reporting.plots import RocSeries, png_bytes, roc_overlay_figure
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, load_dataset
from auditml.training.device import resolve_device


@dataclass(frozen=True)
class AuditOutcome:
    attack: str
    result_path: Path
    metrics: MembershipMetrics
    result: dict[str, Any]


def run_audit(
    run_dir: str | Path,
    attack: str,
    settings: dict[str, Any] | None = None,
    *,
    config_hint: str | None = None,
) -> AuditOutcome:
    """Attack the model in ``run_dir`` with its saved members and non-members.

    ``settings`` are the attack's keyword arguments (e.g. ``{"metric": "entropy"}``).
    ``config_hint`` is the config path quoted in "run `auditml train --config ...` first".
    """
    run = RunDirectory(run_dir)
    run.require_trained(config_hint)
    attack_class = ATTACKS.get(attack)
    attack_instance = attack_class(**(settings or {}))
    config = run.read_config()
    split = run.read_split()
    metrics_json = run.read_metrics()
    data = select(load_dataset(config), split)
    device = resolve_device(config.training.device)

    model = build_run_model(config)
    try:
        model.load_state_dict(run.read_model_state())
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise RunDirectoryError(
            f"model file {run.path / 'model.safetensors'} does not fit architecture "
            f"{config.arch!r} ({reason}); retrain the run"
        ) from None
    model.to(device).eval()

    target = AuditTarget(
        model=model,
        num_classes=DATASETS.get(config.data.dataset).num_classes,
        device=device,
        seed=config.seed,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        attack_instance.fit(target)
        scores = np.concatenate(
            [attack_instance.score(data.members), attack_instance.score(data.nonmembers)]
        )
    is_member = np.concatenate(
        [np.ones(len(data.members), bool), np.zeros(len(data.nonmembers), bool)]
    )
    metrics = membership_metrics(scores, is_member, seed=config.seed)

    scores_path = run.write_scores(attack, scores, is_member)
    curve = roc_curve(scores, is_member)
    figure = roc_overlay_figure(
        [RocSeries(config.experiment_name, curve.fpr, curve.tpr, metrics.auc)], attack=attack
    )
    plot_path = run.roc_plot_path(attack)
    write_bytes(plot_path, png_bytes(figure))
    result = {
        "attack": attack,
        "settings": attack_instance.settings(),
        "counts": {"members": int(is_member.sum()), "nonmembers": int((~is_member).sum())},
        "metrics": metrics.to_dict(),
        "scores_file": scores_path.name,
        "roc_plot": plot_path.name,
        "run": {
            "experiment_name": config.experiment_name,
            "dp_enabled": metrics_json.get("dp_enabled"),
            "epsilon": metrics_json.get("epsilon"),
            "delta": metrics_json.get("delta"),
            "val_acc": metrics_json.get("val_acc"),
        },
    }
    result_path = run.write_audit_result(attack, result)
    return AuditOutcome(attack, result_path, metrics, result)
