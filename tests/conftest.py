"""Shared fixtures: small configs on the embedded digits data, written to tmp dirs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture
def tiny_config(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """A factory of small, fast digits configs (as raw mappings) with nested overrides."""

    def make(**overrides: Any) -> dict[str, Any]:
        base = {
            "experiment_name": "tiny",
            "output_dir": str(tmp_path / "results"),
            "data": {"dataset": "digits", "train_size": 100, "batch_size": 50},
            "training": {"epochs": 2, "learning_rate": 0.005, "device": "cpu"},
        }
        return _merge(base, overrides)

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a raw config mapping to ``tmp_path/<name>.yaml`` and return the path."""

    def write(raw: dict[str, Any], name: str = "config") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    return write
