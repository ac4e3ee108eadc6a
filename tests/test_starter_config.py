"""``auditml init``: a starter config that ``auditml train --config`` accepts as it is, written
only to a new file."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditml.cli import main
from auditml.config import AuditMLConfig, load_config
from auditml.starter_config import starter_yaml


def test_init_writes_the_defaults_with_comments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / "auditml.yaml"
    assert f"auditml train --config {Path('auditml.yaml')}" in capsys.readouterr().out
    text = written.read_text(encoding="utf-8")
    assert "  max_grad_norm: 1.0  # per-example clipping bound C" in text
    assert "  # mia_lira: {mode: online, variance: auto, augmentations: none}" in text
    loaded = load_config(written)  # what `auditml train --config` reads
    assert loaded == AuditMLConfig(experiment_name="auditml")
    assert main(["show-config", "--config", str(written)]) == 0


def test_init_takes_a_path_and_names_the_experiment_after_it(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "lr_probe.yaml")]) == 0
    assert load_config(tmp_path / "lr_probe.yaml").experiment_name == "lr_probe"
    assert main(["init", str(tmp_path / ".hidden.yaml")]) == 0  # no valid name: a default one
    assert load_config(tmp_path / ".hidden.yaml").experiment_name == "my_experiment"


def test_init_never_overwrites_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiment_name: mine\n", encoding="utf-8")
    assert main(["init", str(mine)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "already exists" in error and error.count("\n") == 1
    assert mine.read_text(encoding="utf-8") == "experiment_name: mine\n"
    # Not even a starter config auditml wrote: init writes new files only.
    assert main(["init", str(tmp_path / "a.yaml")]) == 0
    assert main(["init", str(tmp_path / "a.yaml")]) == 2


def test_every_default_is_in_the_starter_config() -> None:
    # Not a copy of a hand-written list: a setting added to the config shows up here too.
    import yaml

    raw = yaml.safe_load(starter_yaml("x"))
    assert raw == AuditMLConfig(experiment_name="x").model_dump(mode="json")
