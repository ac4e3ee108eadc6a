"""The DP recipe: its parts are resolved in one place, change no part of the mechanism (the
accountant's ε is the recipe's invariant), and are recorded with the run."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
import yaml
from rich.console import Console

from auditml.config import parse_config
from auditml.data import select
from auditml.errors import ConfigError
from auditml.models import accuracy
from auditml.run_directory import CONFIG_FILE, RunDirectory
from auditml.training import build_run_model, train
from auditml.training.recipe import WeightAverage, learning_rate
from auditml.training.run_model import load_dataset

DP = {"enabled": True, "epsilon": 3.0, "delta": 1e-3}


def test_default_recipe_picks_the_datasets_dp_architecture(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    assert parse_config(tiny_config()).arch == "cnn_8x8"  # no DP: no recipe
    assert parse_config(tiny_config(training={"dp": DP})).arch == "mlp_small_tanh"
    plain = tiny_config(training={"dp": {**DP, "recipe": "plain"}})
    assert parse_config(plain).arch == "cnn_8x8"
    no_arch_part = tiny_config(training={"dp": {**DP, "recipe": {"architecture": False}}})
    assert parse_config(no_arch_part).arch == "cnn_8x8"
    named = tiny_config(model={"arch": "mlp"}, training={"dp": DP})
    assert parse_config(named).arch == "mlp"  # a named architecture is used as named
    fashion = tiny_config(data={"dataset": "fashion_mnist"}, training={"dp": DP})
    assert parse_config(fashion).arch == "cnn_28x28_gn"


def test_learning_rate_floor_applies_to_adam_under_dp_only(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    def lr(**overrides: Any) -> float:
        return learning_rate(parse_config(tiny_config(**overrides)))

    assert lr(training={"learning_rate": 0.001}) == 0.001
    assert lr(training={"learning_rate": 0.001, "dp": DP}) == 0.003
    assert lr(training={"learning_rate": 0.01, "dp": DP}) == 0.01  # a floor, not a setting
    assert lr(training={"learning_rate": 0.001, "optimizer": "sgd", "dp": DP}) == 0.001
    assert lr(training={"learning_rate": 0.001, "dp": {**DP, "recipe": "plain"}}) == 0.001
    own_floor = {**DP, "recipe": {"min_learning_rate": 0.02}}
    assert lr(training={"learning_rate": 0.001, "dp": own_floor}) == 0.02


@pytest.mark.parametrize("recipe", ["sloppy", {"ema_decay": 1.0}, {"min_learning_rate": -1}])
def test_bad_recipe_is_refused(tiny_config: Callable[..., dict[str, Any]], recipe: Any) -> None:
    with pytest.raises(ConfigError, match="recipe"):
        parse_config(tiny_config(training={"dp": {**DP, "recipe": recipe}}))


def test_weight_average_is_the_exponential_moving_average() -> None:
    parameter = torch.nn.Parameter(torch.tensor([1.0]))
    average = WeightAverage([parameter], decay=0.9)
    values = [2.0, 4.0, -1.0]
    expected = 1.0
    for value in values:
        with torch.no_grad():
            parameter.fill_(value)
        average.update()
        expected = 0.9 * expected + 0.1 * value
    average.release()
    assert parameter.item() == pytest.approx(expected, rel=1e-6)
    assert WeightAverage([parameter], decay=0.0).average == []  # off costs nothing


@pytest.mark.slow
def test_recipes_spend_the_same_epsilon_and_are_recorded(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    metrics = {}
    for name in ["default", "plain"]:
        raw = tiny_config(experiment_name=name, training={"dp": {**DP, "recipe": name}})
        result = train(parse_config(raw), console=Console(file=io.StringIO()))
        metrics[name] = result.metrics
        run = RunDirectory(result.run_dir)
        assert run.read_config().training.dp.recipe.name == name
    default, plain = metrics["default"], metrics["plain"]
    for key in ["epsilon", "noise_multiplier", "sample_rate", "steps"]:
        assert default[key] == plain[key]
    assert default["recipe"] == {
        "name": "default", "architecture": True, "min_learning_rate": 0.003,
        "ema_decay": 0.0, "arch": "mlp_small_tanh", "learning_rate": 0.005,
    }
    assert plain["recipe"]["arch"] == "cnn_8x8" and plain["arch"] == "cnn_8x8"
    assert default["arch"] == "mlp_small_tanh"


@pytest.mark.slow
def test_weight_average_is_what_the_run_releases(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    saved = {}
    for decay in [0.0, 0.9]:
        raw = tiny_config(experiment_name=f"ema{decay}",
                          training={"dp": {**DP, "recipe": {"ema_decay": decay}}})
        config = parse_config(raw)
        result = train(config, console=Console(file=io.StringIO()))
        run = RunDirectory(result.run_dir)
        model = build_run_model(config)
        model.load_state_dict(run.read_model_state())
        saved[decay] = [p.detach().clone() for p in model.parameters()]
        assert result.metrics["recipe"]["ema_decay"] == decay
        # The reported accuracy is the released (averaged) model's.
        validation = select(load_dataset(config), run.read_split()).validation
        assert validation is not None
        released = accuracy(model, validation.x, validation.y, device=torch.device("cpu"))
        assert result.metrics["val_acc"] == pytest.approx(released)
    # Same seed, same noise: only the release differs.
    assert any(not torch.equal(a, b) for a, b in zip(saved[0.0], saved[0.9], strict=True))


def test_run_written_before_recipes_reads_as_plain(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = parse_config(tiny_config(training={"dp": DP}))
    run = RunDirectory(config.run_dir)
    run.path.mkdir(parents=True)
    old = config.resolved().model_dump(mode="json")
    del old["training"]["dp"]["recipe"]
    (run.path / CONFIG_FILE).write_text(yaml.safe_dump(old), encoding="utf-8")
    assert run.read_config().training.dp.recipe.name == "plain"

