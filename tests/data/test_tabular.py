"""The whole pipeline on tabular data (the embedded diabetes rows, shape (N, 10)): train with and
without DP-SGD, every membership attack, the canary audit, the report, and the refusals of what
only images support."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.attacks import attacks_of
from auditml.cli import main
from auditml.data.adult import CATEGORIES, COLUMNS, NUMERIC

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _diabetes(tiny_config: Callable[..., dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    # 100 members, 100 non-members and the rest (242) for validation and population; two
    # reference models keep LiRA, RMIA and the shadow attack fast.
    return tiny_config(**{
        "data": {"dataset": "diabetes", "train_size": 100, "batch_size": 50},
        "training": {"epochs": 3, "learning_rate": 0.01},
        "audit": {"reference_models": 2, "workers": 1},
        **overrides,
    })


@pytest.mark.parametrize("dp", [False, True], ids=["no_dp", "dp_eps5"])
def test_train_and_every_membership_attack(
    dp: bool,
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    raw = _diabetes(tiny_config, experiment_name="tab")
    raw["training"]["dp"] = {"enabled": True, "epsilon": 5.0} if dp else {"enabled": False}
    config = write_config(raw)
    code, out, err = _run(capsys, "train", "--config", str(config))
    assert code == 0, err
    run = tmp_path / "results" / "tab"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_acc"] > 0.6  # above the 50% of guessing: the MLP learned the task
    if dp:
        assert 4.9 <= metrics["epsilon"] <= 5.0

    code, out, err = _run(capsys, "audit", "--config", str(config), "--attack", "all")
    assert code == 0, err
    for attack in attacks_of("classification"):
        record = json.loads((run / "audit" / f"{attack}.json").read_text())
        assert record["metrics"]["auc"] is not None, attack
        # Tabular rows are no images: no gallery of the most exposed examples is drawn.
        assert record["exposed_gallery"] is None, attack
        assert not (run / "audit" / f"{attack}_exposed.png").exists(), attack
        assert attack in out

    code, out, err = _run(capsys, "report", str(run), "--out", str(tmp_path / "report"))
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").stat().st_size > 0


def test_canary_audit_on_tabular_rows(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    raw = _diabetes(tiny_config, experiment_name="canaries")
    raw["training"]["canaries"] = {"count": 40, "kind": "mislabeled"}
    config = write_config(raw)
    assert _run(capsys, "train", "--config", str(config))[0] == 0
    code, _, err = _run(capsys, "audit", "--config", str(config), "--attack", "dp_audit")
    assert code == 0, err
    audit = tmp_path / "results" / "canaries" / "audit"
    record = json.loads((audit / "canaries" / "dp_audit.json").read_text())
    assert record["canaries"] == 40 and 0 < record["included"] < 40


def test_image_augmentations_are_refused_before_reference_models_train(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    raw = _diabetes(tiny_config, experiment_name="flip")
    raw["audit"]["mia_lira"] = {"augmentations": "flip"}
    config = write_config(raw)
    assert _run(capsys, "train", "--config", str(config))[0] == 0
    code, _, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_lira")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: mia_lira: augmentations='flip'")
    assert "shape (10,)" in lines[0] and "augmentations='none'" in lines[0]
    # Refused before the expensive part: no reference model was trained for nothing.
    assert not (tmp_path / "results" / "flip" / "reference").exists()
    assert "reference models" not in err


def _adult_rows(count: int, rng: np.random.Generator, *, test: bool) -> list[str]:
    """Random rows in the UCI files' format; income depends on age and sex, so it is learnable."""
    rows = []
    for _ in range(count):
        values = {
            name: str(rng.integers(17, 90) if name in NUMERIC else rng.choice(CATEGORIES[name]))
            for name in COLUMNS
        }
        rich = int(values["age"]) + 30 * (values["sex"] == "Male") + rng.normal(0, 8) > 75
        label = (">50K" if rich else "<=50K") + ("." if test else "")
        rows.append(", ".join(values[name] for name in COLUMNS) + ", " + label)
    return rows


def test_adult_files_train_and_audit_with_the_official_test_split_for_validation(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    directory = tmp_path / "data" / "adult"
    directory.mkdir(parents=True)
    (directory / "adult.data").write_text("\n".join(_adult_rows(240, rng, test=False)) + "\n\n")
    (directory / "adult.test").write_text(
        "|1x3 Cross validator\n" + "\n".join(_adult_rows(120, rng, test=True)) + "\n"
    )
    raw = tiny_config(
        experiment_name="adult",
        data={"dataset": "adult", "train_size": 100, "batch_size": 50,
              "data_dir": str(tmp_path / "data"), "download": False},
        training={"epochs": 5, "learning_rate": 0.01},
    )
    config = write_config(raw)
    code, _, err = _run(capsys, "train", "--config", str(config))
    assert code == 0, err
    metrics = json.loads((tmp_path / "results" / "adult" / "metrics.json").read_text())
    assert metrics["val_acc"] > 0.6
    code, out, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_threshold")
    assert code == 0, err
    assert "100 members, 100 non-members" in out


def test_an_image_architecture_on_tabular_rows_is_one_line_and_no_run(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    config = write_config(_diabetes(tiny_config, experiment_name="cnn", model={"arch": "cnn_8x8"}))
    code, _, err = _run(capsys, "train", "--config", str(config))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: model.arch='cnn_8x8' cannot take inputs of shape (10,)"
    )
    assert not (tmp_path / "results" / "cnn").exists()
