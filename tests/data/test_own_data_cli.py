"""Your own data at the command line: a CSV and an npz through train, audit (a reference-model
attack and attribute inference included), report and compare; a file changed since train is
refused; and every bad file ends in one line with exit 2 before any training."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from auditml.cli import main

pytestmark = pytest.mark.slow


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write_csv(path: Path, rows: int = 200) -> None:
    """Two numeric columns, a categorical one tied to the label, and a sensitive group."""
    rng = np.random.default_rng(0)
    lines = ["height,weight,city,group,outcome"]
    for _ in range(rows):
        label = int(rng.integers(2))
        city = ["paris", "rome", "oslo"][int(rng.integers(3))]
        group = "a" if rng.random() < 0.5 + 0.3 * label else "b"
        lines.append(f"{rng.normal(170 + 5 * label, 8):.2f},{rng.normal(70, 10):.2f},{city},"
                     f"{group},{['healthy', 'sick'][label]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _config(
    tmp_path: Path, name: str, data: dict[str, Any], write_config: Callable[..., Path],
    **sections: Any,
) -> Path:
    raw = {
        "experiment_name": name,
        "output_dir": str(tmp_path / "results"),
        "data": {"train_size": 60, "batch_size": 30, **data},
        "training": {"epochs": 1, "device": "cpu", **sections.get("training", {})},
        "audit": {"attacks": ["mia_threshold"], "reference_models": 2, "workers": 1},
    }
    return write_config(raw, name)


def test_csv_and_npz_train_audit_report_compare(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # data.path is relative to the working directory
    _write_csv(tmp_path / "people.csv")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "images.npz", x=rng.random((200, 8, 8)).astype(np.float32),
             y=rng.integers(0, 3, 200))
    csv_config = _config(tmp_path, "people", {
        "dataset": "csv", "path": "people.csv", "label_column": "outcome",
        "sensitive_column": "group",
    }, write_config)
    dp_config = _config(tmp_path, "people_dp", {
        "dataset": "csv", "path": "people.csv", "label_column": "outcome",
    }, write_config, training={"dp": {"enabled": True, "epsilon": 4.0, "delta": 1e-3}})
    npz_config = _config(tmp_path, "images", {"dataset": "npz", "path": "images.npz"},
                         write_config)

    code, out, err = _run(capsys, "train", "--config", str(csv_config))
    assert code == 0, err
    assert "model: mlp_tabular (the default for tabular rows of 7 features" in out
    code, out, err = _run(capsys, "train", "--config", str(npz_config))
    assert code == 0, err
    assert "model: cnn_8x8 (the default for 1x8x8 images, as digits" in out
    code, out, err = _run(capsys, "train", "--config", str(dp_config))
    assert code == 0, err
    assert "Achieved DP guarantee: ε=" in out

    run = tmp_path / "results" / "people"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data_file"]["path"] == str(tmp_path / "people.csv")
    digest = hashlib.sha256((tmp_path / "people.csv").read_bytes()).hexdigest()
    assert metrics["data_file"]["sha256"] == digest
    assert str(tmp_path / "people.csv") in (run / "config.yaml").read_text()

    code, out, err = _run(capsys, "audit", "--config", str(csv_config), "--attack",
                          "mia_threshold", "mia_lira", "attribute_inference")
    assert code == 0, err
    inference = json.loads((run / "audit" / "attribute_inference.json").read_text())
    assert inference["attribute"] == "group" and inference["categories"] == ["a", "b"]
    for config in (npz_config, dp_config):
        code, out, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_lira")
        assert code == 0, err
        assert "mia_lira" in out

    # The run's stored config (absolute data.path) audits from another directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = _run(capsys, "audit", "--config", str(run / "config.yaml"), "--attack",
                          "mia_threshold")
    assert code == 0, err

    code, out, err = _run(capsys, "report", "--out", str(tmp_path / "report"), str(run))
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").is_file()
    code, out, err = _run(capsys, "compare", "--out", str(tmp_path / "compared"), str(run),
                          str(tmp_path / "results" / "people_dp"), "--attack", "mia_lira")
    assert code == 0, err

    # A file changed since train: its rows are no longer the run's members.
    monkeypatch.chdir(tmp_path)
    with (tmp_path / "people.csv").open("a", encoding="utf-8") as handle:
        handle.write("180.00,80.00,rome,a,sick\n")
    code, out, err = _run(capsys, "audit", "--config", str(csv_config), "--attack",
                          "mia_threshold")
    assert code == 2
    assert f"data file {tmp_path / 'people.csv'} changed since the run was trained" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


BAD_FILES: list[tuple[str, dict[str, Any], str]] = [
    ("none", {"dataset": "csv", "path": "absent.csv", "label_column": "outcome"},
     "data.path absent.csv: no such file (relative paths are relative to the working directory"),
    ("people.csv", {"dataset": "csv", "path": "people.csv", "label_column": "label"},
     "data.label_column 'label' is not a column of people.csv; its columns: height, weight, "
     "city, group, outcome"),
    ("people.csv", {"dataset": "csv", "path": "people.csv"},
     "data.dataset: csv needs data.label_column: set it"),
    ("empty_cell.csv", {"dataset": "csv", "path": "empty_cell.csv", "label_column": "outcome"},
     "empty_cell.csv, column 'weight', line 3: empty cell"),
    ("nan.csv", {"dataset": "csv", "path": "nan.csv", "label_column": "outcome"},
     "nan.csv, column 'height', line 2: 'nan' is not a finite number"),
    ("float_label.csv", {"dataset": "csv", "path": "float_label.csv", "label_column": "y"},
     "float_label.csv, label column 'y': line 3 has 1.5, not a class index"),
    ("people.csv", {"dataset": "csv", "path": "people.csv", "label_column": "outcome",
                    "train_size": 100},
     "data.train_size=100: csv file people.csv has 160 training examples, enough for at most 80 "
     "members plus as many non-members (200 are needed for this train_size)"),
    ("no_y.npz", {"dataset": "npz", "path": "no_y.npz"}, "no_y.npz has no array y"),
    ("short_y.npz", {"dataset": "npz", "path": "short_y.npz"},
     "short_y.npz: x has 200 rows but y has shape (150,)"),
    ("pickled.npz", {"dataset": "npz", "path": "pickled.npz"},
     "pickled.npz: array x holds Python objects, which only pickle can read"),
    ("images.npz", {"dataset": "npz", "path": "images.npz", "label_column": "y"},
     "data.label_column is not used by data.dataset: npz (it takes no other data options): "
     "remove data.label_column"),
    ("images.npz", {"dataset": "digits", "path": "images.npz"},
     "data.path is set but dataset 'digits' is built in and reads no file of yours: remove "
     "data.path, or set data.dataset: csv (or npz)"),
    ("none", {"dataset": "breast_cancer.csv"},
     "unknown dataset 'breast_cancer.csv'; available: adult, cifar10, csv, diabetes, digits, "
     "fashion_mnist, mnist, npz, purchase100, texas100, text, text_public; to read your own "
     "file set data.dataset: csv and data.path: breast_cancer.csv"),
]


@pytest.mark.parametrize(("file", "data", "message"), BAD_FILES,
                         ids=[message[:30] for *_, message in BAD_FILES])
def test_bad_files_end_in_one_line_before_training(
    capsys: pytest.CaptureFixture[str], write_config: Callable[..., Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, file: str, data: dict[str, Any], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_csv(tmp_path / "people.csv")
    lines = (tmp_path / "people.csv").read_text().splitlines()
    (tmp_path / "empty_cell.csv").write_text(
        "\n".join([*lines[:2], lines[2].replace(lines[2].split(",")[1], "", 1), *lines[3:]])
    )
    (tmp_path / "nan.csv").write_text("\n".join([lines[0], "nan" + lines[1][lines[1].index(","):],
                                                 *lines[2:]]))
    (tmp_path / "float_label.csv").write_text("x,y\n1,0\n2,1.5\n")
    np.savez(tmp_path / "no_y.npz", x=np.zeros((200, 3)))
    np.savez(tmp_path / "short_y.npz", x=np.zeros((200, 3)), y=np.zeros(150))
    np.savez(tmp_path / "pickled.npz", x=np.array([[1]] * 200, dtype=object), y=np.zeros(200))
    np.savez(tmp_path / "images.npz", x=np.zeros((200, 8, 8)), y=np.arange(200) % 2)
    config = _config(tmp_path, "bad", {"train_size": 20, "batch_size": 10, **data}, write_config)
    code, out, err = _run(capsys, "train", "--config", str(config))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert message in lines[0]
    assert "epoch" not in out and not (tmp_path / "results").exists()
