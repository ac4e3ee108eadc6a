"""A run's untrained model and its dataset: what ``audit`` needs of training, without DP-SGD.

Kept apart from :mod:`auditml.training.trainer` so that auditing a trained run never imports
Opacus's training machinery (seconds of import time) just to rebuild the architecture.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from auditml.config import AuditMLConfig, parse_config
from auditml.data import ArrayDataset, LoadedDataset
from auditml.errors import AuditMLError, ConfigError, DataError
from auditml.models import build_model

if TYPE_CHECKING:
    from torch import nn

    from auditml.data.secrets import SecretCanaries


def build_run_model(
    config: AuditMLConfig, *, with_base: bool = False, fix: bool = True
) -> nn.Module:
    """The run's architecture exactly as ``train`` built it: untrained, or with ``with_base``
    starting from ``model.base``'s trained weights; then LoRA adapters (``model.lora_rank``)
    and Opacus's fixes, if configured (``fix=False`` leaves them to training, which reports
    them: :func:`auditml.training.privacy.prepare_for_dp`). A run's own saved weights fit what
    this returns."""
    return _build(config, with_base=with_base, fix=fix)[0]


def build_from_base(config: AuditMLConfig, *, fix: bool = True) -> tuple[nn.Module, str | None]:
    """:func:`build_run_model` from ``model.base``'s weights, and the training id of the base
    those weights came from (None without a base): what the fine-tuned run records, read as it
    loads, so a base retrained meanwhile is not misnamed."""
    return _build(config, with_base=True, fix=fix)


def _build(config: AuditMLConfig, *, with_base: bool, fix: bool) -> tuple[nn.Module, str | None]:
    spec = config.dataset_spec
    model = build_model(config.arch, spec.input_shape, spec.num_classes, task=spec.task)
    base_id = None
    if with_base and config.model.base is not None:
        base_id = load_base(model, config)
    if config.model.lora_rank is not None:
        if spec.task != "causal_lm":
            raise ConfigError(
                "model.lora_rank applies to language models (data.dataset: text); remove it"
            )
        from auditml.models.causal_lm import with_lora

        model = with_lora(model, rank=config.model.lora_rank)
    if fix and config.training.dp.enabled and config.training.dp.fix_model:
        from opacus.validators import ModuleValidator

        model = ModuleValidator.fix(model)
    return model, base_id


def load_base(model: nn.Module, config: AuditMLConfig) -> str:
    """Load ``model.base``'s trained weights into ``model`` (the run's architecture, fresh),
    after checking the base is a complete run of the same architecture and input shape; return
    the base's training id (its manifest's), which the fine-tuned run records."""
    from auditml.run_directory import RunDirectory

    assert config.model.base is not None
    where = f"model.base: {config.model.base}"
    base = RunDirectory(config.model.base)
    try:
        manifest = base.require_trained()
        base_config = base.read_config()
    except AuditMLError as error:
        raise ConfigError(f"{where} is not a run auditml trained ({error})") from None
    shape, base_shape = config.dataset_spec.input_shape, base_config.dataset_spec.input_shape
    if base_config.arch != config.arch or base_shape != shape:
        raise ConfigError(
            f"{where} holds {base_config.arch!r} for inputs {base_shape}, but this run trains "
            f"{config.arch!r} for inputs {shape}: give a base of the same architecture and data "
            "shape"
        )
    if base_config.model.lora_rank is not None:
        raise ConfigError(
            f"{where} trained LoRA adapters (model.lora_rank: {base_config.model.lora_rank}); "
            "give a base whose every weight was trained"
        )
    state = base.read_model_state()
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(f"{where}: its weights do not fit {config.arch!r} ({reason})") from None
    return manifest.training_id


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


def run_secrets(config: AuditMLConfig) -> SecretCanaries | None:
    """The run's secret canaries (:mod:`auditml.data.secrets`), generated from its seed and
    ``training.canaries``; None when it has none."""
    canaries = config.training.canaries
    if canaries.kind != "secret" or not canaries.count:
        return None
    from auditml.data.secrets import make_secrets

    return make_secrets(
        canaries.count, kind=canaries.design, length=canaries.secret_length, seed=config.seed
    )


def secret_canary_texts(config: AuditMLConfig, secrets: SecretCanaries | None) -> np.ndarray:
    """The token ids of ``secrets`` (the run's, :func:`run_secrets`) at the data's width;
    empty without."""
    if secrets is None:
        return np.empty((0, 0), np.int64)
    from auditml.data.text_tokens import encode_bytes

    return encode_bytes(list(secrets.texts), config.dataset_spec.input_shape[0])


def load_pool(config: dict[str, Any]) -> ArrayDataset:
    """The pool of the dataset a (JSON-form) config names, loaded once per process: the jobs a
    pool worker runs share it."""
    return _load_pool(json.dumps(config, sort_keys=True))


@lru_cache(maxsize=2)
def _load_pool(config_json: str) -> ArrayDataset:
    """The dataset's pool, loaded once per process (jobs in one worker share it)."""
    return load_dataset(parse_config(json.loads(config_json))).pool
