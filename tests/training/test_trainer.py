"""Training writes a complete run directory; DP runs spend what the accountant says."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from opacus.accountants import create_accountant
from rich.console import Console

from auditml.config import parse_config
from auditml.errors import ConfigError, DataError
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, train

pytestmark = pytest.mark.slow


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_non_private_run_writes_the_contract(tiny_config: Callable[..., dict[str, Any]]) -> None:
    config = parse_config(tiny_config())
    result = train(config, console=_quiet())
    run = RunDirectory(result.run_dir)
    run.require_trained()
    metrics = run.read_metrics()
    for key in ["val_acc", "train_acc", "losses", "history", "epsilon", "delta",
                "noise_multiplier", "sample_rate", "steps", "accountant", "wall_time_s"]:
        assert key in metrics
    assert set(metrics["versions"]) >= {"python", "torch", "opacus", "auditml"}
    assert metrics["epsilon"] is None and metrics["dp_enabled"] is False
    assert len(metrics["history"]) == 2 and len(metrics["losses"]) == 2
    assert metrics["val_acc"] == metrics["history"][-1]["val_acc"]
    split = run.read_split()
    assert len(split.members) == len(split.nonmembers) == 100
    assert run.read_config() == config.resolved()
    model = build_run_model(config)
    model.load_state_dict(run.read_model_state())


def test_dp_run_reports_the_accountants_epsilon(tiny_config: Callable[..., dict[str, Any]]) -> None:
    raw = tiny_config(training={"dp": {"enabled": True, "epsilon": 3.0, "delta": 1e-3}})
    output = io.StringIO()
    result = train(parse_config(raw), console=Console(file=output, width=200))
    metrics = result.metrics
    # 100 members, batch 50: Poisson sampling at rate 1/2, two steps per epoch.
    assert (metrics["sample_rate"], metrics["steps"]) == (0.5, 4)
    reference = create_accountant("prv")
    reference.history = [(metrics["noise_multiplier"], 0.5, 4)]
    assert metrics["epsilon"] == pytest.approx(reference.get_epsilon(1e-3), rel=1e-9)
    assert 3.0 - 0.05 <= metrics["epsilon"] <= 3.0
    line = f"Achieved DP guarantee: ε={metrics['epsilon']:.2f}, δ=1e-03"
    assert line in output.getvalue().splitlines()
    assert [round(h["epsilon"], 6) for h in metrics["history"]][-1] == round(metrics["epsilon"], 6)


def test_silent_training_reads_the_accountant_once_and_trains_the_same_model(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    from auditml.data import make_split, select
    from auditml.training.run_model import load_dataset
    from auditml.training.trainer import fit_model

    config = parse_config(tiny_config(
        training={"epochs": 3, "dp": {"enabled": True, "epsilon": 3.0, "delta": 1e-3}}))
    loaded = load_dataset(config)
    data = select(loaded, make_split(loaded.pool.y, 100, 0, validation_from_pool=True))
    shown = fit_model(config, data.training_set, data.validation, seed=4,
                      device=torch.device("cpu"), console=_quiet())
    silent = fit_model(config, data.training_set, None, seed=4, device=torch.device("cpu"))
    # Shown: ε after every epoch, growing; silent (reference models): only after the last.
    per_epoch = [h["epsilon"] for h in shown.history]
    assert all(e is not None for e in per_epoch) and per_epoch == sorted(per_epoch)
    assert [h["epsilon"] for h in silent.history] == [None, None, shown.epsilon]
    assert silent.epsilon == shown.epsilon == per_epoch[-1]
    for name, tensor in shown.model.state_dict().items():
        assert torch.equal(tensor, silent.model.state_dict()[name]), name


def test_given_noise_multiplier_reports_its_epsilon(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    raw = tiny_config(training={"dp": {"enabled": True, "noise_multiplier": 2.0, "delta": 1e-3,
                                       "accountant": "rdp"}})
    metrics = train(parse_config(raw), console=_quiet()).metrics
    reference = create_accountant("rdp")
    reference.history = [(2.0, 0.5, 4)]
    assert metrics["noise_multiplier"] == 2.0 and metrics["noise_calibrated"] is False
    assert metrics["epsilon"] == pytest.approx(reference.get_epsilon(1e-3))


@pytest.mark.parametrize("mode", ["fast", "hooks"])
def test_a_negative_accountant_epsilon_is_recorded_as_zero(
    tiny_config: Callable[..., dict[str, Any]], mode: str
) -> None:
    # Much noise at δ = 0.1: both accountants report ε ≈ -0.1 for this schedule.
    raw = tiny_config(training={"dp": {"enabled": True, "noise_multiplier": 100.0, "delta": 0.1,
                                       "accountant": "rdp", "grad_sample_mode": mode}})
    reference = create_accountant("rdp")
    reference.history = [(100.0, 0.5, 4)]
    assert reference.get_epsilon(0.1) < 0
    metrics = train(parse_config(raw), console=_quiet()).metrics
    assert metrics["epsilon"] == 0.0
    assert all(record["epsilon"] == 0.0 for record in metrics["history"])


def test_same_seed_same_model(tiny_config: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    first = train(parse_config(tiny_config(experiment_name="a")), console=_quiet())
    second = train(parse_config(tiny_config(experiment_name="b")), console=_quiet())
    a = RunDirectory(first.run_dir).read_model_state()
    b = RunDirectory(second.run_dir).read_model_state()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_training_seed_changes_the_model_not_the_members(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    # The tuner's trials must be independent trainings on the same private members.
    base = train(parse_config(tiny_config(experiment_name="a")), console=_quiet())
    same = train(parse_config(tiny_config(experiment_name="b", training={"seed": 0})),
                 console=_quiet())
    other = train(parse_config(tiny_config(experiment_name="c", training={"seed": 5})),
                  console=_quiet())
    runs = [RunDirectory(result.run_dir) for result in (base, same, other)]
    splits = [run.read_split() for run in runs]
    assert all((split.members == splits[0].members).all() for split in splits)
    weights = [run.read_model_state() for run in runs]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not all(torch.equal(weights[0][name], weights[2][name]) for name in weights[0])


def test_failed_run_leaves_the_previous_result(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    good = train(parse_config(tiny_config()), console=_quiet())
    before = {p.name: p.read_bytes() for p in good.run_dir.iterdir()}
    missing = tiny_config(
        data={"dataset": "mnist", "data_dir": str(tmp_path / "empty"), "download": False}
    )
    with pytest.raises(DataError):
        train(parse_config(missing), console=_quiet())
    assert {p.name: p.read_bytes() for p in good.run_dir.iterdir()} == before
    leftovers = [p.name for p in good.run_dir.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == [".tiny.lock"]  # the run's lock file, kept on purpose


def test_plain_log_lines_when_not_a_terminal(tiny_config: Callable[..., dict[str, Any]]) -> None:
    output = io.StringIO()
    train(parse_config(tiny_config()), console=Console(file=output, width=200))
    lines = output.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2  loss=") and "val_acc=" in lines[0]


def test_every_grad_sample_mode_trains_the_same_model_and_spends_the_same_epsilon(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    runs = {}
    for requested in ["fast", "hooks", "ghost", "auto"]:
        raw = tiny_config(
            experiment_name=requested,
            training={"dp": {"enabled": True, "epsilon": 3.0, "delta": 1e-3,
                             "grad_sample_mode": requested}},
        )
        output = io.StringIO()
        result = train(parse_config(raw), console=Console(file=output, width=200))
        # auto resolves to the mode measured fastest here, and records that mode.
        chosen = result.metrics["grad_sample_mode"]
        assert chosen == requested or (requested == "auto" and chosen in runs)
        assert f"Per-example clipping: {chosen} (" in output.getvalue()
        runs[requested] = (result.metrics, RunDirectory(result.run_dir).read_model_state())
    # Measuring draws nothing from the run's RNG: auto's run is its resolved mode's, bit for bit.
    auto_metrics, auto_state = runs["auto"]
    resolved_metrics, resolved_state = runs[auto_metrics["grad_sample_mode"]]
    assert auto_metrics["epsilon"] == resolved_metrics["epsilon"]
    assert all(torch.equal(auto_state[name], resolved_state[name]) for name in auto_state)
    fast_metrics, fast_state = runs["fast"]
    for mode in ["hooks", "ghost"]:
        metrics, state = runs[mode]
        assert metrics["epsilon"] == fast_metrics["epsilon"]
        # Same data, batches and noise draws: the modes differ only in floating-point rounding.
        for name in state:
            assert torch.allclose(state[name], fast_state[name], rtol=1e-4, atol=1e-5), name


def test_only_an_own_models_training_errors_become_one_line(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step that raises: the user's own model (module:factory) is named in a ConfigError; a
    built-in model's error is auditml's bug and keeps its type and traceback."""

    def failing_step(*args: Any, **kwargs: Any) -> Callable[..., Any]:
        def step(x: torch.Tensor, y: torch.Tensor) -> Any:
            raise ValueError("the step failed")
        return step

    monkeypatch.setattr("auditml.training.trainer.plain_step", failing_step)
    with pytest.raises(ValueError, match="the step failed") as raised:
        train(parse_config(tiny_config()), console=_quiet())
    assert not isinstance(raised.value, ConfigError)
    (tmp_path / "own_step_models.py").write_text(
        "from torch import nn\n\ndef net(input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "own_step_models", raising=False)  # removed afterwards
    own = tiny_config(model={"arch": "own_step_models:net"})
    with pytest.raises(ConfigError, match=r"^model.arch='own_step_models:net': training it "
                       r"\(epoch 1, a batch of 50 examples\) raised ValueError: the step "
                       r"failed; fix the factory$"):
        train(parse_config(own), console=_quiet())
