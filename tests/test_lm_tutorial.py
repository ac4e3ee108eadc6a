"""The language-model tutorial's configs: what the README says they are, and their chain (public
base, then fine-tuning without and with DP, audits, compare) runs as written, shrunk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from auditml.config import parse_config
from cli_helpers import run_cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NAMES = ("lm_public", "lm_baseline", "lm_dp")


def test_the_tutorial_configs_are_what_the_readme_says() -> None:
    public, baseline, private = (parse_config(yaml.safe_load(
        (CONFIGS / f"{name}.yaml").read_text())) for name in NAMES)
    assert public.data.dataset == "text_public" and not public.training.dp.enabled
    for config in (baseline, private):
        assert config.data.dataset == "text" and config.arch == "gpt2_tiny"
        assert config.model.base == Path("results/lm_public")
        assert config.training.canaries.kind == "secret" and config.training.canaries.count
        # Each secret once: the DP run's canary audit tests the accountant's claim.
        assert config.training.canaries.repeats == 1
        assert "secret_canaries" in config.audit.attacks
        assert config.audit.reference_models == 4  # for mia_text_lira and mia_text_rmia
    assert not baseline.training.dp.enabled and baseline.model.lora_rank is None
    assert private.training.dp.enabled and private.training.dp.epsilon == 8.0
    assert private.model.lora_rank == 8


@pytest.mark.slow
def test_the_tutorial_chain_runs_shrunk(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # model.base: results/lm_public is relative, as in the README
    for name in NAMES:
        raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
        raw["data"]["train_size"], raw["data"]["batch_size"] = 30, 15
        raw["training"]["epochs"] = 1
        if "canaries" in raw["training"]:
            raw["training"]["canaries"]["count"] = 10
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
        code, _, err = run_cli(capsys, "train", "--config", f"{name}.yaml")
        assert code == 0, err
    for name in NAMES[1:]:
        code, _, err = run_cli(capsys, "audit", "--config", f"{name}.yaml")
        assert code == 0, err
    # The README's step for the attacks with reference models: 4 fine-tuned like the run.
    code, out, err = run_cli(capsys, "audit", "--config", "lm_dp.yaml", "--attack",
                             "mia_text_lira", "mia_text_rmia")
    assert code == 0, err
    assert "reference models: 4/4 trained" in err + out and "mia_text_rmia" in out
    code, out, err = run_cli(capsys, "compare", "results/lm_baseline", "results/lm_dp",
                             "--out", "results/lm_comparison")
    assert code == 0, err
    assert "lm_dp" in out and (tmp_path / "results" / "lm_comparison" / "report.html").exists()
