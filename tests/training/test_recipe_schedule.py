"""The DP recipe's ScatterNet choice for 28x28 grey images and its schedule: chosen only when
DP-SGD is on and no model is named, printed and recorded, and σ calibrated for the schedule that
runs (the accountant's ε is the claimed one)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from auditml.config import parse_config
from auditml.run_directory import RunDirectory
from auditml.training import recipe as recipe_module
from auditml.training import train
from auditml.training.calibration import epsilon_spent
from auditml.training.recipe import Schedule, schedule_changes, with_schedule

DP = {"enabled": True, "epsilon": 2.0, "delta": 1e-3, "max_grad_norm": 0.5}
SMALL = Schedule(batch_size=40, epochs=3, optimizer="sgd", learning_rate=0.5, momentum=0.9,
                 max_grad_norm=0.1)


@pytest.fixture
def grey_images(tmp_path: Path) -> Path:
    """A 28x28 grey-image npz file: two classes, bright left or right halves."""
    rng = np.random.default_rng(0)

    def images(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(count) % 2
        x = rng.random((count, 28, 28)).astype(np.float32) * 0.2
        for index, label in enumerate(y):
            x[index, :, 14 * label:14 * label + 14] += 1.0
        return x, y

    x, y = images(240)
    x_test, y_test = images(40)
    path = tmp_path / "grey.npz"
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def grey_config(tmp_path: Path, grey_images: Path, monkeypatch: pytest.MonkeyPatch,
                ) -> Callable[..., dict[str, Any]]:
    monkeypatch.setitem(recipe_module.SCHEDULES, "scatternet_linear", (SMALL,))
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path / "cache"))

    def make(dp: dict[str, Any] | None = None, **model: Any) -> dict[str, Any]:
        return {
            "experiment_name": "grey", "output_dir": str(tmp_path / "results"),
            "data": {"dataset": "npz", "path": str(grey_images), "train_size": 100,
                     "batch_size": 25},
            "model": model,
            "training": {"epochs": 2, "learning_rate": 0.003, "device": "cpu",
                         "dp": DP if dp is None else dp},
        }

    return make


def test_the_recipe_chooses_scatternet_with_its_schedule_and_says_so(
    grey_config: Callable[..., dict[str, Any]],
) -> None:
    config = parse_config(grey_config())
    assert config.arch == "scatternet_linear"
    assert schedule_changes(config) == {
        "batch_size": {"configured": 25, "used": 40}, "epochs": {"configured": 2, "used": 3},
        "optimizer": {"configured": "adam", "used": "sgd"},
        "learning_rate": {"configured": 0.003, "used": 0.5},
        "max_grad_norm": {"configured": 0.5, "used": 0.1},
    }
    applied = with_schedule(config)
    assert (applied.data.batch_size, applied.training.epochs, applied.training.optimizer,
            applied.training.dp.max_grad_norm) == (40, 3, "sgd", 0.1)
    assert schedule_changes(applied) == {}  # idempotent: nothing left to change
    assert config.data.batch_size == 25  # the user's config is not modified

    output = io.StringIO()
    metrics = train(config, console=Console(file=output, width=300)).metrics
    printed = output.getvalue()
    assert "model: scatternet_linear (the DP recipe's architecture" in printed
    assert "DP recipe: scatternet_linear trains with batch_size 40, epochs 3" in printed
    assert metrics["arch"] == "scatternet_linear"
    assert metrics["recipe"]["schedule_changes"]["epochs"] == {"configured": 2, "used": 3}
    assert metrics["recipe"]["learning_rate"] == 0.5
    assert metrics["max_grad_norm"] == 0.1
    assert metrics["grad_sample_mode"] in ("fast", "hooks", "ghost")
    assert 0.5 < metrics["val_acc"] <= 1.0  # the head learned from the features
    # The run's config holds what ran: its reference models retrain the same schedule.
    written = RunDirectory(config.run_dir).read_config()
    assert (written.arch, written.data.batch_size, written.training.epochs) == (
        "scatternet_linear", 40, 3)
    assert schedule_changes(written) == {}

    # The accountant's ε is the claimed one, for the schedule that ran.
    batches = math.ceil(100 / 40)
    assert metrics["steps"] == 3 * batches
    assert metrics["sample_rate"] == pytest.approx(1 / batches)
    spent = epsilon_spent("prv", metrics["noise_multiplier"], metrics["sample_rate"],
                          metrics["steps"], DP["delta"])
    assert DP["epsilon"] - 0.01 < spent <= DP["epsilon"]
    assert metrics["epsilon"] == pytest.approx(spent, abs=1e-6)


@pytest.mark.parametrize(
    ("dp_recipe", "model", "arch"),
    [("plain", {}, "cnn_28x28"), ("default", {"arch": "cnn_28x28_gn"}, "cnn_28x28_gn")],
)
def test_plain_or_a_named_model_trains_as_configured(
    grey_config: Callable[..., dict[str, Any]], dp_recipe: str, model: dict[str, Any],
    arch: str,
) -> None:
    config = parse_config(grey_config({**DP, "recipe": dp_recipe}, **model))
    assert config.arch == arch
    assert schedule_changes(config) == {}
    assert with_schedule(config) is config


def test_without_dp_no_recipe_applies(grey_config: Callable[..., dict[str, Any]]) -> None:
    config = parse_config(grey_config({"enabled": False}))
    assert config.arch == "cnn_28x28" and schedule_changes(config) == {}


def test_the_schedule_follows_the_configured_epsilon(
    grey_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    larger = Schedule(batch_size=50, epochs=4, optimizer="sgd", learning_rate=1.0, momentum=0.9,
                      max_grad_norm=0.1, min_epsilon=3.0)
    monkeypatch.setitem(recipe_module.SCHEDULES, "scatternet_linear", (SMALL, larger))

    def used(dp: dict[str, Any]) -> tuple[int, int, float]:
        applied = with_schedule(parse_config(grey_config(dp)))
        return (applied.data.batch_size, applied.training.epochs,
                applied.training.learning_rate)

    assert used({**DP, "epsilon": 2.0}) == (40, 3, 0.5)
    assert used({**DP, "epsilon": 3.0}) == (50, 4, 1.0)
    assert used({**DP, "epsilon": 8.0}) == (50, 4, 1.0)
    # σ given instead of ε: the first (most noise) schedule.
    assert used({"enabled": True, "noise_multiplier": 1.0, "delta": 1e-3}) == (40, 3, 0.5)


def test_the_measured_scatternet_schedules_split_at_epsilon_2() -> None:
    schedules = recipe_module.SCHEDULES["scatternet_linear"]
    low = recipe_module.schedule_for(schedules, 1.0)
    high = recipe_module.schedule_for(schedules, 5.0)
    assert low is not None and high is not None
    assert (low.epochs, low.learning_rate) == (20, 1.0)
    assert (high.epochs, high.learning_rate) == (40, 2.0)
    assert recipe_module.schedule_for(schedules, 1.99) is low
    assert recipe_module.schedule_for((), 5.0) is None


def test_the_heads_fixed_layers_computed_once_train_the_model_the_whole_head_would(
    grey_config: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GroupNorm (no weights, per example) is computed once with the features and only the
    # linear layer trains: the same clipped, noised steps as training the whole head on them.
    import torch
    from torch import nn

    from auditml.data import make_split, select
    from auditml.models.scattering import FeatureModel
    from auditml.training.run_model import load_dataset
    from auditml.training.trainer import fit_model

    config = with_schedule(parse_config(grey_config()))
    loaded = load_dataset(config)
    data = select(loaded, make_split(loaded.pool.y, 100, 0, validation_from_pool=False))

    def fit() -> Any:
        return fit_model(config, data.training_set, data.validation, seed=3,
                         device=torch.device("cpu"))

    split = fit()
    with monkeypatch.context() as whole_head:
        whole_head.setattr(FeatureModel, "split_head", lambda self: (nn.Sequential(), self.head))
        whole = fit()
    assert isinstance(split.model, FeatureModel)
    assert sorted(split.model.state_dict()) == sorted(whole.model.state_dict()) == [
        "head.2.bias", "head.2.weight"]
    for name, tensor in split.model.state_dict().items():
        torch.testing.assert_close(tensor, whole.model.state_dict()[name], rtol=1e-5, atol=1e-6)
    assert [h["val_acc"] for h in split.history] == [h["val_acc"] for h in whole.history]
    assert split.epsilon == whole.epsilon
