"""The run directory: the contract between ``train``, ``audit`` and ``compare``.

``train`` writes ``<output_dir>/<experiment_name>/``::

    config.yaml           the resolved config (every default filled in)
    model.safetensors     the trained weights (safetensors: never unpickled); metadata: arch
    split.npz             members, nonmembers, validation (indices into the dataset's pool),
                          pool_size, seed
    metrics.json          training metrics, keys below

``audit`` adds ``audit/``::

    audit/<attack>.json         one attack's result, keys below
    audit/<attack>_scores.npz   scores (float64) and is_member (bool), one row per audited example
    audit/<attack>_roc.png      the attack's ROC curve on log-log axes

``metrics.json`` keys: ``experiment_name``, ``dataset``, ``arch``, ``train_size``, ``seed``,
``device``, ``val_acc``, ``train_acc``, ``losses`` (mean training loss per epoch), ``history``
(per epoch: ``epoch``, ``loss``, ``train_acc``, ``val_acc``, ``epsilon``), ``dp_enabled``,
``epsilon`` (ε spent, null without DP), ``target_epsilon``, ``delta``, ``noise_multiplier``,
``max_grad_norm``, ``sample_rate``, ``steps``, ``accountant``, ``grad_sample_mode`` (how
per-example gradients were clipped: fast, hooks or ghost; null without DP), ``wall_time_s``,
``versions``
(``python``, ``torch``, ``opacus``, ``auditml``).

``audit/<attack>.json`` keys: ``attack``, ``settings`` (the attack's parameters), ``counts``
(``members``, ``nonmembers``), ``metrics`` (see :class:`auditml.metrics.MembershipMetrics`),
``scores_file``, ``roc_plot``, ``run`` (``experiment_name``, ``dp_enabled``, ``epsilon``,
``delta``, ``val_acc``).

Everything is written atomically: a reader never sees a half-written file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from auditml.config import AuditMLConfig, parse_config
from auditml.data.split import MembershipSplit
from auditml.errors import ConfigError, RunDirectoryError
from auditml.fileio import atomic_path, write_json

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.safetensors"
SPLIT_FILE = "split.npz"
METRICS_FILE = "metrics.json"
AUDIT_DIR = "audit"
TRAINED_FILES = (CONFIG_FILE, MODEL_FILE, SPLIT_FILE, METRICS_FILE)


class RunDirectory:
    """Reads and writes one run directory; knows every file name and nothing about training."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def audit_dir(self) -> Path:
        return self.path / AUDIT_DIR

    # -- checks -------------------------------------------------------------------------------

    def require_trained(self, config_hint: str | None = None) -> None:
        """Raise unless ``train`` finished here; the message says how to make the run."""
        missing = [name for name in TRAINED_FILES if not (self.path / name).is_file()]
        if not missing:
            return
        command = f"auditml train --config {config_hint or 'CONFIG'}"
        if not self.path.exists():
            raise RunDirectoryError(f"no trained run at {self.path}: run `{command}` first")
        raise RunDirectoryError(
            f"run at {self.path} is incomplete (missing {', '.join(missing)}): "
            f"run `{command}` again"
        )

    # -- training outputs ---------------------------------------------------------------------

    def write_config(self, config: AuditMLConfig) -> None:
        with atomic_path(self.path / CONFIG_FILE) as tmp:
            tmp.write_text(config.resolved().to_yaml(), encoding="utf-8")

    def read_config(self) -> AuditMLConfig:
        path = self.path / CONFIG_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise RunDirectoryError(f"cannot read {path}: {error}") from None
        try:
            return parse_config(raw, str(path))
        except ConfigError as error:
            raise RunDirectoryError(f"run config is invalid: {error}") from None

    def write_model(self, model: torch.nn.Module, arch: str) -> None:
        from safetensors.torch import save_file

        tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
        with atomic_path(self.path / MODEL_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"arch": arch})

    def read_model_state(self) -> dict[str, torch.Tensor]:
        """The saved weights. safetensors holds raw tensors only, so loading runs no code."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.path / MODEL_FILE
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise RunDirectoryError(
                f"model file {path} is corrupt or unreadable ({reason}); "
                "retrain with `auditml train --config F`"
            ) from None

    def write_split(self, split: MembershipSplit) -> None:
        split.save(self.path / SPLIT_FILE)

    def read_split(self) -> MembershipSplit:
        return MembershipSplit.load(self.path / SPLIT_FILE)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / METRICS_FILE, metrics)

    def read_metrics(self) -> dict[str, Any]:
        return _read_json(self.path / METRICS_FILE)

    # -- audit outputs ------------------------------------------------------------------------

    def audit_json_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}.json"

    def scores_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}_scores.npz"

    def roc_plot_path(self, attack: str) -> Path:
        return self.audit_dir / f"{attack}_roc.png"

    def write_scores(self, attack: str, scores: np.ndarray, is_member: np.ndarray) -> Path:
        path = self.scores_path(attack)
        with atomic_path(path) as tmp, tmp.open("wb") as handle:
            np.savez(handle, scores=scores.astype(np.float64), is_member=is_member.astype(bool))
        return path

    def read_scores(self, attack: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.scores_path(attack)
        try:
            with np.load(path, allow_pickle=False) as data:
                return data["scores"], data["is_member"].astype(bool)
        except (OSError, ValueError, KeyError) as error:
            raise RunDirectoryError(
                f"scores file {path} is missing or unreadable ({error}); rerun the audit"
            ) from None

    def write_audit_result(self, attack: str, result: dict[str, Any]) -> Path:
        path = self.audit_json_path(attack)
        write_json(path, result)
        return path

    def audit_results(self) -> dict[str, dict[str, Any]]:
        """Every attack result saved for this run, by attack name (empty if none)."""
        if not self.audit_dir.is_dir():
            return {}
        return {path.stem: _read_json(path) for path in sorted(self.audit_dir.glob("*.json"))}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            payload = json.load(handle)
    except FileNotFoundError:
        raise RunDirectoryError(f"missing file {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RunDirectoryError(f"{path} is corrupt ({error}); regenerate it") from None
    if not isinstance(payload, dict):
        raise RunDirectoryError(f"{path} is corrupt (expected a JSON object)")
    return payload
