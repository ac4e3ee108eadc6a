"""The command line end to end on digits: train -> audit -> compare, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.cli import main
from cli_helpers import one_error_line as _one_error_line
from cli_helpers import run_cli as _run

pytestmark = pytest.mark.slow


def test_train_audit_compare(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    baseline = write_config(tiny_config(experiment_name="base", training={"epochs": 3}), "base")
    private = write_config(
        tiny_config(experiment_name="dp", training={"dp": {"enabled": True, "epsilon": 5.0,
                                                           "delta": 1e-3}}),
        "dp",
    )
    for config in (baseline, private):
        code, out, err = _run(capsys, "train", "--config", str(config))
        assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("Achieved DP guarantee: ε=")]
    assert len(lines) == 1 and lines[0].endswith(", δ=1e-03")
    assert 4.95 <= float(lines[0].split("ε=")[1].split(",")[0]) <= 5.0

    for metric in ("loss", "entropy"):
        code, out, err = _run(capsys, "audit", "--config", str(baseline), "--metric", metric)
        assert code == 0, err
        assert "mia_threshold" in out and "AUC" in out
    code, out, err = _run(capsys, "audit", "--config", str(private), "--attack", "mia_threshold")
    assert code == 0, err

    audit = tmp_path / "results" / "base" / "audit"
    result = json.loads((audit / "mia_threshold.json").read_text())
    assert result["settings"] == {"metric": "entropy"}  # the later audit replaced the earlier
    assert result["counts"] == {"members": 100, "nonmembers": 100}
    assert set(result["metrics"]["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    bound = result["epsilon_lower_bound"]
    assert (bound["alpha"], bound["delta"]) == (0.05, 0.0)
    assert bound["threshold_policy"] == "bonferroni_hull"
    assert bound["epsilon"] >= 0.0
    assert "estimate" in result["gdp_estimate"]["note"]
    # The BCa intervals surround the recorded AUC and TPRs; the GDP bound is at δ = 1e-5 here.
    intervals = result["intervals"]
    assert intervals["auc"][0] <= result["metrics"]["auc"] <= intervals["auc"][1]
    assert set(intervals["tpr_at_fpr"]) == set(result["metrics"]["tpr_at_fpr"])
    assert (intervals["resamples"], intervals["method"]) == (1000, "bca")
    assert result["gdp_lower_bound"]["delta"] == 1e-5
    private_result = json.loads(
        (tmp_path / "results" / "dp" / "audit" / "mia_threshold.json").read_text()
    )
    assert private_result["epsilon_lower_bound"]["delta"] == 1e-3
    assert (audit / result["scores_file"]).is_file()
    assert (audit / result["roc_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = tmp_path / "report"
    code, out, err = _run(
        capsys, "compare", str(tmp_path / "results" / "base"), str(tmp_path / "results" / "dp"),
        "--out", str(report),
    )
    assert code == 0, err
    assert "No DP" in out and "ε=5" in out
    for name in ("report.md", "report.html", "comparison.json", "roc_overlay.png",
                 "accuracy_vs_leakage.png"):
        assert (report / name).is_file()


def test_show_config_fills_defaults(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path]
) -> None:
    code, out, _ = _run(capsys, "show-config", "--config",
                        str(write_config({"experiment_name": "x"})))
    assert code == 0
    assert "arch: cnn_8x8" in out and "accountant: prv" in out and "noise_multiplier: null" in out


def test_weak_delta_warns(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
) -> None:
    raw = tiny_config(training={"dp": {"enabled": True, "epsilon": 1, "delta": 0.1}})
    code, _, err = _run(capsys, "show-config", "--config", str(write_config(raw)))
    assert code == 0
    assert err.startswith("warning: training.dp.delta=0.1 is larger than 1/train_size")


def test_bad_config_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path]
) -> None:
    path = write_config({"experiment_name": "x", "training": {"epoch": 3}})
    code, _, err = _run(capsys, "train", "--config", str(path))
    assert code == 2
    assert "unknown key 'training.epoch'; did you mean 'epochs'?" in _one_error_line(err)
    code, _, err = _run(capsys, "train", "--config", str(path.with_name("missing.yaml")))
    assert code == 2 and "config file not found" in _one_error_line(err)


def test_audit_before_train(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
) -> None:
    path = write_config(tiny_config())
    code, _, err = _run(capsys, "audit", "--config", str(path), "--attack", "mia_threshold")
    assert code == 2
    line = _one_error_line(err)
    assert "no trained run at" in line and f"run `auditml train --config {path}` first" in line


def test_unknown_attack_and_metric(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
) -> None:
    path = write_config(tiny_config())
    assert _run(capsys, "train", "--config", str(path))[0] == 0
    code, _, err = _run(capsys, "audit", "--config", str(path), "--attack", "mia_treshold")
    assert code == 2 and "did you mean 'mia_threshold'?" in _one_error_line(err)
    code, _, err = _run(capsys, "audit", "--config", str(path), "--metric", "margin")
    assert code == 2 and "mia_threshold: metric='margin'" in _one_error_line(err)


def test_corrupt_model_file(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    path = write_config(tiny_config())
    assert _run(capsys, "train", "--config", str(path))[0] == 0
    model = tmp_path / "results" / "tiny" / "model.safetensors"
    model.write_bytes(b"\x80\x04not a safetensors file, and never unpickled")
    code, _, err = _run(capsys, "audit", "--config", str(path))
    assert code == 2
    # The manifest's fingerprint catches it before the file is even opened.
    assert "model.safetensors was changed after training" in _one_error_line(err)
    assert not (tmp_path / "results" / "tiny" / "audit").exists()


def test_missing_data_file(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    raw = tiny_config(
        data={"dataset": "mnist", "data_dir": str(tmp_path / "nodata"), "download": False}
    )
    code, _, err = _run(capsys, "train", "--config", str(write_config(raw)))
    assert code == 2
    line = _one_error_line(err)
    assert "train-images-idx3-ubyte" in line and "data.download: true" in line
    assert not (tmp_path / "results").exists()


def test_compare_without_audit(
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    path = write_config(tiny_config())
    assert _run(capsys, "train", "--config", str(path))[0] == 0
    run = tmp_path / "results" / "tiny"
    code, _, err = _run(capsys, "compare", str(run), "--out", str(tmp_path / "report"))
    assert code == 2
    assert "auditml audit --config" in _one_error_line(err)


def test_no_traceback_from_the_installed_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment_name: x\ntraining:\n  dp:\n    enabled: true\n    epsilon: -1\n")
    done = subprocess.run(
        [sys.executable, "-m", "auditml", "train", "--config", str(bad)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    line = _one_error_line(done.stderr)
    assert line.endswith("training.dp.epsilon=-1: Input should be greater than 0")


def test_audit_help_lists_every_attack_and_audit(capsys: pytest.CaptureFixture[str]) -> None:
    """``audit --help`` did not list the membership attacks (issue 25): it lists every name each
    registry holds."""
    from auditml.attacks import ATTACKS
    from auditml.audit.canaries import CANARY_AUDITS
    from auditml.audit.inference import INFERENCE_AUDITS

    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in [*ATTACKS.available(), *CANARY_AUDITS.available(),
                 *INFERENCE_AUDITS.available()]:
        assert name in shown, name


def test_lira_audit_prints_and_records_its_variance_choice(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    config = write_config(tiny_config(
        experiment_name="lira", data={"train_size": 40, "batch_size": 20},
        training={"epochs": 2}, audit={"reference_models": 2, "workers": 1},
    ), "lira")
    assert _run(capsys, "train", "--config", str(config))[0] == 0
    code, out, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_lira")
    assert code == 0, err
    assert ("mia_lira: variance fixed (auto: 2 reference models are fewer than 64" in
            " ".join(out.split()))
    record = json.loads((tmp_path / "results" / "lira" / "audit" / "mia_lira.json").read_text())
    assert record["settings"]["variance"] == "auto"
    assert record["fitted"]["variance"] == "fixed"


def test_qmia_and_boundary_distance_reach_audit_report_and_compare(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    names = ["mia_qmia", "mia_boundary_distance"]
    runs = []
    for epochs in (2, 4):
        config = write_config(tiny_config(
            experiment_name=f"new{epochs}", data={"train_size": 60, "batch_size": 20},
            training={"epochs": epochs},
            audit={"attacks": names, "population_size": 120,
                   "mia_qmia": {"epochs": 20}, "mia_boundary_distance": {"max_queries": 60}},
        ), f"new{epochs}")
        assert _run(capsys, "train", "--config", str(config))[0] == 0
        code, out, err = _run(capsys, "audit", "--config", str(config))
        assert code == 0, err
        assert all(name in out for name in names)
        runs.append(tmp_path / "results" / f"new{epochs}")
    audit = runs[0] / "audit"
    qmia = json.loads((audit / "mia_qmia.json").read_text())
    assert qmia["settings"]["epochs"] == 20 and 1 <= qmia["fitted"]["epoch"] <= 20
    boundary = json.loads((audit / "mia_boundary_distance.json").read_text())
    assert boundary["settings"]["max_queries"] == 60
    assert 1 <= boundary["fitted"]["queries_max"] <= 60

    code, _, err = _run(capsys, "report", str(runs[0]), "--out", str(tmp_path / "report"))
    assert code == 0, err
    shown = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert all(name in shown for name in names)
    for name in names:
        out_dir = tmp_path / f"compare_{name}"
        code, _, err = _run(capsys, "compare", *map(str, runs), "--attack", name,
                            "--out", str(out_dir))
        assert code == 0, err
        assert name in (out_dir / "comparison.json").read_text(encoding="utf-8")


def test_multi_signal_reaches_audit_report_and_compare(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    name = "mia_multi_signal"
    runs = []
    for epochs in (2, 4):
        config = write_config(tiny_config(
            experiment_name=f"multi{epochs}", data={"train_size": 40, "batch_size": 20},
            training={"epochs": epochs},
            audit={"attacks": [name], "reference_models": 2, "workers": 1,
                   name: {"temperatures": [1.0, 2.0]}},
        ), f"multi{epochs}")
        assert _run(capsys, "train", "--config", str(config))[0] == 0
        code, _, err = _run(capsys, "audit", "--config", str(config))
        assert code == 0, err
        runs.append(tmp_path / "results" / f"multi{epochs}")
    record = json.loads((runs[0] / "audit" / f"{name}.json").read_text())
    assert record["settings"]["temperatures"] == [1.0, 2.0]
    assert list(record["fitted"]["weights"]) == ["rmia_log_ratio_t1", "rmia_log_ratio_t2"]
    assert record["fitted"]["partner_used"] is True

    code, _, err = _run(capsys, "report", str(runs[0]), "--out", str(tmp_path / "report"))
    assert code == 0, err
    assert name in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    out_dir = tmp_path / "compare"
    code, _, err = _run(capsys, "compare", *map(str, runs), "--attack", name, "--out", str(out_dir))
    assert code == 0, err
    assert name in (out_dir / "comparison.json").read_text(encoding="utf-8")


def test_an_audit_size_no_class_can_fill_is_one_line_before_anything_is_said_or_written(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    from auditml.data.idx import write_idx

    # A 200-image MNIST-format pool (validation is its own test split): 99 + 98 fit in total,
    # but not class 9's 17 images at equal member and non-member class counts.
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), [23, 21, 20, 20, 20, 20, 20, 20, 19, 17])
    data_dir = tmp_path / "mnist"
    data_dir.mkdir()
    for stem, array in {
        "train-images-idx3-ubyte": rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": labels.astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(20, dtype=np.uint8) % 10,
    }.items():
        write_idx(data_dir / stem, array)
    config = write_config(tiny_config(
        experiment_name="short",
        data={"dataset": "mnist", "data_dir": str(data_dir), "download": False,
              "train_size": 99, "audit_size": 98},
    ), "short")
    code, out, err = _run(capsys, "train", "--config", str(config))
    assert code == 2
    line = _one_error_line(err)
    assert "train_size=99 with audit_size=98 needs more examples of class 9" in line
    assert "lower train_size or audit_size" in line
    assert "audit:" not in out and not (tmp_path / "results" / "short").exists()


def test_an_audit_size_audits_part_of_a_training_set_the_accountant_counts_whole(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    write_config: Callable[..., Path], tmp_path: Path,
) -> None:
    from auditml.audit.runner import _population_indices
    from auditml.run_directory import RunDirectory

    config = write_config(tiny_config(
        experiment_name="part", data={"train_size": 300, "audit_size": 40, "batch_size": 50},
        training={"epochs": 1, "dp": {"enabled": True, "epsilon": 8.0, "delta": 1e-3}},
        audit={"reference_models": 2, "workers": 1},
    ), "part")
    code, out, err = _run(capsys, "train", "--config", str(config))
    assert code == 0, err
    assert "audit: 40 of the 300 training examples are audited members" in " ".join(out.split())
    run = RunDirectory(tmp_path / "results" / "part")
    split = run.read_split()
    assert (len(split.members), len(split.nonmembers), len(split.unaudited)) == (40, 40, 260)
    # DP-SGD samples from all 300 training examples, and the accountant says so.
    assert run.read_metrics()["sample_rate"] == pytest.approx(50 / 300)
    assert not np.isin(_population_indices(split, 0), split.trained).any()
    # With an official test split, the population is the pool's remainder: never trained on.
    from auditml.data.split import make_split
    labels = np.repeat(np.arange(10), 100)
    official = make_split(labels, 600, 0, validation_from_pool=False, audit_size=100)
    population = _population_indices(official, 0)
    assert len(population) == 300 and not np.isin(population, official.trained).any()
    code, out, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_lira")
    assert code == 0, err
    record = json.loads((run.path / "audit" / "mia_lira.json").read_text())
    assert (record["counts"]["members"], record["counts"]["nonmembers"]) == (40, 40)
    manifest = json.loads((run.path / "reference" / "audit" / "manifest.json").read_text())
    assert manifest["fingerprint"]["always_in"] == split.unaudited.tolist()
    code, _, err = _run(capsys, "report", str(run.path), "--out", str(tmp_path / "report"))
    assert code == 0, err
    shown = " ".join((tmp_path / "report" / "report.html").read_text(encoding="utf-8").split())
    assert "the members are a random 40 of the 300 training examples" in shown
