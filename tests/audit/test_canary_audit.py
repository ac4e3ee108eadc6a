"""dp_audit: the one-run canary audit on real (tiny) runs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from auditml.audit.runner import run_audit
from auditml.config import parse_config
from auditml.errors import AuditMLError
from auditml.training import train

pytestmark = pytest.mark.slow


def _trained(tiny_config: Callable[..., dict[str, Any]], **overrides: Any) -> Any:
    config = parse_config(tiny_config(**overrides))
    train(config, console=Console(file=io.StringIO()))
    return config


def test_memorised_canaries_give_a_positive_bound(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = _trained(
        tiny_config, data={"train_size": 100, "batch_size": 20},
        training={"epochs": 60, "learning_rate": 0.003,
                  "canaries": {"count": 200, "kind": "mislabeled"}},
    )
    report = run_audit(config.run_dir, ["dp_audit"])
    result = report.canary_audits["dp_audit"].model_dump(mode="json")
    assert report.outcomes == [] and list(report.canary_audits) == ["dp_audit"]
    saved = json.loads((config.run_dir / "audit" / "canaries" / "dp_audit.json").read_text())
    assert saved["epsilon_lower_bound"] == result["epsilon_lower_bound"]
    assert result["canaries"] == 200 and 60 <= result["included"] <= 140
    assert set(result["by_score"]) == {"loss", "gradient_norm"}
    # The bound is the f-DP test's (no 2 m δ term), and the record says so.
    assert {bound["method"] for bound in result["by_score"].values()} == {
        "mahloujifar_melis_chaudhuri_2024"}
    # A model without DP that memorised its mislabeled canaries: clear evidence of leakage.
    assert result["epsilon_lower_bound"] > 0.5
    assert result["epsilon_lower_bound"] <= result["max_epsilon"]


def test_dp_run_stays_under_its_claim(tiny_config: Callable[..., dict[str, Any]]) -> None:
    config = _trained(
        tiny_config, data={"train_size": 100, "batch_size": 50},
        training={"epochs": 5, "canaries": {"count": 200},
                  "dp": {"enabled": True, "epsilon": 1.0, "delta": 1e-3}},
    )
    result = run_audit(config.run_dir, ["dp_audit"]).canary_audits["dp_audit"].model_dump()
    assert result["epsilon_lower_bound"] <= 1.0
    assert result["delta"] == 1e-3


def test_a_run_without_canaries_says_how_to_get_them(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = _trained(tiny_config, training={"epochs": 1})
    with pytest.raises(AuditMLError, match=r"set training\.canaries\.count"):
        run_audit(config.run_dir, ["dp_audit"])
