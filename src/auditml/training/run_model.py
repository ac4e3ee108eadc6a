"""A run's untrained model and its dataset: what ``audit`` needs of training, without DP-SGD.

Kept apart from :mod:`auditml.training.trainer` so that auditing a trained run never imports
Opacus's training machinery (seconds of import time) just to rebuild the architecture.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from auditml.config import AuditMLConfig, parse_config
from auditml.data import ArrayDataset, LoadedDataset
from auditml.errors import DataError
from auditml.models import build_model

if TYPE_CHECKING:
    from torch import nn


def build_run_model(config: AuditMLConfig) -> nn.Module:
    """The run's architecture, untrained, exactly as ``train`` built it (fixes included)."""
    spec = config.dataset_spec
    model = build_model(config.arch, spec.input_shape, spec.num_classes)
    if config.training.dp.enabled and config.training.dp.fix_model:
        from opacus.validators import ModuleValidator

        model = ModuleValidator.fix(model)
    return model


def load_dataset(config: AuditMLConfig) -> LoadedDataset:
    """Load the configured dataset and check it has the shape its spec promises."""
    spec = config.dataset_spec
    loaded = spec.load(config.data.data_dir, config.data.download)
    if tuple(loaded.pool.x.shape[1:]) != spec.input_shape:
        raise DataError(
            f"{spec.name}: inputs have shape {loaded.pool.x.shape[1:]}, expected "
            f"{spec.input_shape}; check the files in {config.data.data_dir}"
        )
    return loaded


def load_pool(config: dict[str, Any]) -> ArrayDataset:
    """The pool of the dataset a (JSON-form) config names, loaded once per process: the jobs a
    pool worker runs share it."""
    return _load_pool(json.dumps(config, sort_keys=True))


@lru_cache(maxsize=2)
def _load_pool(config_json: str) -> ArrayDataset:
    """The dataset's pool, loaded once per process (jobs in one worker share it)."""
    return load_dataset(parse_config(json.loads(config_json))).pool
