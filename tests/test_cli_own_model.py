"""``model.arch: module.path:factory`` through the command line: train with and without DP-SGD,
audit, compare, and each bad factory refused in one line with exit code 2 before training."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditml.cli import main

pytestmark = pytest.mark.slow

MODULE = "auditml_cli_own_models"
SOURCE = '''
from torch import nn

def tanh_net(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, num_classes))

def batchnorm_net(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32),
                         nn.Linear(32, num_classes))

def three_outputs(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

def broken(input_shape, num_classes):
    raise KeyError("width")
'''


@pytest.fixture
def configs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory holding the module, outside the current one: found beside the config."""
    directory = tmp_path / "configs"
    directory.mkdir()
    (directory / f"{MODULE}.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    yield directory
    sys.modules.pop(MODULE, None)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write(directory: Path, raw: dict[str, Any], name: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(json.dumps(raw), encoding="utf-8")  # JSON is YAML
    return path


def test_own_model_trains_with_and_without_dp_and_is_audited(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    configs_dir: Path, tmp_path: Path,
) -> None:
    arch = {"arch": f"{MODULE}:tanh_net"}
    plain = _write(configs_dir, tiny_config(experiment_name="own", model=arch), "own")
    private = _write(configs_dir, tiny_config(
        experiment_name="own_dp", model=arch,
        training={"dp": {"enabled": True, "epsilon": 5.0, "delta": 1e-3}},
    ), "own_dp")
    source = configs_dir / f"{MODULE}.py"
    for config, name in ((plain, "own"), (private, "own_dp")):
        code, _, err = _run(capsys, "train", "--config", str(config))
        assert code == 0, err
        code, out, err = _run(capsys, "audit", "--config", str(config), "--attack",
                              "mia_threshold")
        assert code == 0, err
        assert "mia_threshold" in out
        run = tmp_path / "results" / name
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["arch"] == f"{MODULE}:tanh_net"
        assert metrics["model_source"] == {
            "module": MODULE, "factory": "tanh_net", "file": str(source.resolve()),
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        }
        assert f"arch: {MODULE}:tanh_net" in (run / "config.yaml").read_text()
        assert (run / "audit" / "mia_threshold.json").is_file()
    assert json.loads((tmp_path / "results" / "own_dp" / "metrics.json").read_text())[
        "epsilon"] <= 5.0
    code, _, err = _run(capsys, "compare", str(tmp_path / "results" / "own"),
                        str(tmp_path / "results" / "own_dp"), "--out", str(tmp_path / "cmp"))
    assert code == 0, err
    assert "own_dp" in (tmp_path / "cmp" / "report.md").read_text()
    code, _, err = _run(capsys, "report", str(tmp_path / "results" / "own_dp"), "--out",
                        str(tmp_path / "page"))
    assert code == 0, err
    assert f"{MODULE}:tanh_net" in (tmp_path / "page" / "report.html").read_text()


def test_a_factory_edited_since_training_is_refused_at_audit(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    configs_dir: Path,
) -> None:
    # Same layers and shapes, so the saved weights would load: the audit would silently
    # measure another model (ReLU for tanh) than the one trained.
    config = _write(configs_dir, tiny_config(experiment_name="edited",
                                             model={"arch": f"{MODULE}:tanh_net"}), "edited")
    assert _run(capsys, "train", "--config", str(config))[0] == 0
    source = configs_dir / f"{MODULE}.py"
    source.write_text(SOURCE.replace("nn.Tanh()", "nn.ReLU()"), encoding="utf-8")
    code, _, err = _run(capsys, "audit", "--config", str(config), "--attack", "mia_threshold")
    assert code == 2
    assert f"its source {source.resolve()} changed since the run was trained" in err
    assert len(err.strip().splitlines()) == 1
    source.write_text(SOURCE, encoding="utf-8")  # restored: audited as trained
    assert _run(capsys, "audit", "--config", str(config), "--attack", "mia_threshold")[0] == 0


@pytest.mark.parametrize(("arch", "training", "expected"), [
    ("no_such_user_module:f", {}, "model.arch='no_such_user_module:f': no module "
                                  "'no_such_user_module' in "),
    (f"{MODULE}:missing", {}, "has no attribute 'missing'; its functions and classes: "
                              "batchnorm_net, broken, tanh_net, three_outputs"),
    (f"{MODULE}:broken", {}, "raised KeyError: 'width'; fix the factory"),
    (f"{MODULE}:three_outputs", {}, "gives outputs of shape (3,) for inputs of shape (1, 8, 8), "
                                    "not (10,) class scores"),
    (f"{MODULE}:batchnorm_net", {"dp": {"enabled": True, "epsilon": 5.0, "delta": 1e-3}},
     "DP-SGD cannot train this model: BatchNorm1d at '2' (BatchNorm cannot support training "
     "with differential privacy). Replace BatchNorm with GroupNorm"),
    ("my:models:f", {}, "model.arch='my:models:f': 'my:models:f' is not module.path:factory"),
    ("cnn_8x9", {}, "unknown model architecture 'cnn_8x9' (did you mean 'cnn_8x8'?)"),
])
def test_a_bad_own_model_is_one_line_and_exit_2_before_training(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    configs_dir: Path, tmp_path: Path, arch: str, training: dict[str, Any], expected: str,
) -> None:
    config = _write(configs_dir, tiny_config(model={"arch": arch}, training=training), "bad")
    code, out, err = _run(capsys, "train", "--config", str(config))
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "epoch" not in out  # refused before training
    assert not (tmp_path / "results" / "tiny").exists()


def test_an_own_model_failing_in_training_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tiny_config: Callable[..., dict[str, Any]],
    configs_dir: Path, tmp_path: Path,
) -> None:
    """Found by QA: BatchNorm given a last batch of one example (101 rows in batches of 50)
    raised mid-training, a traceback and exit code 1."""
    config = _write(configs_dir, tiny_config(
        model={"arch": f"{MODULE}:batchnorm_net"}, data={"train_size": 101},
    ), "last_batch_of_one")
    code, _, err = _run(capsys, "train", "--config", str(config))
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(
        f"error: model.arch='{MODULE}:batchnorm_net': training it (epoch 1, a batch of 1 "
        "examples) raised ValueError: Expected more than 1 value per channel when training"
    ), lines[0]
    assert lines[0].endswith("; fix the factory")
    assert not (tmp_path / "results" / "tiny").exists()
