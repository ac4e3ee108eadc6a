from __future__ import annotations

from pathlib import Path

import pytest

from auditml.config import load_config, parse_config
from auditml.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TUTORIAL_CONFIGS = sorted((REPO / "configs").glob("dp_tutorial_*.yaml"))


@pytest.mark.parametrize("path", TUTORIAL_CONFIGS, ids=lambda p: p.name)
def test_tutorial_configs_load_unchanged(path: Path) -> None:
    config = load_config(path)
    assert config.data.dataset == "mnist"
    assert config.data.train_size == 5000
    assert config.training.epochs == 20
    if config.training.dp.enabled:
        # YAML reads 2e-4 as a string; it must arrive as the number.
        assert config.training.dp.delta == pytest.approx(2e-4)
        assert isinstance(config.training.dp.delta, float)


def test_three_tutorial_configs_ship() -> None:
    assert [p.name for p in TUTORIAL_CONFIGS] == [
        "dp_tutorial_baseline.yaml",
        "dp_tutorial_eps1.yaml",
        "dp_tutorial_eps5.yaml",
    ]
    eps1 = load_config(REPO / "configs" / "dp_tutorial_eps1.yaml").training.dp
    assert (eps1.epsilon, eps1.max_grad_norm) == (1.0, 0.5)


def test_defaults_are_filled_in() -> None:
    config = parse_config({"experiment_name": "x"})
    resolved = config.resolved()
    assert resolved.model.arch == "cnn_8x8"  # digits' default model
    assert resolved.training.dp.accountant == "prv"
    assert resolved.training.dp.noise_multiplier is None
    assert resolved.output_dir == Path("results")
    assert config.run_dir == Path("results") / "x"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"experiment_name": "x", "training": {"epoch": 3}},
         "unknown key 'training.epoch'; did you mean 'epochs'?"),
        ({"experiment_name": "x", "dat": {}}, "unknown key 'dat'; did you mean 'data'?"),
        ({"experiment_name": "x", "training": {"epochs": "twenty"}}, "training.epochs='twenty'"),
        ({"experiment_name": "x", "training": {"dp": {"enabled": True, "epsilon": 0}}},
         "training.dp.epsilon=0: Input should be greater than 0"),
        ({"experiment_name": "x", "training": {"dp": {"enabled": True, "epsilon": -1}}},
         "training.dp.epsilon=-1"),
        ({"experiment_name": "x", "training": {"dp": {"enabled": True, "epsilon": 1, "delta": 1}}},
         "training.dp.delta=1: Input should be less than 1"),
        ({"experiment_name": "x", "training": {"dp": {"enabled": True, "epsilon": 1,
                                                       "delta": "-2e-4"}}},
         "training.dp.delta='-2e-4'"),
        ({"experiment_name": "x", "training": {"dp": {"enabled": True}}},
         "set training.dp.epsilon (target) or training.dp.noise_multiplier"),
        ({"experiment_name": "x", "data": {"train_size": 900}},
         "data.train_size=900: digits has 1797 training examples, enough for at most 848"),
        ({"experiment_name": "x", "data": {"dataset": "mnist", "train_size": 30001}},
         "data.train_size=30001: mnist has 60000"),
        ({"experiment_name": "x", "data": {"train_size": 100, "batch_size": 256}},
         "data.batch_size=256: must be at most data.train_size (100)"),
        ({"experiment_name": "../escape"}, "experiment_name='../escape': must be one path"),
        ({"experiment_name": "a/b"}, "experiment_name='a/b'"),
        ({"experiment_name": ".."}, "experiment_name='..'"),
        ({"experiment_name": "x", "data": {"dataset": "mnst"}},
         "unknown dataset 'mnst' (did you mean 'mnist'?); available: cifar10, digits, "
         "fashion_mnist, mnist"),
        ({"experiment_name": "x", "model": {"arch": "resnet"}}, "unknown model architecture"),
        ({"experiment_name": "x", "training": {"dp": {"accountant": "gdp"}}},
         "training.dp.accountant='gdp'"),
        ({"data": {}}, "missing required key 'experiment_name'"),
    ],
)
def test_bad_settings_end_in_one_line_naming_the_key(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "cfg.yaml")
    message = str(caught.value)
    assert expected in message
    assert message.startswith("cfg.yaml: ")
    assert "\n" not in message


def test_every_problem_is_counted() -> None:
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)"):
        parse_config({"experiment_name": "x", "training": {"epochs": 0, "learning_rate": -1}})


def test_delta_above_one_over_n_warns() -> None:
    weak = parse_config({"experiment_name": "x", "data": {"train_size": 100, "batch_size": 10},
                         "training": {"dp": {"enabled": True, "epsilon": 1, "delta": 0.05}}})
    assert len(weak.warnings()) == 1
    assert "training.dp.delta=0.05 is larger than 1/train_size" in weak.warnings()[0]
    fine = parse_config({"experiment_name": "x", "data": {"train_size": 100, "batch_size": 10},
                         "training": {"dp": {"enabled": True, "epsilon": 1, "delta": 1e-3}}})
    assert fine.warnings() == []


def test_missing_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment_name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(empty)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(binary)


def test_resolved_config_round_trips_through_yaml() -> None:
    import yaml

    config = parse_config({"experiment_name": "x", "training": {"dp": {"enabled": True,
                                                                         "epsilon": 2.0}}})
    again = parse_config(yaml.safe_load(config.resolved().to_yaml()))
    assert again == config.resolved()
