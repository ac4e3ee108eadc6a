"""The DP recipe: its parts are resolved in one place, change no part of the mechanism (the
accountant's ε is the recipe's invariant), and are recorded with the run."""

from __future__ import annotations

import io
import math
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
from auditml.training.recipe import WeightAverage, learning_rate, lr_schedule
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
    assert parse_config(fashion).arch == "scatternet_linear"


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
    # Measured for classifiers trained from scratch: a fine-tuned model (model.base) and a
    # language model keep the configured rate, or the raised one would undo their training.
    assert lr(training={"learning_rate": 0.001, "dp": DP}, model={"base": "runs/base"}) == 0.001
    text = {"dataset": "text", "train_size": 100}
    assert lr(training={"learning_rate": 0.001, "dp": DP}, data=text) == 0.001


@pytest.mark.parametrize("recipe", ["sloppy", {"ema_decay": 1.0}, {"min_learning_rate": -1},
                                    {"lr_schedule": "step"}])
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
        "ema_decay": 0.0, "lr_schedule": "constant", "augmentation_multiplicity": 1,
        "schedule": True, "arch": "mlp_small_tanh", "learning_rate": 0.005,
        "schedule_changes": {},  # digits' DP architecture has no schedule of its own
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



def test_the_cosine_schedule_decays_the_rate_to_zero_over_the_steps(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    config = parse_config(tiny_config(training={
        "learning_rate": 0.01, "dp": {**DP, "recipe": {"lr_schedule": "cosine"}}}))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    schedule = lr_schedule(optimizer, config, 8)
    assert schedule is not None
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.01 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # Constant, plain, or no DP at all: no schedule.
    for training in ({"dp": DP}, {"dp": {**DP, "recipe": "plain"}}, {}):
        assert lr_schedule(optimizer, parse_config(tiny_config(training=training)), 8) is None


@pytest.mark.slow
def test_the_schedule_changes_the_weights_not_the_epsilon(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    results = {}
    for schedule in ["constant", "cosine"]:
        raw = tiny_config(experiment_name=schedule,
                          training={"dp": {**DP, "recipe": {"lr_schedule": schedule}}})
        result = train(parse_config(raw), console=Console(file=io.StringIO()))
        model = build_run_model(parse_config(raw))
        model.load_state_dict(RunDirectory(result.run_dir).read_model_state())
        results[schedule] = (result.metrics, [p.detach().clone() for p in model.parameters()])
    (constant, before), (cosine, after) = results["constant"], results["cosine"]
    assert cosine["recipe"]["lr_schedule"] == "cosine"
    for key in ["epsilon", "noise_multiplier", "sample_rate", "steps"]:
        assert constant[key] == cosine[key]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_run_written_before_the_schedule_trains_its_references_at_a_constant_rate(
    tiny_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import auditml.config as config_module

    config = parse_config(tiny_config(training={"dp": DP}))
    run = RunDirectory(config.run_dir)
    run.path.mkdir(parents=True)
    old = config.resolved().model_dump(mode="json")
    del old["training"]["dp"]["recipe"]["lr_schedule"]
    del old["training"]["dp"]["recipe"]["augmentation_multiplicity"]
    (run.path / CONFIG_FILE).write_text(yaml.safe_dump(old), encoding="utf-8")
    # Were the default recipe to schedule the rate, the old run still reads as it trained.
    monkeypatch.setitem(config_module.RECIPE_PARTS["default"], "lr_schedule", "cosine")
    assert run.read_config().training.dp.recipe.resolved().lr_schedule == "constant"
    assert parse_config(tiny_config(training={"dp": DP})).training.dp.recipe.resolved(
        ).lr_schedule == "cosine"
