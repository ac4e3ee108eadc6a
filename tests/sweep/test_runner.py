"""``auditml sweep`` end to end on digits through the CLI: files, table, reuse, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditml.cli import main
from auditml.config import load_config
from auditml.run_directory import SweepDirectory
from auditml.sweep.plan import run_config
from auditml.sweep.report import HEADERS, read_sweep_record
from auditml.sweep.runner import is_finished

pytestmark = pytest.mark.slow

FIGURES = ("accuracy_vs_epsilon", "tpr_vs_epsilon", "bound_vs_epsilon")


@pytest.fixture
def sweep_config(
    tiny_config: Callable[..., dict[str, Any]], write_config: Callable[..., Path]
) -> Path:
    return write_config(tiny_config(
        experiment_name="sw", data={"train_size": 40, "batch_size": 20},
        training={"epochs": 2, "learning_rate": 0.02, "dp": {"delta": 1e-3}},
    ), "sw")


def _sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _mtimes(sweep: Path) -> dict[str, int]:
    return {
        str(path.relative_to(sweep)): path.stat().st_mtime_ns
        for pattern in ("runs/*/model.safetensors", "runs/*/audit/mia_threshold.json")
        for path in sweep.glob(pattern)
    }


def test_sweep_writes_its_table_and_figures_and_reuses_finished_runs(
    capsys: pytest.CaptureFixture[str], sweep_config: Path, tmp_path: Path
) -> None:
    argv = ("--config", str(sweep_config), "--epsilons", "1", "4", "inf", "--workers", "1")
    code, out, err = _sweep(capsys, *argv)
    assert code == 0, err
    sweep = tmp_path / "results" / "sw_sweep"
    assert sorted(p.name for p in (sweep / "runs").iterdir() if not p.name.startswith(".")) == [
        "sw_eps1", "sw_eps4", "sw_nodp"]
    for name in FIGURES:
        assert (sweep / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((sweep / "sweep.json").read_text())
    rows = record["rows"]
    assert [row["epsilon_target"] for row in rows] == [1.0, 4.0, None]
    assert [row["attack"] for row in rows] == ["mia_threshold"] * 3
    assert 0.99 <= rows[0]["epsilon_claimed"] <= 1.0 and rows[2]["epsilon_claimed"] is None
    assert rows[2]["delta"] is None and rows[0]["delta"] == 1e-3
    for row in rows:
        assert row["bound_confidence"] == pytest.approx(0.95)
        assert set(row) >= {"val_acc", "auc", "tpr_at_1pct_fpr", "epsilon_lower_bound",
                            "gdp_epsilon_estimate"}
    # The audited numbers are the runs' own records, not recomputed.
    audited = json.loads((sweep / "runs" / "sw_eps4" / "audit" / "mia_threshold.json").read_text())
    assert rows[1]["auc"] == audited["metrics"]["auc"]
    assert rows[1]["epsilon_lower_bound"] == audited["epsilon_lower_bound"]["epsilon"]
    assert read_sweep_record(SweepDirectory(sweep)).model_dump(mode="json") == record
    table = (sweep / "sweep.md").read_text()
    assert "| " + " | ".join(HEADERS) + " |" in table
    assert "Papernot & Steinke 2022" in table and "an estimate, not a bound" in table
    assert "(95% conf.)" in table and "| ∞ | ∞ | — |" in table

    before = _mtimes(sweep)
    assert len(before) == 6
    code, out, err = _sweep(capsys, *argv)
    assert code == 0, err
    assert out.count("reusing") == 3 and "training" not in out and "auditing" not in out
    assert _mtimes(sweep) == before

    # A run whose trained file was damaged (it no longer matches its manifest) is trained
    # again and re-audited; the others are kept. (A run never lacks its manifest: train swaps
    # it in complete, and a folder without auditml's manifest is refused as not auditml's.)
    (sweep / "runs" / "sw_eps4" / "model.safetensors").write_bytes(b"damaged")
    code, out, err = _sweep(capsys, *argv)
    assert code == 0, err
    after = _mtimes(sweep)
    changed = sorted(key for key in before if after[key] != before[key])
    assert changed == ["runs/sw_eps4/audit/mia_threshold.json", "runs/sw_eps4/model.safetensors"]


def test_a_run_trained_with_other_settings_is_not_reused(
    sweep_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _sweep(capsys, "--config", str(sweep_config), "--epsilons", "inf")
    assert code == 0, err
    config = load_config(sweep_config)
    sweep = SweepDirectory(SweepDirectory.default_path(config))
    assert is_finished(run_config(config, float("inf"), sweep))
    other = config.model_copy(update={"seed": 1})
    assert not is_finished(run_config(other, float("inf"), sweep))
    longer = run_config(config, float("inf"), sweep, overrides={"training.epochs": 3})
    assert not is_finished(longer)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--epsilons"], "give at least one ε"),
        (["--epsilons", "1", "-2"], "ε=-2 is not allowed"),
        (["--epsilons", "1", "2", "1"], "ε=1 is given twice"),
        (["--epsilons", "0", "inf"], "ε=0 cannot be reached"),
        (["--epsilons", "one"], "'one' is not a number"),
        (["--epsilons", "1e400"], "ε=1e400 is too large to be a number"),  # ran without DP
        (["--epsilons", "1", "--tune", "learning_rate=0.01,0.02", "--tune-stopping",
          "geometric:1e-300"], "expects 1e+300 trials"),  # a numpy traceback
        (["--epsilons", "1", "--attack", "mia_lirra"], "unknown attack 'mia_lirra'"),
        (["--epsilons", "1", "--attack", "dp_audit"], "tabulates membership attacks"),
        (["--epsilons", "1", "--workers", "0"], "--workers must be at least 1"),
        (["--epsilons", "1", "--tune-stopping", "geometric:0.5"], "needs --tune"),
        (["--epsilons", "1", "--tune", "epochs=1,2"], "can tune learning_rate"),
        (["--epsilons", "inf", "--tune", "learning_rate=0.1,0.2"], "add a finite ε"),
        (["--epsilons", "1", "--tune", "learning_rate=0.1", "--tune-stopping", "geometric:2"],
         "`gamma` must be in (0, 1)"),
        (["--epsilons", "1", "--tune", "learning_rate=-0.1,0.1"], "learning_rate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_training(
    capsys: pytest.CaptureFixture[str], sweep_config: Path, tmp_path: Path,
    argv: list[str], fragment: str,
) -> None:
    code, _, err = _sweep(capsys, "--config", str(sweep_config), *argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0]
    assert not (tmp_path / "results").exists()  # nothing trained, nothing written


def test_a_users_file_in_the_sweeps_place_is_refused_before_any_training(
    sweep_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "sweep.md").write_text("my notes", encoding="utf-8")
    code, _, err = _sweep(capsys, "--config", str(sweep_config), "--epsilons", "inf",
                          "--out", str(out))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "sweep.md is not a file an earlier auditml sweep wrote" in lines[0]
    assert "move it away or choose another --out" in lines[0]
    assert (out / "sweep.md").read_text(encoding="utf-8") == "my notes"
    assert sorted(p.name for p in out.iterdir()) == ["sweep.md"]  # nothing trained


def test_a_rerun_replaces_only_the_sweeps_own_unchanged_files(
    sweep_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("--config", str(sweep_config), "--epsilons", "inf", "--workers", "1")
    code, _, err = _sweep(capsys, *argv)
    assert code == 0, err
    sweep = tmp_path / "results" / "sw_sweep"
    listed = json.loads((sweep / ".auditml-report.json").read_text())
    assert listed["kind"] == "sweep"
    assert sorted(listed["files"]) == sorted(["sweep.json", "sweep.md",
                                              *(f"{name}.png" for name in FIGURES)])
    (sweep / "notes.txt").write_text("mine", encoding="utf-8")
    code, _, err = _sweep(capsys, *argv)  # over its own files: fine, the user's file kept
    assert code == 0, err
    assert (sweep / "notes.txt").read_text(encoding="utf-8") == "mine"

    (sweep / "sweep.md").write_text("edited", encoding="utf-8")
    code, _, err = _sweep(capsys, *argv)
    assert code == 2 and "sweep.md changed since auditml sweep wrote it" in err
    assert (sweep / "sweep.md").read_text(encoding="utf-8") == "edited"

    # A sweep written before sweeps listed their files (no list) is still recognised.
    (sweep / "sweep.md").unlink()
    (sweep / ".auditml-report.json").unlink()
    code, _, err = _sweep(capsys, *argv)
    assert code == 0, err
    assert (sweep / "sweep.md").is_file() and (sweep / ".auditml-report.json").is_file()
